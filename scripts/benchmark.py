"""Time gamut's real training step, its data loader and its color conversions; report JSON.

    python scripts/benchmark.py stylegan2 --resolution 32 --batch 16 --channel-base 16384 --steps 16
    python scripts/benchmark.py segan --mode 2 --resolution 64 --batch 16 --channel-base 32768 --z-dim 64
    python scripts/benchmark.py chromagan --resolution 224 --batch 10 --weights-dir ~/.cache/torch/hub/checkpoints
    python scripts/benchmark.py loader --source zip --resolution 64 --workers 2 --batch 32 --steps 50
    python scripts/benchmark.py colorspace --space all --resolution 256 --batch 16

A full iteration is Gmain + Dmain, plus path length every 4 and R1 every 16 iterations, so the
timed window (``--steps``, rounded up to a multiple of 16) amortizes the regularization exactly as
training does. The step runs inside a real Lightning Trainer, as ``make train`` runs it; data are
random uint8 images already in memory, so the figure is the model's, not the loader's.
Prints: images/s, seconds per iteration, seconds per kimg, peak memory (CPU RSS or CUDA allocated).
``segan`` times the same iteration for SEGAN ``--mode`` 0-3; ``chromagan`` one ChromaGAN iteration
(G step, critic step with the gradient penalty, and the VGG-16 teacher when ``--weights-dir`` holds it).

``loader``: images/s through the real train loader of :class:`ImageDataModule` over an
:class:`ImageFolderDataset` (PNG decoding, crop/resize, collation, the transfer to ``--device`` and
``on_after_batch_transfer``'s color encoding). Without ``--root`` it first writes ``--images`` random
PNGs at the target resolution into a temporary folder, or a dataset_tool zip of them. The first
``--warmup`` batches (worker start-up) are not timed.

``colorspace``: milliseconds per batch for ``encode`` and ``decode`` of each color space on
``--device`` (median of ``--repeats``), and, when scikit-image is installed (``pip install
scikit-image``, or the ``bench`` extra), the same round trip with skimage on the CPU for comparison.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.callbacks.limits import StopAtIteration  # noqa: E402
from src.datamodules.colorspaces import COLORSPACE_NAMES, get_colorspace  # noqa: E402
from src.datamodules.image_datamodule import ImageDataModule  # noqa: E402
from src.datamodules.readers import ImageFolderDataset  # noqa: E402
from src.modules.chromagan.module import ChromaGAN  # noqa: E402
from src.modules.segan.module import SEGAN  # noqa: E402
from src.modules.stylegan2.module import StyleGAN2  # noqa: E402
from src.utils.resolution import parse_resolution  # noqa: E402


class RandomImages(torch.utils.data.Dataset):
    """Fixed random uint8 images (no decoding or drawing cost)."""

    def __init__(self, n: int, channels: int, resolution: tuple[int, int], seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (n, channels, *resolution), dtype=torch.uint8, generator=g)
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": torch.tensor(0)}


class IterationTimer(Callback):
    """Wall time from the start of iteration ``warmup`` to the end of the last one."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.t0, self.t1, self.timed = warmup, None, None, 0

    def _sync(self, pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.iteration == self.warmup:
            self._sync(pl_module)
            if pl_module.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(pl_module.device)
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.t0 is not None:
            self.timed += 1
            self._sync(pl_module)
            self.t1 = time.perf_counter()


def _time_fit(model, dm, args, iterations: int) -> tuple[IterationTimer, pl.Trainer]:
    """Fit ``model`` for ``warmup + iterations`` iterations in a real Trainer; time the last ``iterations``."""
    timer = IterationTimer(args.warmup)
    trainer = pl.Trainer(accelerator=args.device, devices=1, precision=args.precision, max_steps=-1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False, limit_val_batches=0,
                         num_sanity_val_steps=0, callbacks=[timer, StopAtIteration(args.warmup + iterations)])
    trainer.fit(model, datamodule=dm)
    return timer, trainer


def _report(name: str, model, timer: IterationTimer, args, res, **extra) -> dict:
    it = (timer.t1 - timer.t0) / timer.timed
    out = {
        "model": name, "device": str(model.device), "precision": args.precision, "resolution": list(res),
        "batch": args.batch, **extra, "timed_iterations": timer.timed,
        "sec_per_iteration": round(it, 4), "images_per_sec": round(args.batch / it, 3),
        "sec_per_kimg": round(1000 / args.batch * it, 1),
        "params_G": sum(p.numel() for p in model.G.parameters()),
        "params_D": sum(p.numel() for p in model.D.parameters()),
    }
    if model.device.type == "cuda":
        out["peak_memory_mb"] = round(torch.cuda.max_memory_allocated(model.device) / 2**20, 1)
        out["gpu"] = torch.cuda.get_device_name(model.device)
    else:
        out["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # RSS
        out["cpu_threads"] = torch.get_num_threads()
    out["torch"] = torch.__version__
    out["machine"] = platform.machine()
    return out


def bench_stylegan2(args) -> dict:
    """StyleGAN2 (``what=stylegan2``) or SEGAN in ``--mode`` 0-3 (``what=segan``): one full iteration."""
    res = parse_resolution(args.resolution if len(args.resolution) == 2 else args.resolution[0], "--resolution")
    steps = max(16, math.ceil(args.steps / 16) * 16)
    kwargs = dict(img_channels=3, resolution=list(res), z_dim=args.z_dim, w_dim=args.z_dim,
                  map_depth=args.map_depth, channel_base=args.channel_base, channel_max=args.channel_max,
                  mbstd_group=min(4, args.batch), check_finite_every=0)
    extra = dict(channel_base=args.channel_base, channel_max=args.channel_max, map_depth=args.map_depth)
    if args.what == "segan":
        model = SEGAN(mode=args.mode, **kwargs)
        extra["mode"] = args.mode
    else:
        model = StyleGAN2(**kwargs)
    dm = ImageDataModule(RandomImages(max(args.batch * 4, 64), 3, res), batch_size=args.batch,
                         resolution=list(res))
    timer, _ = _time_fit(model, dm, args, steps)
    return _report(args.what, model, timer, args, res, **extra)


def bench_chromagan(args) -> dict:
    """One ChromaGAN iteration (spec chromagan §6): teacher (with ``--weights-dir``), G step, critic step
    with the gradient penalty, at ``--resolution`` (default 224) and ``--width`` (1.0 = the paper)."""
    res = tuple(args.resolution) if len(args.resolution) == 2 else (args.resolution[0],) * 2
    teacher = args.weights_dir is not None
    model = ChromaGAN(resolution=list(res), width=args.width, trunk_pretrained=False, weights_dir=args.weights_dir,
                      critic={"width": args.width},
                      loss=None if teacher else {"lambda_kl": 0.0}, check_finite_every=0)
    dm = ImageDataModule(RandomImages(max(args.batch * 4, 40), 3, res), colorspace="lab", batch_size=args.batch,
                         resolution=list(res))
    timer, _ = _time_fit(model, dm, args, args.steps)
    return _report("chromagan", model, timer, args, res, width=args.width, teacher=teacher)


# --------------------------------------------------------------------------------------------
# loader
# --------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def write_random_images(root: Path, source: str, n: int, resolution: tuple[int, int], seed: int = 0) -> Path:
    """``n`` random RGB PNGs of ``resolution`` as a folder, or as a dataset_tool zip; returns the path."""
    from PIL import Image

    from scripts.prepare_dataset import archive_name  # the dataset_tool naming

    rng = np.random.default_rng(seed)
    h, w = resolution
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    zf = zipfile.ZipFile(root / "images.zip", "w", compression=zipfile.ZIP_STORED) if source == "zip" else None
    for i in range(n):
        # smooth random images (a noise tile upsampled): PNG sizes closer to photos than white noise
        tile = rng.integers(0, 256, (max(1, h // 8), max(1, w // 8), 3), dtype=np.uint8)
        img = Image.fromarray(tile).resize((w, h), Image.Resampling.BILINEAR)
        if zf is None:
            img.save(folder / f"{i:06d}.png", compress_level=0)
        else:
            import io

            buf = io.BytesIO()
            img.save(buf, format="PNG", compress_level=0)
            zf.writestr(archive_name(i), buf.getvalue())
    if zf is not None:
        zf.writestr("dataset.json", json.dumps({"labels": None}))
        zf.close()
        return root / "images.zip"
    return folder


def bench_loader(args) -> dict:
    res = parse_resolution(args.resolution if len(args.resolution) == 2 else args.resolution[0], "--resolution")
    device = torch.device("cuda" if args.device in ("gpu", "cuda") else args.device)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory(prefix="gamut-bench-") as tmp:
        root = Path(args.root) if args.root else write_random_images(Path(tmp), args.source, args.images, res)
        dataset = ImageFolderDataset(root, resolution=list(res), channels=get_colorspace(args.space).input_channels)
        dm = ImageDataModule(dataset, colorspace=args.space, resolution=list(res), batch_size=args.batch,
                             num_workers=args.workers, seed=0)
        dm.setup("fit")
        it = iter(dm.train_dataloader())
        pin = device.type == "cuda"

        def step() -> None:
            batch = next(it)
            batch = {k: v.to(device, non_blocking=pin) for k, v in batch.items()}
            dm.on_after_batch_transfer(batch, 0)

        for _ in range(args.warmup):
            step()
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        _sync(device)
        secs = time.perf_counter() - t0
        del it
        out = {
            "what": "loader", "source": "zip" if str(root).endswith(".zip") else "folder",
            "root": str(args.root) if args.root else f"{len(dataset)} random PNGs (temporary)",
            "resolution": list(res), "batch": args.batch, "workers": args.workers, "colorspace": args.space,
            "device": str(device), "timed_batches": args.steps, "sec_per_batch": round(secs / args.steps, 5),
            "images_per_sec": round(args.steps * args.batch / secs, 1),
            "cpu_threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(),
        }
    return out


# --------------------------------------------------------------------------------------------
# colorspace
# --------------------------------------------------------------------------------------------


def _skimage_pairs() -> dict | None:
    """skimage's forward/inverse for each space (HWC float arrays in [0, 1]); None when not installed."""
    try:
        import skimage.color as SC
    except ImportError:
        return None
    return {
        "gray": (SC.rgb2gray, SC.gray2rgb),
        "hsv": (SC.rgb2hsv, SC.hsv2rgb),
        "lab": (SC.rgb2lab, SC.lab2rgb),
        "ycbcr": (SC.rgb2ycbcr, SC.ycbcr2rgb),
    }


def _median_ms(fn, repeats: int, device: torch.device | None = None) -> float:
    times = []
    for _ in range(repeats):
        if device is not None:
            _sync(device)
        t0 = time.perf_counter()
        fn()
        if device is not None:
            _sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 3)


def bench_colorspace(args) -> dict:
    res = parse_resolution(args.resolution if len(args.resolution) == 2 else args.resolution[0], "--resolution")
    device = torch.device("cuda" if args.device in ("gpu", "cuda") else args.device)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spaces = list(COLORSPACE_NAMES) if args.space == "all" else [args.space]
    sk = _skimage_pairs()
    g = torch.Generator().manual_seed(0)
    rows = []
    for name in spaces:
        cs = get_colorspace(name, "--space")
        x = torch.rand(args.batch, cs.input_channels, *res, generator=g).to(device)
        with torch.no_grad():
            y = cs.encode(x)
            for _ in range(args.warmup):
                cs.decode(cs.encode(x))
            row = {
                "space": name,
                "encode_ms": _median_ms(lambda: cs.encode(x), args.repeats, device),
                "decode_ms": _median_ms(lambda: cs.decode(y), args.repeats, device),
            }
        row["encode_decode_ms"] = round(row["encode_ms"] + row["decode_ms"], 3)
        if sk is None:
            row["skimage_cpu_ms"] = "unavailable (scikit-image not installed)"
        elif name not in sk:
            row["skimage_cpu_ms"] = "n/a (no skimage equivalent)"
        else:
            fwd, inv = sk[name]
            imgs = [a for a in x[:, :3].cpu().permute(0, 2, 3, 1).double().numpy()]
            enc = [fwd(a) for a in imgs]

            def roundtrip() -> None:
                for a in imgs:
                    inv(fwd(a))

            row["skimage_cpu_ms"] = _median_ms(roundtrip, max(1, args.repeats // 2))
            row["skimage_encode_ms"] = _median_ms(lambda: [fwd(a) for a in imgs], max(1, args.repeats // 2))
            del enc
        rows.append(row)
    return {
        "what": "colorspace", "device": str(device), "resolution": list(res), "batch": args.batch,
        "repeats": args.repeats, "results": rows, "skimage": sk is not None,
        "cpu_threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(),
    }


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

_DEFAULTS = {  # per subcommand: resolution, batch, steps, warmup
    "stylegan2": ([32], 16, 16, 2),
    "segan": ([32], 16, 16, 2),
    "chromagan": ([224], 10, 4, 1),
    "loader": ([64], 32, 50, 4),
    "colorspace": ([256], 16, None, 2),
}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=list(_DEFAULTS), help="what to time")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "gpu", "auto"])
    p.add_argument("--precision", default="32-true")
    p.add_argument("--resolution", type=int, nargs="+", default=None,
                   help="R or H W (default: 32 stylegan2, 64 loader, 256 colorspace)")
    p.add_argument("--batch", type=int, default=None, help="default: 16 (loader: 32)")
    p.add_argument("--channel-base", type=int, default=16384)
    p.add_argument("--channel-max", type=int, default=512)
    p.add_argument("--map-depth", type=int, default=8)
    p.add_argument("--z-dim", type=int, default=512)
    p.add_argument("--steps", type=int, default=None,
                   help="timed iterations (stylegan2: 16, rounded up to a multiple of 16; loader: 50 batches)")
    p.add_argument("--warmup", type=int, default=None, help="untimed iterations/batches first (default 2; loader 4)")
    p.add_argument("--source", default="folder", choices=["folder", "zip"], help="loader: temporary data format")
    p.add_argument("--root", default=None, help="loader: a folder or zip to read instead of temporary images")
    p.add_argument("--images", type=int, default=512, help="loader: temporary images to write")
    p.add_argument("--workers", type=int, default=0, help="loader: DataLoader workers")
    p.add_argument("--space", default=None, help="colorspace: all or one of " + ", ".join(COLORSPACE_NAMES)
                   + "; loader: the color space to encode into (default rgb)")
    p.add_argument("--mode", type=int, default=2, choices=[0, 1, 2, 3], help="segan: SEGAN mode")
    p.add_argument("--width", type=float, default=1.0, help="chromagan: conv channel multiplier (1.0 = the paper)")
    p.add_argument("--weights-dir", default=None,
                   help="chromagan: folder with vgg16-397923af.pth to include the teacher (default: no teacher)")
    p.add_argument("--repeats", type=int, default=10, help="colorspace: timed repetitions (median)")
    p.add_argument("--threads", type=int, default=None, help="loader, colorspace: torch CPU threads (default: torch's)")
    args = p.parse_args(argv)
    res, batch, steps, warmup = _DEFAULTS[args.what]
    args.resolution = args.resolution or res
    args.batch = args.batch or batch
    args.steps = args.steps or steps
    args.warmup = warmup if args.warmup is None else args.warmup
    if args.space is None:
        args.space = "all" if args.what == "colorspace" else "rgb"
    if args.space != "all" or args.what != "colorspace":
        get_colorspace(args.space, "--space")
    if args.device == "cuda":
        args.device = "gpu"
    if args.threads is not None and args.what in ("loader", "colorspace"):
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.what in ("stylegan2", "segan"):
        result = bench_stylegan2(args)
    elif args.what == "chromagan":
        result = bench_chromagan(args)
    elif args.what == "loader":
        result = bench_loader(args)
    else:
        result = bench_colorspace(args)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
