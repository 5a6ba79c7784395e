"""Lightning's CSV and TensorBoard loggers, each a :class:`~src.loggers.extras.RunLogger`
(src/conf/logger/csv.yaml, src/conf/logger/tensorboard.yaml).

Each takes Lightning's arguments unchanged and adds what its files can hold: TensorBoard shows the
sample grids (``add_image`` at step = images seen); CSV holds numbers only (the grids are in
``samples/``), so its image extra stays the default. Neither has a dashboard name or tags, nor a
place for checkpoint paths. ``src.eval`` rebuilds them from the run's config
(:meth:`~src.loggers.extras.RunLogger.reopen`): CSV writes its results to a new version folder
``eval_<time>``, TensorBoard a new event file in the run's folder.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pytorch_lightning.loggers import CSVLogger as LightningCSVLogger
from pytorch_lightning.loggers import TensorBoardLogger as LightningTensorBoardLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from src.loggers.extras import RunLogger

__all__ = ["CSVLogger", "TensorBoardLogger"]


class CSVLogger(RunLogger, LightningCSVLogger):
    """Lightning's ``CSVLogger``: metrics in ``<save_dir>/<name>/<version>/metrics.csv``; no images."""

    @classmethod
    def reopen(cls, **options: Any) -> CSVLogger:
        """A new version folder ``eval_<time>`` beside the run's versions: Lightning deletes the
        ``metrics.csv`` of a version folder it opens again, so the run's own are never reused."""
        save_dir = Path(str(options.get("save_dir") or "."))
        name = options.get("name")
        folder = save_dir / str(name) if name else save_dir
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        version, k = f"eval_{stamp}", 1
        while (folder / version).exists():
            version, k = f"eval_{stamp}_{k}", k + 1
        return cls(**{**options, "version": version})


class TensorBoardLogger(RunLogger, LightningTensorBoardLogger):
    """Lightning's ``TensorBoardLogger`` plus the sample grids as images."""

    @rank_zero_only
    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        """A uint8 ``[H, W, C]`` image under ``key`` at ``step`` (images seen)."""
        self.experiment.add_image(key, image, int(step), dataformats="HWC")
