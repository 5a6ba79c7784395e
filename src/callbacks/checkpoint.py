"""Checkpoints every N kimg plus ``last.ckpt`` (written atomically by ``AtomicCheckpointIO``)."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback


def crossed(cur_nimg: int, step_nimg: int, every_nimg: float) -> bool:
    """True when ``cur_nimg`` passed a multiple of ``every_nimg`` during the last ``step_nimg`` images."""
    if every_nimg <= 0:
        return False
    return int(cur_nimg // every_nimg) > int((cur_nimg - step_nimg) // every_nimg)


class KimgCheckpoint(Callback):
    """Save ``kimg{K}.ckpt`` every ``every_kimg`` and keep ``last.ckpt`` current.

    ``last.ckpt`` is also written at the end of training and on Ctrl-C, so a stopped run resumes
    with ``ckpt_path=last``. The module must expose ``cur_nimg`` (images seen, all ranks).
    """

    def __init__(self, dirpath: str, every_kimg: float = 50, keep_snapshots: bool = True) -> None:
        self.dirpath = Path(dirpath)
        self.every_kimg = every_kimg
        self.keep_snapshots = keep_snapshots
        self._last_saved_nimg: int | None = None

    def save(self, trainer: pl.Trainer, pl_module: pl.LightningModule, snapshot: bool) -> None:
        if self._last_saved_nimg == pl_module.cur_nimg and not snapshot:
            return
        if snapshot and self.keep_snapshots:
            trainer.save_checkpoint(self.dirpath / f"kimg{pl_module.cur_nimg / 1000:010.3f}.ckpt", weights_only=False)
        trainer.save_checkpoint(self.dirpath / "last.ckpt", weights_only=False)
        self._last_saved_nimg = pl_module.cur_nimg

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = batch["image"].shape[0] * trainer.world_size
        if crossed(pl_module.cur_nimg, step, self.every_kimg * 1000):
            self.save(trainer, pl_module, snapshot=True)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer, pl_module, snapshot=False)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            self.save(trainer, pl_module, snapshot=False)
