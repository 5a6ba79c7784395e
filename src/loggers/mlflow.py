"""MLflow logger on a local SQLite store (or any tracking server) that continues a run on resume.

The run id is kept in ``<run_dir>/mlflow_run_id``; relaunching the same ``run_name`` with
``ckpt_path=last`` reopens that MLflow run, so metrics continue on one chart. ``src.eval`` reopens
it too (:meth:`MLflowLogger.reopen`) to add evaluation results, leaving the run's status as it is.
A :class:`~src.loggers.extras.RunLogger`.

An unreachable or locked store never stops training (docs/reliability.md): a call that fails on the
store (a server down, a SQLite file locked by another writer) is dropped and counted, with one warning
when the store first fails; for :data:`RETRY_AFTER_S` seconds after a failure the calls are dropped
without trying (a server that is down costs no time per iteration), then the next call tries again.
At the end of the run one warning says how many of each kind of call were not logged.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from lightning_fabric.utilities.logger import _convert_params, _flatten_dict
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from src.loggers.extras import RunLogger, recorded_run
from src.utils.io import atomic_write
from src.utils.run_folder import MLFLOW_PARENT_RUN_ID_FILE as PARENT_ID_FILE
from src.utils.run_folder import MLFLOW_RUN_ID_FILE as RUN_ID_FILE
from src.utils.run_lock import folder_lock

log = logging.getLogger(__name__)

#: seconds during which calls are dropped without trying after the store failed
RETRY_AFTER_S = 60.0


def _store_errors() -> tuple[type[BaseException], ...]:
    """What a failing store raises: MLflow's own errors (a REST call that failed), the OS's, and
    SQLAlchemy's (a locked or unreadable SQLite file) where MLflow's SQL store is installed."""
    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:  # an MLflow without its SQL store
        return (MlflowException, OSError)
    return (MlflowException, OSError, SQLAlchemyError)


class _StoreDown(MlflowException):
    """Raised by :data:`_DROPPING`'s methods: the store failed less than :data:`RETRY_AFTER_S` ago."""


