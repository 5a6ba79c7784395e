"""Time gamut's real training step and report JSON.

    python scripts/benchmark.py stylegan2 --resolution 32 --batch 16 --channel-base 16384 --steps 16

A full iteration is Gmain + Dmain, plus path length every 4 and R1 every 16 iterations, so the
timed window (``--steps``, rounded up to a multiple of 16) amortizes the regularization exactly as
training does. The step runs inside a real Lightning Trainer, as ``make train`` runs it; data are
random uint8 images already in memory, so the figure is the model's, not the loader's.
Prints: images/s, seconds per iteration, seconds per kimg, peak memory (CPU RSS or CUDA allocated).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.callbacks.limits import StopAtIteration  # noqa: E402
from src.datamodules.image_datamodule import ImageDataModule  # noqa: E402
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


def bench_stylegan2(args) -> dict:
    res = parse_resolution(args.resolution if len(args.resolution) == 2 else args.resolution[0], "--resolution")
    steps = max(16, math.ceil(args.steps / 16) * 16)
    model = StyleGAN2(img_channels=3, resolution=list(res), z_dim=args.z_dim, w_dim=args.z_dim,
                      map_depth=args.map_depth, channel_base=args.channel_base, channel_max=args.channel_max,
                      mbstd_group=min(4, args.batch), check_finite_every=0)
    dm = ImageDataModule(RandomImages(max(args.batch * 4, 64), 3, res), batch_size=args.batch,
                         resolution=list(res))
    timer = IterationTimer(args.warmup)
    trainer = pl.Trainer(accelerator=args.device, devices=1, precision=args.precision, max_steps=-1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False, limit_val_batches=0,
                         num_sanity_val_steps=0, callbacks=[timer, StopAtIteration(args.warmup + steps)])
    trainer.fit(model, datamodule=dm)
    secs = timer.t1 - timer.t0
    it = secs / timer.timed
    out = {
        "model": "stylegan2", "device": str(model.device), "precision": args.precision,
        "resolution": list(res), "batch": args.batch, "channel_base": args.channel_base,
        "channel_max": args.channel_max, "map_depth": args.map_depth, "timed_iterations": timer.timed,
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


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["stylegan2"], help="what to time")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "gpu", "auto"])
    p.add_argument("--precision", default="32-true")
    p.add_argument("--resolution", type=int, nargs="+", default=[32], help="R or H W")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--channel-base", type=int, default=16384)
    p.add_argument("--channel-max", type=int, default=512)
    p.add_argument("--map-depth", type=int, default=8)
    p.add_argument("--z-dim", type=int, default=512)
    p.add_argument("--steps", type=int, default=16, help="timed iterations (rounded up to a multiple of 16)")
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args(argv)
    if args.device == "cuda":
        args.device = "gpu"
    torch.manual_seed(0)
    result = bench_stylegan2(args)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
