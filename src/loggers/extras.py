"""The one interface gamut adds to Lightning's loggers: run info, images, checkpoints, and results
added to a finished run.

:class:`RunLogger` is a Lightning :class:`~pytorch_lightning.loggers.logger.Logger` with gamut's
extras, each a no-op by default so a logger implements only what its service can show:

- :meth:`~RunLogger.set_run_info`: the dashboard name and tags (task, run name, sweep and job,
  Optuna trial), called by ``src.train`` before the first log;
- :meth:`~RunLogger.log_image`: a sample grid (uint8 ``[H, W, C]``) at a step (images seen);
- :meth:`~RunLogger.log_checkpoint`: one checkpoint file just written, called from Lightning's own
  hook :meth:`~RunLogger.after_save_checkpoint` when the callback that saved is a
  :class:`CheckpointSaver` (gamut's ``KimgCheckpoint``); any other callback (Lightning's
  ``ModelCheckpoint``) goes to the Lightning logger's own handling;
- :meth:`~RunLogger.reopen`: the logger as ``src.eval`` rebuilds it from the run's config to add
  evaluation results to the run it logged (MLflow and Neptune continue their run without changing
  its status, W&B its run without changing its name, group or tags; CSV and TensorBoard write new
  files beside the run's).

Every logger in ``src/conf/logger/*.yaml`` is a :class:`RunLogger` (src/loggers/: ``mlflow``, ``wandb``,
``neptune``, ``lightning`` for CSV and TensorBoard). Callers never probe a logger: :func:`run_loggers` keeps the
:class:`RunLogger` instances of a list and skips any other (foreign) logger.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pytorch_lightning.loggers.logger import Logger

__all__ = ["SavedCheckpoint", "CheckpointSaver", "RunLogger", "recorded_run", "run_loggers"]


class SavedCheckpoint(NamedTuple):
    """One checkpoint file a save wrote: its path and the training progress it holds (kimg)."""

    path: str
    kimg: float


class CheckpointSaver:
    """A callback that writes checkpoint files and then calls ``after_save_checkpoint(self)`` on the
    run's loggers; :attr:`saved` lists the files of that save."""

    saved: tuple[SavedCheckpoint, ...] = ()


class RunLogger(Logger):
    """A Lightning logger with gamut's extras (module docstring); every extra defaults to doing nothing."""

    def set_run_info(self, name: str, tags: Mapping[str, str]) -> None:
        """Dashboard name and tags of the run, before the first log (a continued run: tags again)."""

    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        """A uint8 ``[H, W, C]`` image under ``key`` at ``step`` (images seen)."""

    def log_checkpoint(self, path: str, kimg: float) -> None:
        """A checkpoint file was written at ``path``, holding the run at ``kimg``."""

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Lightning's hook after a checkpoint callback saved: each file of a :class:`CheckpointSaver`
        to :meth:`log_checkpoint`; any other callback to the Lightning logger's own hook."""
        if isinstance(checkpoint_callback, CheckpointSaver):
            for saved in checkpoint_callback.saved:
                self.log_checkpoint(saved.path, saved.kimg)
        else:
            super().after_save_checkpoint(checkpoint_callback)

    @classmethod
    def reopen(cls, **options: Any) -> RunLogger | None:
        """This logger as ``src.eval`` rebuilds it from the run's logger node (``options``, resolved,
        ``run_dir`` pointing at the run folder) to add results to the run it logged; None when there
        is no such run to add to. Default: ``cls(**options)``, which writes beside the run's files."""
        return cls(**options)


def recorded_run(options: Mapping[str, Any], id_file: str) -> Path | None:
    """For :meth:`RunLogger.reopen` of a service that keeps its run id in the run folder: the file
    ``<run_dir>/<id_file>`` when the options' run folder has it, else None (no run to add to)."""
    run_dir = options.get("run_dir")
    path = Path(str(run_dir)) / id_file if run_dir else None
    return path if path is not None and path.is_file() else None


def run_loggers(loggers: Iterable[object] | None) -> list[RunLogger]:
    """The :class:`RunLogger` instances among ``loggers``, in order; foreign loggers are skipped."""
    return [logger for logger in loggers or () if isinstance(logger, RunLogger)]