class _Dropping:
    """Stands in for the MLflow client while the store is down: each of its calls raises ``_StoreDown``."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise _StoreDown(f"the MLflow store is down (MlflowClient.{name} not called)")

        return fail


_DROPPING = _Dropping()


def tolerant(method: Callable) -> Callable:
    """Run ``method``; when the store fails, count the call as not logged and go on (module docstring)."""

    @functools.wraps(method)
    def call(self: MLflowLogger, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self.store_down_until:
            self.not_logged[method.__name__] += 1
            return None
        try:
            return method(self, *args, **kwargs)
        except _store_errors() as e:
            self.not_logged[method.__name__] += 1
            self.store_failed(e)
            return None

    return call


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
        self.tracking_uri = tracking_uri  # for the messages when the store fails
        self.experiment_name, self.artifact_location = experiment_name, artifact_location  # a sweep's parent run
        self.not_logged: Counter[str] = Counter()  # calls dropped because the store failed, by method
        self.store_down_until = 0.0  # monotonic time before which calls are dropped without trying
        self._warned = False
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
        id_file = recorded_run(options, RUN_ID_FILE)
        if id_file is None:
            return None
        uri = str(options.get("tracking_uri") or "")
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
            log.warning("%s names an MLflow run, but there is no tracking store %s; pass mlflow_uri=...", id_file, uri)
            return None
        return cls(**{**options, "keep_status": True})

    @tolerant
    def set_run_info(self, name: str, tags: Mapping[str, str]) -> None:
        """Dashboard name and tags (task, run name, sweep name and job number), before the first log.

        A new run is created with them; a continued run gets the tags set again (same values).
        """
        if not self._initialized:
            self._run_name = name
            self.tags = {**(self.tags or {}), **tags}
            parent = self.sweep_parent(tags) if "sweep" in tags and _global_rank() == 0 else None
            if parent is not None:  # MLflow's UI nests a run under the run this tag names
                self.tags["mlflow.parentRunId"] = parent
        elif _global_rank() == 0:
            for k, v in tags.items():
                self.experiment.set_tag(self.run_id, k, v)

    def store_failed(self, error: BaseException) -> None:
        """The store failed: drop calls for :data:`RETRY_AFTER_S` seconds; warn the first time."""
        self.store_down_until = time.monotonic() + RETRY_AFTER_S
        if not self._warned and not isinstance(error, _StoreDown):
            self._warned = True
            cause = str(error).splitlines()[0] if str(error) else type(error).__name__
            cause = cause if len(cause) <= 300 else "..." + cause[-300:]  # the end names the root cause
            log.warning(
                "MLflow store %s failed (%s); training goes on, and what is not logged is counted "
                "(trying again every %.0f s)",
                self.tracking_uri,
                cause,
                RETRY_AFTER_S,
            )

    def sweep_parent(self, tags: Mapping[str, str]) -> str | None:
        """The id of the sweep's parent run, created by the sweep's first job (a FINISHED run named
        after the sweep, tagged ``sweep``) and kept in ``<sweep folder>/mlflow_parent_run_id``, so the
        MLflow UI shows a ``-m`` sweep as one run with its jobs as children (relaunches reuse it)."""
        if self._id_file is None:
            return None
        sweep_dir = self._id_file.parent.parent  # <run_name>/<job number>/mlflow_run_id
        id_file = sweep_dir / PARENT_ID_FILE
        with folder_lock(sweep_dir):  # parallel jobs (joblib, SLURM): one of them creates it
            if id_file.is_file():
                return id_file.read_text().strip() or None
            client = MlflowClient(self.tracking_uri)
            experiment = client.get_experiment_by_name(self.experiment_name)
            if experiment is None:
                experiment_id = client.create_experiment(self.experiment_name, artifact_location=self.artifact_location)
            else:
                experiment_id = experiment.experiment_id
            parent = client.create_run(
                experiment_id, run_name=tags["sweep"], tags={"sweep": tags["sweep"], "sweep_parent": "true"}
            )
            client.set_terminated(parent.info.run_id, status="FINISHED")
            atomic_write(id_file, lambda f: f.write(parent.info.run_id), mode="w")
            return parent.info.run_id

    @property
    def experiment(self):
        """The MLflow client, the run created or continued on first use; while the store is down, a
        stand-in whose calls fail as a down store does (Lightning probes this property at setup)."""
        if not self._initialized and time.monotonic() < self.store_down_until:
            return _DROPPING
        first = not self._initialized
        try:
            client = super().experiment  # MLFlowLogger's (RunLogger has none): the client, created on first use
        except _store_errors() as e:
            self.store_failed(e)
            return _DROPPING
        if first and self._run_id is not None and _global_rank() == 0 and not self.keep_status:
            if self.resumed:
                client.update_run(self._run_id, status="RUNNING")
                for k, v in (self.tags or {}).items():
                    client.set_tag(self._run_id, k, v)
            elif self._id_file is not None:
                atomic_write(self._id_file, lambda f: f.write(self._run_id), mode="w")
        return client

    @rank_zero_only
    @tolerant
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
    @tolerant
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, step)

    @rank_zero_only
    @tolerant
    def log_checkpoint(self, path: str, kimg: float) -> None:
        """Record the newest checkpoint's path as a tag (the file stays in the run folder)."""
        self.experiment.set_tag(self.run_id, "checkpoint.last", str(path))

    @rank_zero_only
    @tolerant
    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        """Log a uint8 HxWxC image under ``key`` at ``step`` (MLflow's image-by-step view)."""
        self.experiment.log_image(self.run_id, image, key=key.replace("/", "_"), step=int(step))

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        """End the run with ``status``; with ``keep_status`` the run stays as it was. Reports what was
        not logged while the store failed."""
        if not self.keep_status:
            tolerant(MLFlowLogger.finalize)(self, status)
        if self.not_logged:
            log.warning(
                "MLflow store %s: not logged while it failed: %s",
                self.tracking_uri,
                ", ".join(f"{n} {name} call(s)" for name, n in sorted(self.not_logged.items())),
            )
