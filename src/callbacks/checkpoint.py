"""Checkpoints every N kimg plus ``last.ckpt`` (written atomically by ``AtomicCheckpointIO``).

Interruptions: Ctrl-C and SIGTERM save ``last.ckpt`` (Lightning turns SIGTERM into an exception
at the next batch boundary, so the state is consistent). Under SLURM with Lightning's auto-requeue
(``SLURMEnvironment``, signal ``SIGUSR1``, e.g. ``sbatch --signal=USR1@90``), the requeue is moved
to the next batch boundary: ``last.ckpt`` is saved there first, then Lightning's own handler
writes its ``hpc_ckpt_<k>.ckpt`` and runs ``scontrol requeue``. The requeued job resumes from
``last.ckpt`` (``src.train`` reads ``SLURM_RESTART_COUNT`` and sets ``ckpt_path=last``).
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.plugins.environments import SLURMEnvironment
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


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
        self._requeue = None  # (signum, Lightning's handler) while a SLURM requeue waits for a batch end
        self._restore: tuple | None = None

    def save(self, trainer: pl.Trainer, pl_module: pl.LightningModule, snapshot: bool) -> None:
        if self._last_saved_nimg == pl_module.cur_nimg and not snapshot:
            return
        paths = []
        if snapshot and self.keep_snapshots:
            paths.append(self.dirpath / f"kimg{pl_module.cur_nimg / 1000:010.3f}.ckpt")
            trainer.save_checkpoint(paths[-1], weights_only=False)
        trainer.save_checkpoint(self.dirpath / "last.ckpt", weights_only=False)
        paths.append(self.dirpath / "last.ckpt")
        self._last_saved_nimg = pl_module.cur_nimg
        if trainer.is_global_zero:
            for logger in trainer.loggers:  # e.g. Neptune's checkpoints/ namespace, an MLflow tag
                fn = getattr(logger, "log_checkpoint", None)
                if callable(fn):
                    for path in paths:
                        fn(str(path), pl_module.kimg)

    # SLURM requeue: defer Lightning's SIGUSR1 handler to the next batch boundary.

    def on_train_start(self, trainer, pl_module) -> None:
        env = trainer._accelerator_connector.cluster_environment
        if not (isinstance(env, SLURMEnvironment) and env.auto_requeue and env.requeue_signal is not None):
            return
        if threading.current_thread() is not threading.main_thread():
            return
        signum = env.requeue_signal
        lightning_handler = signal.getsignal(signum)
        if not callable(lightning_handler):
            return

        def defer(sig, frame) -> None:
            log.info("SLURM requeue signal %s: saving last.ckpt at the end of this iteration", sig)
            self._requeue = (sig, frame, lightning_handler)

        signal.signal(signum, defer)
        self._restore = (signum, lightning_handler)

    def _requeue_pending(self, trainer, pl_module) -> bool:
        """Whether any rank got the requeue signal (saving is collective: all ranks decide together)."""
        pending = self._requeue is not None
        if trainer.world_size > 1 and torch.distributed.is_initialized():
            flag = torch.tensor([int(pending)], device=pl_module.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            pending = bool(flag.item())
        return pending

    def _run_requeue(self, trainer, pl_module) -> None:
        signum, handler = self._restore
        frame = self._requeue[1] if self._requeue is not None else None
        self._requeue = None
        self.save(trainer, pl_module, snapshot=False)
        handler(signum, frame)  # Lightning: finalize loggers, hpc checkpoint, scontrol requeue

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = batch["image"].shape[0] * trainer.world_size
        if crossed(pl_module.cur_nimg, step, self.every_kimg * 1000):
            self.save(trainer, pl_module, snapshot=True)
        if self._restore is not None and self._requeue_pending(trainer, pl_module):
            self._run_requeue(trainer, pl_module)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self._restore is not None and threading.current_thread() is threading.main_thread():
            signal.signal(*self._restore)
        self._restore = None

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer, pl_module, snapshot=False)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        # Only interruptions between iterations: any other exception may leave a half-done step.
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            self.save(trainer, pl_module, snapshot=False)
