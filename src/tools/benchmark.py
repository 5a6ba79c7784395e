"""Time gamut's real training step, its data loader and its color conversions; report JSON.

    python scripts/benchmark.py stylegan2 resolution=32 batch=16 channel_base=16384 steps=16
    python scripts/benchmark.py stylegan2 ... nvidia=~/src/stylegan3      # NVIDIA's, same run
    python scripts/benchmark.py stylegan2 resolution=32 batch=16 channel_base=16384 steps=16 augment=ada
    python scripts/benchmark.py inference resolution=256 batch=16 channel_base=16384 nvidia=~/src/stylegan3
    python scripts/benchmark.py segan mode=2 resolution=64 batch=16 channel_base=32768 z_dim=64
    python scripts/benchmark.py chromagan resolution=224 batch=10 weights_dir=~/.cache/torch/hub/checkpoints
    python scripts/benchmark.py loader source=zip resolution=64 workers=2 batch=32 steps=50
    python scripts/benchmark.py colorspace space=all resolution=256 batch=16
    python scripts/benchmark.py explore resolution=256 channel_base=16384 steps=10

The first argument names what to time; ``key=value`` items follow, as for every gamut tool
(``resolution`` is ``R`` or ``[H,W]``). A full iteration is Gmain + Dmain, plus path length every 4
and R1 every 16 iterations, so the timed window (``steps``, rounded up to a multiple of 16)
amortizes the regularization exactly as training does. The step runs inside a real Lightning
Trainer, as ``make train`` runs it; data are random uint8 images already in memory
(:class:`src.profiling.harness.RandomImages`), so the figure is the model's, not the loader's.
Prints: images/s, seconds per iteration, seconds per kimg, peak memory (CPU RSS or CUDA allocated),
and per phase (Gmain, Greg, Dmain, Dreg) the mean seconds, the FLOPs (counted on iteration 0 with
``FlopCount``) and the fraction of the device's peak: on CPU the measured best of a square
matmul, on known GPUs the data-sheet dense peak (the model FLOP utilization, MFU).
``compile=true``, ``channels_last=true`` and ``precision=`` set ``model.perf`` and the trainer as
training does; ``augment=ada|fixed|diffaugment`` (with ``augment_p``, default 0.5, and
``augment_pipeline``, default ``bgc``) times the step with D's augmentation on (``model.augment``).
``nvidia=PATH`` also times NVIDIA's StyleGAN2 from a checkout of NVlabs/stylegan3 at
PATH (``training/networks_stylegan2.py`` and its ``StyleGAN2Loss``) at the same architecture, in the
same process, and reports both and the speed-up (:mod:`src.profiling.nvidia_reference`).

``inference``: seconds per batch of ``G(z)`` (mapping + synthesis, constant noise, no grad), with the
same keys; ``nvidia=PATH`` times NVIDIA's generator in eval mode alongside; ``modconv=grouped`` runs
the modulated convolution as one grouped conv with per-sample weights instead of activation scaling
around one shared conv (``scaled``).
``segan`` times the same iteration for SEGAN ``mode`` 0-3; ``chromagan`` one ChromaGAN iteration
(G step, critic step with the gradient penalty, and the VGG-16 teacher when ``weights_dir`` holds
``vgg16-397923af.pth``) at ``width`` (conv channel multiplier, 1.0 = the paper).

``explore``: the latent explorer's latency per live control (ψ slider with the mapping cached, a new
seed, the interpolation slider, a SEGAN value slider in ``mode``): the median seconds from the change
to the PNG the page receives, batch 1, channels-last, over a random StyleGAN2 and SEGAN of the given
size (``images``: latents behind SEGAN's σ units, timed once as ``segan_stats_sec``).

``loader``: images/s through the real train loader of :class:`ImageDataModule` over an
:class:`ImageFolderDataset` (PNG decoding, crop/resize, collation, the transfer to ``device`` and
``on_after_batch_transfer``'s color encoding into ``space``). Without ``root`` it first writes
``images`` random PNGs at the target resolution into a temporary folder, or a dataset_tool zip of
them (``source=zip``); ``workers`` DataLoader workers. The first ``warmup`` batches (worker start-up)
are not timed.

``colorspace``: milliseconds per batch for ``encode`` and ``decode`` of each color space (``space=all``
or one name) on ``device`` (median of ``repeats``), and, when scikit-image is installed (``pip install
scikit-image``, or the ``bench`` extra), the same round trip with skimage on the CPU for comparison.

Keys every subcommand takes: ``device`` (cpu | cuda | gpu | auto), ``resolution``, ``batch``,
``warmup``, ``system_malloc`` (true: leave glibc's malloc as is; default: keep freed CPU memory, as
training does); the model subcommands also ``precision`` (32-true | bf16-mixed | 16-mixed),
``compile``, ``channels_last``, ``steps``; the StyleGAN2-type ones ``channel_base``, ``channel_max``,
``map_depth``, ``z_dim``; ``loader`` and ``colorspace`` also ``threads`` (torch CPU threads).
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import sys
import tempfile
import time
import types
import zipfile
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from src.callbacks.limits import bare_trainer
from src.colorspaces import COLORSPACE_NAMES, get_colorspace
from src.datamodules.image_datamodule import ImageDataModule
from src.datamodules.readers import ImageFolderDataset, archive_name
from src.modules.chromagan.module import ChromaGAN
from src.modules.segan.module import SEGAN
from src.modules.stylegan2.generator import Generator
from src.modules.stylegan2.module import StyleGAN2
from src.profiling.harness import IterationTimer, RandomImages
from src.profiling.measure import (
    FlopCount,
    PhaseRecorder,
    memory_report,
    peak_gflops,
    phase_report,
    significant,
    synchronize,
)
from src.utils.cli import console_entry, parse_subcommand
from src.utils.malloc import keep_freed_cpu_memory
from src.utils.resolution import parse_resolution

PROG = "benchmark.py"


def _time_fit(model, dm, args, iterations: int) -> tuple[IterationTimer, pl.Trainer]:
    """Fit ``model`` for ``warmup + iterations`` iterations in a real Trainer; time the last ``iterations``."""
    timer = IterationTimer(args.warmup)
    trainer = bare_trainer(
        args.warmup + iterations, callbacks=[timer], accelerator=args.device, precision=args.precision
    )
    trainer.fit(model, datamodule=dm)
    return timer, trainer


def _report(name: str, model, timer: IterationTimer, args, res, **extra) -> dict:
    it = (timer.t1 - timer.t0) / timer.timed
    out = {
        "model": name,
        "device": str(model.device),
        "precision": args.precision,
        "resolution": list(res),
        "batch": args.batch,
        "compile": args.compile,
        "channels_last": args.channels_last,
        "malloc_cache": not args.system_malloc,
        **extra,
        "timed_iterations": timer.timed,
        "sec_per_iteration": round(it, 4),
        "images_per_sec": round(args.batch / it, 3),
        "sec_per_kimg": round(1000 / args.batch * it, 1),
        "params_G": sum(p.numel() for p in model.G.parameters()),
        "params_D": sum(p.numel() for p in model.D.parameters()),
    }
    rec = model.phase_recorder
    if rec is not None and rec.calls:
        peak, source = peak_gflops(model.device, args.precision)
        out.update(phase_report(rec, model.phase_intervals(), peak, it))
        out["peak_gflops"], out["peak_source"] = round(peak, 1), source
    out.update(memory_report(model.device))
    out["torch"] = torch.__version__
    out["machine"] = platform.machine()
    return out


def bench_stylegan2(args) -> dict:
    """StyleGAN2 (``what=stylegan2``) or SEGAN in ``mode`` 0-3 (``what=segan``): one full iteration."""
    res = parse_resolution(args.resolution if len(args.resolution) == 2 else args.resolution[0], "resolution")
    steps = max(16, math.ceil(args.steps / 16) * 16)
    kwargs = dict(
        img_channels=3,
        resolution=list(res),
        z_dim=args.z_dim,
        w_dim=args.z_dim,
        map_depth=args.map_depth,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        mbstd_group=min(4, args.batch),
        check_finite_every=0,
        perf=dict(compile=args.compile, channels_last=args.channels_last),
        augment=dict(mode=args.augment, p=args.augment_p, pipeline=args.augment_pipeline),
    )
    extra = dict(channel_base=args.channel_base, channel_max=args.channel_max, map_depth=args.map_depth)
    if args.augment != "none":
        extra |= dict(augment=args.augment, augment_p=args.augment_p, augment_pipeline=args.augment_pipeline)
    if args.what == "segan":
        model = SEGAN(mode=args.mode, **kwargs)
        extra["mode"] = args.mode
    else:
        model = StyleGAN2(**kwargs)
    model.phase_recorder = PhaseRecorder(_device(args))
    data = RandomImages(max(args.batch * 4, 64), 3, res)
    dm = ImageDataModule(data, batch_size=args.batch, resolution=list(res))
    timer, _ = _time_fit(model, dm, args, steps)
    ours = _report(args.what, model, timer, args, res, **extra)
    if not args.nvidia:
        return ours
    from src.profiling import nvidia_reference

    flops = dict(model.phase_recorder.flops)
    del model, dm
    theirs = nvidia_reference.time_training(args.nvidia, data, args, _device(args), steps, flops)
    return _side_by_side(ours, theirs, "sec_per_iteration")


def _side_by_side(ours: dict, theirs: dict, key: str) -> dict:
    """Both reports and how many times faster gamut is (``theirs[key] / ours[key]``)."""
    return {
        "gamut": ours,
        "nvidia": theirs,
        "speedup": round(theirs[key] / ours[key], 3),
        "same_parameter_counts": all(ours.get(k) == theirs.get(k) for k in ("params_G", "params_D") if k in theirs),
    }


def _device(args) -> torch.device:
    return torch.device("cuda" if args.device in ("gpu", "cuda") else "cpu")  # main() resolved "auto"


def bench_inference(args) -> dict:
    """Seconds per batch of ``G(z)`` (mapping and synthesis, constant noise, psi 1, no grad)."""
    res = parse_resolution(args.resolution if len(args.resolution) == 2 else args.resolution[0], "resolution")
    device = _device(args)
    G = (
        Generator(
            z_dim=args.z_dim,
            w_dim=args.z_dim,
            resolution=res,
            img_channels=3,
            map_depth=args.map_depth,
            channel_base=args.channel_base,
            channel_max=args.channel_max,
        )
        .eval()
        .requires_grad_(False)
        .to(device)
    )
    fused = args.modconv == "grouped"
    ours = time_generator(G, args, res, "gamut", lambda z: G(z, noise_mode="const", fused=fused))
    ours["modconv"] = args.modconv
    if not args.nvidia:
        return ours
    from src.profiling import nvidia_reference

    flops = ours["flops_per_batch"]
    theirs = nvidia_reference.time_inference(args.nvidia, args, device, res, time_generator, flops)
    return _side_by_side(ours, theirs, "sec_per_batch")


def time_generator(G: torch.nn.Module, args, res, name: str, call, model_flops: int | None = None) -> dict:
    """Time ``call(z)`` (``G`` with constant noise) over ``steps`` batches after ``warmup``.

    ``channels_last`` converts G's weights, ``compile`` wraps the call in ``torch.compile``,
    ``precision`` ``bf16-mixed``/``16-mixed`` runs it under autocast. FLOPs are ``model_flops`` (per
    batch) when given, else counted on one extra eager call.
    """
    device = _device(args)
    if args.channels_last:
        G.to(memory_format=torch.channels_last)
    z = torch.randn(args.batch, args.z_dim, device=device, generator=torch.Generator(device).manual_seed(0))
    if model_flops is None:
        counter = FlopCount()
        with torch.inference_mode(), counter:
            call(z)
        model_flops = counter.total
    run = torch.compile(call) if args.compile else call
    autocast = args.precision in ("bf16-mixed", "16-mixed")
    dtype = torch.bfloat16 if "bf16" in args.precision else torch.float16

    def once():
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=autocast):
            return run(z)

    for _ in range(args.warmup):
        once()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(args.steps):
        synchronize(device)
        t0 = time.perf_counter()
        once()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    sec = statistics.median(times)
    peak, source = peak_gflops(device, args.precision)
    gflop = model_flops / 1e9
    out = {
        "model": name,
        "what": "inference",
        "device": str(device),
        "precision": args.precision,
        "resolution": list(res),
        "batch": args.batch,
        "compile": args.compile,
        "channels_last": args.channels_last,
        "channel_base": args.channel_base,
        "channel_max": args.channel_max,
        "map_depth": args.map_depth,
        "timed_batches": args.steps,
        "sec_per_batch": round(sec, 4),
        "sec_per_batch_min": round(min(times), 4),
        "images_per_sec": round(args.batch / sec, 2),
        "flops_per_batch": round(gflop * 1e9),
        "gflop_per_image": significant(gflop / args.batch),
        "gflops": significant(gflop / sec),
        "peak_fraction": significant(gflop / sec / peak),
        "peak_gflops": round(peak, 1),
        "peak_source": source,
        "params_G": sum(p.numel() for p in G.parameters()),
    }
    out.update(memory_report(device))
    out["torch"] = torch.__version__
    out["malloc_cache"] = not args.system_malloc
    return out


def bench_explore(args) -> dict:
    """Seconds from a control change to the PNG the explorer's page receives (the server function and
    the PNG encoding), batch 1, channels-last, for each live control of the page."""
    import io

    from PIL import Image

    from src.checkpoints.load import InferenceModel
    from src.explorer.views import Explorer
    from src.modules.segan.generator import SEGANGenerator

    res = parse_resolution(args.resolution if len(args.resolution) == 2 else args.resolution[0], "resolution")
    device = _device(args)
    arch = dict(z_dim=args.z_dim, w_dim=args.z_dim, resolution=res, img_channels=3, map_depth=args.map_depth,
                channel_base=args.channel_base, channel_max=args.channel_max)  # fmt: skip
    out = {"what": "explore", "device": str(device), "resolution": list(res), "channel_base": args.channel_base,
           "map_depth": args.map_depth, "timed_changes": args.steps, "torch": torch.__version__}  # fmt: skip
    with tempfile.TemporaryDirectory() as ws:
        views = {}
        for name, cls in (("stylegan2", Generator), ("segan", SEGANGenerator)):
            g = (cls(**arch, mode=args.mode) if cls is SEGANGenerator else cls(**arch)).eval().requires_grad_(False)
            g = g.to(device).to(memory_format=torch.channels_last)
            views[name] = Explorer(InferenceModel(g, get_colorspace("rgb"), Path(name)), ws, stats_n=args.images)
        ex, seg = views["stylegan2"], views["segan"]
        t0 = time.perf_counter()
        seg.coord_stats()  # once per model and class, before the first SEGAN slider move
        out["segan_stats_sec"] = round(time.perf_counter() - t0, 3)
        controls = {  # control -> the call one change makes (k: the change's index)
            "psi_slider": lambda k: ex.seed_grid("0", 0.5 + 0.05 * (k % 10)),
            "seed_change": lambda k: ex.seed_grid(str(1000 + k)),
            "interpolation_slider": lambda k: ex.interpolation_frame(0, 1, (k % 10) / 10),
            "segan_value_slider": lambda k: seg.segan_edit(0, 1, 0, 0, -2.0 + 0.4 * (k % 10)),
        }
        for name, call in controls.items():

            def change(k: int) -> int:
                buf = io.BytesIO()
                Image.fromarray(call(k)).save(buf, format="PNG")  # what Gradio sends the page
                return buf.tell()

            for k in range(args.warmup):
                change(-1 - k)
            times = []
            for k in range(args.steps):
                synchronize(device)
                t0 = time.perf_counter()
                change(k)
                synchronize(device)
                times.append(time.perf_counter() - t0)
            out[f"{name}_sec"] = round(statistics.median(times), 4)
            out[f"{name}_sec_max"] = round(max(times), 4)
    return out


def bench_chromagan(args) -> dict:
    """One ChromaGAN iteration (official order): teacher (with ``weights_dir``), G step, critic step
    with the gradient penalty, at ``resolution`` (default 224) and ``width`` (1.0 = the paper)."""
    res = tuple(args.resolution) if len(args.resolution) == 2 else (args.resolution[0],) * 2
    teacher = args.weights_dir is not None
    model = ChromaGAN(
        resolution=list(res),
        width=args.width,
        trunk_pretrained=False,
        weights_dir=args.weights_dir,
        critic={"width": args.width},
        loss=None if teacher else {"lambda_kl": 0.0},
        check_finite_every=0,
        perf=dict(compile=args.compile, channels_last=args.channels_last),
    )
    model.phase_recorder = PhaseRecorder(_device(args))
    dm = ImageDataModule(
        RandomImages(max(args.batch * 4, 40), 3, res), colorspace="lab", batch_size=args.batch, resolution=list(res)
    )
    timer, _ = _time_fit(model, dm, args, args.steps)
    return _report("chromagan", model, timer, args, res, width=args.width, teacher=teacher)


# --------------------------------------------------------------------------------------------
# loader
# --------------------------------------------------------------------------------------------


def write_random_images(root: Path, source: str, n: int, resolution: tuple[int, int], seed: int = 0) -> Path:
    """``n`` random RGB PNGs of ``resolution`` as a folder, or as a dataset_tool zip; returns the path."""
    from PIL import Image

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
    res = parse_resolution(args.resolution if len(args.resolution) == 2 else args.resolution[0], "resolution")
    device = _device(args)
    with tempfile.TemporaryDirectory(prefix="gamut-bench-") as tmp:
        root = Path(args.root) if args.root else write_random_images(Path(tmp), args.source, args.images, res)
        dataset = ImageFolderDataset(root, resolution=list(res), channels=get_colorspace(args.space).input_channels)
        dm = ImageDataModule(
            dataset,
            colorspace=args.space,
            resolution=list(res),
            batch_size=args.batch,
            num_workers=args.workers,
            seed=0,
        )
        dm.setup("fit")
        it = iter(dm.train_dataloader())
        pin = device.type == "cuda"

        def step() -> None:
            batch = next(it)
            batch = {k: v.to(device, non_blocking=pin) for k, v in batch.items()}
            dm.on_after_batch_transfer(batch, 0)

        for _ in range(args.warmup):
            step()
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        synchronize(device)
        secs = time.perf_counter() - t0
        it = None  # the loader's workers stop before the temporary folder goes
        out = {
            "what": "loader",
            "source": "zip" if str(root).endswith(".zip") else "folder",
            "root": str(args.root) if args.root else f"{len(dataset)} random PNGs (temporary)",
            "resolution": list(res),
            "batch": args.batch,
            "workers": args.workers,
            "colorspace": args.space,
            "device": str(device),
            "timed_batches": args.steps,
            "sec_per_batch": round(secs / args.steps, 5),
            "images_per_sec": round(args.steps * args.batch / secs, 1),
            "cpu_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "machine": platform.machine(),
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
            synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device is not None:
            synchronize(device)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 3)


def bench_colorspace(args) -> dict:
    res = parse_resolution(args.resolution if len(args.resolution) == 2 else args.resolution[0], "resolution")
    device = _device(args)
    spaces = list(COLORSPACE_NAMES) if args.space == "all" else [args.space]
    sk = _skimage_pairs()
    g = torch.Generator().manual_seed(0)
    rows = []
    for name in spaces:
        cs = get_colorspace(name, "space")
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

            def roundtrip() -> None:
                for a in imgs:
                    inv(fwd(a))

            row["skimage_cpu_ms"] = _median_ms(roundtrip, max(1, args.repeats // 2))
            row["skimage_encode_ms"] = _median_ms(lambda: [fwd(a) for a in imgs], max(1, args.repeats // 2))
        rows.append(row)
    return {
        "what": "colorspace",
        "device": str(device),
        "resolution": list(res),
        "batch": args.batch,
        "repeats": args.repeats,
        "results": rows,
        "skimage": sk is not None,
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
    }


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

_SIZES = {  # per subcommand: resolution, batch, steps, warmup
    "stylegan2": ([32], 16, 16, 2),
    "segan": ([32], 16, 16, 2),
    "inference": ([256], 16, 5, 1),
    "explore": ([256], 1, 10, 2),
    "chromagan": ([224], 10, 4, 1),
    "loader": ([64], 32, 50, 4),
    "colorspace": ([256], 16, None, 2),
}

_BASE = dict(device="cpu", resolution=None, batch=None, warmup=None, system_malloc=False)
_TRAINING = dict(precision="32-true", compile=False, channels_last=False, steps=None)
_STYLEGAN = dict(channel_base=16384, channel_max=512, map_depth=8, z_dim=512)
_AUGMENT = dict(augment="none", augment_p=0.5, augment_pipeline="bgc")  # model.augment's mode, p, pipeline
# The keys each subcommand takes, with their defaults (None: the subcommand's own, from _SIZES).
COMMANDS: dict[str, dict] = {
    "stylegan2": _BASE | _TRAINING | _STYLEGAN | _AUGMENT | dict(nvidia=None),
    "segan": _BASE | _TRAINING | _STYLEGAN | _AUGMENT | dict(mode=2),
    "inference": _BASE | _TRAINING | _STYLEGAN | dict(nvidia=None, modconv="scaled"),
    "chromagan": _BASE | _TRAINING | dict(width=1.0, weights_dir=None),
    "explore": _BASE | _STYLEGAN | dict(steps=None, mode=2, images=10000),
    "loader": _BASE | dict(steps=None, source="folder", root=None, images=512, workers=0, space="rgb", threads=None),
    "colorspace": _BASE | dict(space="all", repeats=10, threads=None),
}
_ALL = {k: v for keys in COMMANDS.values() for k, v in keys.items()}
_CHOICES = {
    "device": ("cpu", "cuda", "gpu", "auto"),
    "modconv": ("scaled", "grouped"),
    "mode": (0, 1, 2, 3),
    "source": ("folder", "zip"),
    "augment": ("none", "ada", "fixed", "diffaugment"),
}
_INTS = (
    "batch",
    "steps",
    "warmup",
    "channel_base",
    "channel_max",
    "map_depth",
    "z_dim",
    "images",
    "workers",
    "repeats",
    "threads",
)


def _check(what: str, cfg: dict) -> None:
    """One line naming the key for a value of the wrong kind (SystemExit)."""

    def bad(key: str, expected: str) -> SystemExit:
        return SystemExit(f"{PROG} {what}: {key}={cfg[key]!r}: expected {expected}")

    for key, value in cfg.items():
        if value is None and _ALL[key] is None:
            continue
        if key in _CHOICES and value not in _CHOICES[key]:
            raise bad(key, "one of " + ", ".join(map(str, _CHOICES[key])))
        if key in _INTS and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad(key, "an integer")
        if isinstance(_ALL[key], bool) and not isinstance(value, bool):
            raise bad(key, "true or false")
        if key in ("width", "augment_p") and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise bad(key, "a number")
    res = cfg["resolution"]
    if res is not None and not (
        isinstance(res, int)
        and not isinstance(res, bool)
        or isinstance(res, list)
        and len(res) in (1, 2)
        and all(type(s) is int for s in res)
    ):
        raise bad("resolution", "R or [H,W] (integers)")


def parse_args(argv: list[str]) -> types.SimpleNamespace:
    """``what key=value ...`` -> a namespace with every key of every subcommand (``what`` too), the
    subcommand's defaults filled in. Exits with one line on an unknown subcommand, key or bad value."""
    what, cfg = parse_subcommand(argv, COMMANDS, PROG, kind="benchmark")
    given = OmegaConf.to_container(cfg)
    _check(what, given)
    args = types.SimpleNamespace(**(_ALL | given), what=what)
    res, batch, steps, warmup = _SIZES[what]
    args.resolution = (
        res
        if args.resolution is None
        else ([args.resolution] if isinstance(args.resolution, int) else list(args.resolution))
    )
    args.batch = args.batch or batch
    args.steps = args.steps or steps
    args.warmup = warmup if args.warmup is None else args.warmup
    args.precision = str(args.precision)
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark ``argv`` names (``sys.argv[1:]`` when None), print its JSON report, return it."""
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.what == "loader" or (args.what == "colorspace" and args.space != "all"):
        get_colorspace(args.space, "space")
    if args.device == "auto":
        args.device = "gpu" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda":
        args.device = "gpu"
    if args.threads is not None and args.what in ("loader", "colorspace"):
        torch.set_num_threads(args.threads)
    if not args.system_malloc:
        keep_freed_cpu_memory()
    torch.manual_seed(0)
    if args.what in ("stylegan2", "segan"):
        result = bench_stylegan2(args)
    elif args.what == "inference":
        result = bench_inference(args)
    elif args.what == "chromagan":
        result = bench_chromagan(args)
    elif args.what == "explore":
        result = bench_explore(args)
    elif args.what == "loader":
        result = bench_loader(args)
    else:
        result = bench_colorspace(args)
    print(json.dumps(result))
    return result


cli = console_entry(main)

if __name__ == "__main__":
    main()
