"""What every benchmark subject shares: its device and resolution, in-memory data, and a timed fit.

:class:`RandomImages` serves fixed random uint8 images (no decoding cost, so a timing is the
model's, not the loader's), :func:`shapes_images` the built-in shapes held in memory the same way (for
runs whose result is looked at, not only timed); :class:`IterationTimer` is a Lightning callback that times a window of
iterations inside a real ``Trainer.fit`` and switches a :class:`~src.profiling.measure.PhaseRecorder`
between counting FLOPs (iteration 0) and timing phases (the timed window); :func:`fit_timed` fits a
module that way, as ``make train`` runs it. :func:`device_of` and :func:`resolution_of` read the
arguments every subject takes (``device``, ``resolution``).
"""

from __future__ import annotations

import time
import types
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import Callback

from src.callbacks.limits import bare_trainer
from src.datamodules.dataset import BaseImageDataset
from src.datamodules.shapes import ShapesDataset
from src.profiling.measure import synchronize
from src.utils.resolution import parse_resolution

__all__ = ["RandomImages", "IterationTimer", "device_of", "fit_timed", "resolution_of", "shapes_images"]

#: the settings of ``data=shapes_easy`` (the shapes experiment=quickstart learns in minutes)
SHAPES_EASY = Path(__file__).resolve().parents[1] / "conf" / "data" / "shapes_easy.yaml"


class RandomImages(BaseImageDataset):
    """``n`` fixed random uint8 images ``[channels, *resolution]`` (label 0), drawn once from ``seed``."""

    def __init__(self, n: int, channels: int, resolution: tuple[int, int], seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (n, channels, *resolution), dtype=torch.uint8, generator=g)
        self.channels = channels
        self.resolution = (int(resolution[0]), int(resolution[1]))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": torch.tensor(0)}


def shapes_images(n: int, resolution: tuple[int, int], seed: int = 0) -> RandomImages:
    """The first ``n`` images of ``data=shapes_easy`` (white triangles, rings and crosses on black, RGB)
    at ``resolution``, held in memory as :class:`RandomImages` holds its own (label 0)."""
    settings = OmegaConf.to_container(OmegaConf.load(SHAPES_EASY).dataset)
    assert isinstance(settings, dict)
    shapes = ShapesDataset(size=n, resolution=list(resolution), seed=seed, **{str(k): v for k, v in settings.items()})
    data = RandomImages(1, 3, resolution)
    data.images = torch.stack([shapes[i]["image"] for i in range(n)])
    return data


class IterationTimer(Callback):
    """Wall time from the start of iteration ``warmup`` to the end of the last one.

    With a :class:`~src.profiling.measure.PhaseRecorder` attached to the module
    (``module.phase_recorder``), iteration 0 counts each phase's FLOPs (untimed) and the timed
    iterations also time each phase.
    """

    def __init__(self, warmup: int) -> None:
        if warmup < 1:
            raise ValueError(f"warmup={warmup}: must be at least 1 (iteration 0 counts FLOPs)")
        self.warmup, self.timed = warmup, 0
        self.t0: float | None = None  # the start of iteration ``warmup``
        self.t1: float | None = None  # the end of the last timed iteration

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        rec = pl_module.phase_recorder
        if rec is not None:
            rec.counting = pl_module.iteration == 0
            rec.timing = pl_module.iteration >= self.warmup
        if pl_module.iteration == self.warmup:
            synchronize(pl_module.device)
            if pl_module.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(pl_module.device)
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.t0 is not None:
            self.timed += 1
            synchronize(pl_module.device)
            self.t1 = time.perf_counter()

    def seconds_per_iteration(self) -> float:
        """The mean wall time of a timed iteration."""
        if self.t0 is None or self.t1 is None or not self.timed:
            raise RuntimeError(f"no iteration was timed: the fit stopped before iteration {self.warmup}")
        return (self.t1 - self.t0) / self.timed


def device_of(args: types.SimpleNamespace) -> torch.device:
    """The torch device of ``args.device`` (the command line has already resolved ``auto``)."""
    return torch.device("cuda" if args.device in ("gpu", "cuda") else "cpu")


def resolution_of(args: types.SimpleNamespace) -> tuple[int, int]:
    """``args.resolution`` (``[R]`` or ``[H, W]``) as ``(height, width)``, checked as training checks it."""
    return parse_resolution(args.resolution if len(args.resolution) == 2 else args.resolution[0], "resolution")


def fit_timed(
    model: pl.LightningModule, dm: pl.LightningDataModule, args: types.SimpleNamespace, iterations: int
) -> tuple[IterationTimer, pl.Trainer]:
    """Fit ``model`` for ``warmup + iterations`` iterations in a real Trainer; time the last ``iterations``."""
    timer = IterationTimer(args.warmup)
    trainer = bare_trainer(
        args.warmup + iterations, callbacks=[timer], accelerator=args.device, precision=args.precision
    )
    trainer.fit(model, datamodule=dm)
    return timer, trainer
