"""Training progress that every gamut LightningModule keeps: images seen, iterations, RNG state.

Lightning's ``global_step`` counts optimizer steps (a GAN takes two to four per iteration), so modules
count themselves. The counters and the RNG states travel in the checkpoint under ``"gamut"``; the RNG
states are restored right before the first resumed step, so nothing done while rebuilding the run
(network init, data set-up) shifts the random stream (exact resume, DESIGN.md "Contracts").
"""

from __future__ import annotations

import random

import torch


class TrainingProgress:
    """Mixin for a ``LightningModule``: call :meth:`init_progress` in ``__init__`` and
    :meth:`advance` once per iteration. Needs ``self.colorspace`` (a ColorSpace)."""

    def init_progress(self) -> None:
        self.cur_nimg = 0
        self.iteration = 0
        self._pending_rng: dict | None = None

    @property
    def kimg(self) -> float:
        return self.cur_nimg / 1000.0

    def advance(self, batch_size: int) -> int:
        """Count one iteration of ``batch_size`` images per process; returns the global batch."""
        global_batch = int(batch_size) * self.trainer.world_size
        self.cur_nimg += global_batch
        self.iteration += 1
        return global_batch

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint["gamut"] = {"cur_nimg": self.cur_nimg, "iteration": self.iteration, "rng": rng,
                               "colorspace": self.colorspace.name,
                               "module": f"{type(self).__module__}.{type(self).__qualname__}"}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("gamut", {})
        self.cur_nimg = int(state.get("cur_nimg", 0))
        self.iteration = int(state.get("iteration", 0))
        self._pending_rng = state.get("rng")

    def on_train_start(self) -> None:
        rng, self._pending_rng = self._pending_rng, None
        if rng:
            torch.set_rng_state(rng["torch"])
            random.setstate(rng["python"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
