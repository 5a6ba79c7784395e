"""MLflow logger on a local SQLite store (or any tracking server) that continues a run on resume.

The run id is kept in ``<run_dir>/mlflow_run_id``; relaunching the same ``run_name`` with
``ckpt_path=last`` reopens that MLflow run, so metrics continue on one chart. ``src.eval`` reopens
it too (:meth:`MLflowLogger.reopen`) to add evaluation results, leaving the run's status as it is.
A :class:`~src.loggers.extras.RunLogger`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from lightning_fabric.utilities.logger import _convert_params, _flatten_dict
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from src.loggers.extras import RunLogger
from src.utils.io import atomic_write
from src.utils.run_folder import MLFLOW_RUN_ID_FILE as RUN_ID_FILE

log = logging.getLogger(__name__)


def _global_rank() -> int:
    """This process's rank, as Lightning records it on ``rank_zero_only`` (set at import from the
    environment and again by the strategy), which is what ``@rank_zero_only`` methods go by."""
    return rank_zero_only.rank  # type: ignore[attr-defined]  # an attribute Lightning sets on the function


class MLflowLogger(RunLogger, MLFlowLogger):
    """Lightning's MLFlowLogger plus: run continuation, resume-safe params, images by step, the
    newest checkpoint as a tag.

    Args:
        experiment_name: one MLflow experiment per task name.
        tracking_uri: ``sqlite:///path/mlflow.db`` locally, or a server URI.
        run_dir: the gamut run directory; holds the run id file.
        keep_status: leave a continued run's status and tags as they are, also at :meth:`finalize`
            (``src.eval`` adding results to a finished run).
    """

    def __init__(
        self,
        experiment_name: str,
        tracking_uri: str,
        run_dir: str | None = None,
        run_name: str | None = None,
        artifact_location: str | None = None,
        tags: dict[str, Any] | None = None,
        keep_status: bool = False,
    ) -> None:
        self.keep_status = bool(keep_status)
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

    @classmethod
    def reopen(cls, **options: Any) -> MLflowLogger | None:
        """The run's MLflow run, to add results to without changing its status; None when the run
        folder names no MLflow run or its SQLite store does not exist (none is created)."""
        run_dir = options.get("run_dir")
        id_file = Path(run_dir) / RUN_ID_FILE if run_dir else None
        if id_file is None or not id_file.is_file():
            return None
        uri = str(options.get("tracking_uri") or "")
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
            log.warning("%s names an MLflow run, but there is no tracking store %s; pass mlflow_uri=...", id_file, uri)
            return None
        return cls(**{**options, "keep_status": True})

    def set_run_info(self, name: str, tags: Mapping[str, str]) -> None:
        """Dashboard name and tags (task, run name, sweep name and job number), before the first log.

        A new run is created with them; a continued run gets the tags set again (same values).
        """
        if not self._initialized:
            self._run_name = name
            self.tags = {**(self.tags or {}), **tags}
        elif _global_rank() == 0:
            for k, v in tags.items():
                self.experiment.set_tag(self.run_id, k, v)

    @property
    def experiment(self):
        first = not self._initialized
        client = super().experiment  # MLFlowLogger's (RunLogger has none): the client, created on first use
        if first and self._run_id is not None and _global_rank() == 0 and not self.keep_status:
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

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        """End the run with ``status``; with ``keep_status`` the run stays as it was."""
        if not self.keep_status:
            super().finalize(status)
