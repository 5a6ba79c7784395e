"""Checkpoints every N kimg plus ``last.ckpt`` (written atomically by ``AtomicCheckpointIO``).

Interruptions: Ctrl-C and SIGTERM save ``last.ckpt`` (Lightning turns SIGTERM into an exception
at the next batch boundary, so the state is consistent). Under SLURM with Lightning's auto-requeue
(``SLURMEnvironment``, signal ``SIGUSR1``, e.g. ``sbatch --signal=USR1@90``), the requeue is moved
to the next batch boundary: ``last.ckpt`` is saved there first, then Lightning's own handler
writes its ``hpc_ckpt_<k>.ckpt`` and runs ``scontrol requeue``. The requeued job resumes from
``last.ckpt`` (``src.train`` reads ``SLURM_RESTART_COUNT`` and sets ``ckpt_path=last``).

Faults (docs/reliability.md): a save first checks that the losses and the weights are finite
(:meth:`~src.modules.base.GANModule.check_finite`), so NaN never overwrites the last good
``last.ckpt``; a save that fails (a full disk, a quota, an I/O error) leaves the previous file intact
(``AtomicCheckpointIO``) and stops the run with :class:`~src.utils.faults.CheckpointWriteFailed`
naming the file and the cause. Stopping was chosen over retrying at the next cadence: a run that goes
on without saving can lose hours more than it gains, and a full disk is rarely freed by waiting.

After each save every :class:`~src.loggers.extras.RunLogger` of the run hears of the files through
Lightning's own logger hook ``after_save_checkpoint`` (:class:`~src.loggers.extras.CheckpointSaver`).
"""

from __future__ import annotations

import errno
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.plugins.environments import ClusterEnvironment, SLURMEnvironment, TorchElasticEnvironment
from pytorch_lightning.strategies import ParallelStrategy
from pytorch_lightning.utilities.exceptions import SIGTERMException

from src.loggers.extras import CheckpointSaver, SavedCheckpoint, run_loggers
from src.modules.base import GANModule
from src.utils.faults import CheckpointWriteFailed
from src.utils.run_folder import LAST_CHECKPOINT

log = logging.getLogger(__name__)

#: a Python signal handler, as ``signal.signal`` installs it
SignalHandler = Callable[[int, FrameType | None], Any]


def crossed(cur_nimg: int, step_nimg: int, every_nimg: float) -> bool:
    """True when ``cur_nimg`` passed a multiple of ``every_nimg`` during the last ``step_nimg`` images."""
    if every_nimg <= 0:
        return False
    return int(cur_nimg // every_nimg) > int((cur_nimg - step_nimg) // every_nimg)


def cluster_environment(trainer: pl.Trainer) -> ClusterEnvironment | None:
    """The cluster environment the trainer runs in, through public API: a parallel strategy's own;
    a single-device strategy holds none, so it is the one Lightning auto-detects for it (TorchElastic
    first, as Lightning's accelerator connector does, then SLURM), or None outside a cluster.
    ``src.train`` passes no environment plugin, so Lightning always auto-detects."""
    strategy = trainer.strategy
    if isinstance(strategy, ParallelStrategy) and strategy.cluster_environment is not None:
        return strategy.cluster_environment
    if TorchElasticEnvironment.detect():
        return TorchElasticEnvironment()
    return SLURMEnvironment() if SLURMEnvironment.detect() else None


class KimgCheckpoint(Callback, CheckpointSaver):
    """Save ``kimg{K}.ckpt`` every ``every_kimg`` and keep ``last.ckpt`` current.

    ``last.ckpt`` is also written at the end of training and on Ctrl-C, so a stopped run resumes
    with ``ckpt_path=last``. The module must expose ``cur_nimg`` (images seen, all ranks).
    """

    def __init__(self, dirpath: str, every_kimg: float = 50, keep_snapshots: bool = True) -> None:
        self.dirpath = Path(dirpath)
        self.every_kimg = every_kimg
        self.keep_snapshots = keep_snapshots
        self._last_saved_nimg: int | None = None
        # (signum, frame, Lightning's handler) while a SLURM requeue waits for a batch end
        self._requeue: tuple[int, FrameType | None, SignalHandler] | None = None
        self._restore: tuple[int, SignalHandler] | None = None  # (signum, Lightning's handler) to call then

    def save(self, trainer: pl.Trainer, pl_module: GANModule, snapshot: bool) -> None:
        if self._last_saved_nimg == pl_module.cur_nimg and not snapshot:
            return
        pl_module.check_finite(weights=True)  # never save NaN over the last good state
        paths = []
        if snapshot and self.keep_snapshots:
            paths.append(self.dirpath / f"kimg{pl_module.cur_nimg / 1000:010.3f}.ckpt")
        paths.append(self.dirpath / LAST_CHECKPOINT)
        for path in paths:
            self._write(trainer, path)
        self._last_saved_nimg = pl_module.cur_nimg
        self.saved = tuple(SavedCheckpoint(str(path), pl_module.kimg) for path in paths)
        if trainer.is_global_zero:
            for logger in run_loggers(trainer.loggers):  # e.g. Neptune's checkpoints/ namespace, an MLflow tag
                logger.after_save_checkpoint(self)

    def _write(self, trainer: pl.Trainer, path: Path) -> None:
        try:
            trainer.save_checkpoint(path, weights_only=False)
        except OSError as e:
            last = self.dirpath / LAST_CHECKPOINT
            if self._last_saved_nimg is not None:
                kept = f"{last} from kimg {self._last_saved_nimg / 1000:.3f} is intact"
            elif last.exists():
                kept = f"{last} (from before this launch) is intact"
            else:
                kept = "no checkpoint had been written yet"
            cause = f"{e.strerror or e} ({errno.errorcode.get(e.errno, 'no errno')})" if e.errno else str(e)
            raise CheckpointWriteFailed(
                f"cannot write checkpoint {path}: {cause}; the run stops here and {kept} "
                "(free space or fix the path, then resume with ckpt_path=last)"
            ) from e

    # SLURM requeue: defer Lightning's SIGUSR1 handler to the next batch boundary.

    def on_train_start(self, trainer, pl_module) -> None:
        env = cluster_environment(trainer)
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
        assert self._restore is not None, "a requeue runs only after on_train_start installed its handler"
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
