"""What the benchmark runs the real training step with: in-memory data and an iteration timer.

:class:`RandomImages` serves fixed random uint8 images (no decoding cost, so a timing is the
model's, not the loader's); :class:`IterationTimer` is a Lightning callback that times a window of
iterations inside a real ``Trainer.fit`` and switches a :class:`~src.profiling.measure.PhaseRecorder`
between counting FLOPs (iteration 0) and timing phases (the timed window).
"""

from __future__ import annotations

import time

import torch
from pytorch_lightning.callbacks import Callback

from src.profiling.measure import synchronize

__all__ = ["RandomImages", "IterationTimer"]


class RandomImages(torch.utils.data.Dataset):
    """``n`` fixed random uint8 images ``[channels, *resolution]`` (label 0), drawn once from ``seed``."""

    def __init__(self, n: int, channels: int, resolution: tuple[int, int], seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (n, channels, *resolution), dtype=torch.uint8, generator=g)
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": torch.tensor(0)}


class IterationTimer(Callback):
    """Wall time from the start of iteration ``warmup`` to the end of the last one.

    With a :class:`~src.profiling.measure.PhaseRecorder` attached to the module
    (``module.phase_recorder``), iteration 0 counts each phase's FLOPs (untimed) and the timed
    iterations also time each phase.
    """

    def __init__(self, warmup: int) -> None:
        if warmup < 1:
            raise ValueError(f"warmup={warmup}: must be at least 1 (iteration 0 counts FLOPs)")
        self.warmup, self.t0, self.t1, self.timed = warmup, None, None, 0

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
