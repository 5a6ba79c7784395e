"""MLflow logger on a local SQLite store (or any tracking server) that continues a run on resume.

The run id is kept in ``<run_dir>/mlflow_run_id``; relaunching the same ``run_name`` with
``ckpt_path=last`` reopens that MLflow run, so metrics continue on one chart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from lightning_fabric.utilities.logger import _convert_params, _flatten_dict
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from src.utils.io import atomic_write

log = logging.getLogger(__name__)
RUN_ID_FILE = "mlflow_run_id"


class MLflowLogger(MLFlowLogger):
    """Lightning's MLFlowLogger plus: run continuation, resume-safe params, images by step.

    Args:
        experiment_name: one MLflow experiment per task name.
        tracking_uri: ``sqlite:///path/mlflow.db`` locally, or a server URI.
        run_dir: the gamut run directory; holds the run id file.
    """

    def __init__(
        self,
        experiment_name: str,
        tracking_uri: str,
        run_dir: str | None = None,
        run_name: str | None = None,
        artifact_location: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> None:
        self._id_file = Path(run_dir) / RUN_ID_FILE if run_dir else None
        run_id = None
        if self._id_file is not None and self._id_file.is_file():
            run_id = self._id_file.read_text().strip() or None
        self.resumed = run_id is not None
        super().__init__(
            experiment_name=experiment_name,
            run_name=run_name,
            tracking_uri=tracking_uri,
            tags=dict(tags or {}),
            artifact_location=artifact_location,
            run_id=run_id,
        )

    def set_run_info(self, name: str, tags: dict[str, str]) -> None:
        """Dashboard name and tags (task, run name, sweep name and job number), before the first log.

        A new run is created with them; a continued run gets the tags set again (same values).
        """
        if not self._initialized:
            self._run_name = name
            self.tags = {**(self.tags or {}), **tags}
        elif rank_zero_only.rank == 0:
            for k, v in tags.items():
                self.experiment.set_tag(self.run_id, k, v)

    @property
    def experiment(self):
        first = not self._initialized
        client = MLFlowLogger.experiment.fget(self)
        if first and self._run_id is not None and rank_zero_only.rank == 0:
            if self.resumed:
                client.update_run(self._run_id, status="RUNNING")
                for k, v in (self.tags or {}).items():
                    client.set_tag(self._run_id, k, v)
            elif self._id_file is not None:
                atomic_write(self._id_file, lambda f: f.write(self._run_id), mode="w")
        return client

    @rank_zero_only
    def log_hyperparams(self, params) -> None:
        """Log params; on a resumed run, keep the first values and skip keys whose value changed."""
        flat = {k: str(v)[:250] for k, v in _flatten_dict(_convert_params(params)).items()}
        existing = self.experiment.get_run(self.run_id).data.params
        changed = sorted(k for k, v in flat.items() if k in existing and existing[k] != v)
        if changed:
            log.info("resumed run keeps its original params for: %s", ", ".join(changed))
        new = {k: v for k, v in flat.items() if k not in existing}
        if new:
            super().log_hyperparams(new)

    @rank_zero_only
    def log_checkpoint(self, path: str, kimg: float) -> None:
        """Record the newest checkpoint's path as a tag (the file stays in the run folder)."""
        self.experiment.set_tag(self.run_id, "checkpoint.last", str(path))

    @rank_zero_only
    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        """Log a uint8 HxWxC image under ``key`` at ``step`` (MLflow's image-by-step view)."""
        self.experiment.log_image(self.run_id, image, key=key.replace("/", "_"), step=int(step))
