"""Neptune logger: a Lightning ``Logger`` over the ``neptune`` 1.x client.

Lightning 2.6.4 removed its ``NeptuneLogger`` and the hosted Neptune service shut down on
2026-03-05 (docs.neptune.ai transition hub), so gamut keeps its own. What goes where in the Neptune run:

``parameters/...``  the composed config (nested; values Neptune can't store become strings)
``metrics/...``     every logged metric, as a series over images seen (the same step as MLflow)
``images/...``      sample grids (PNG), as a file series over images seen
``checkpoints/...`` ``last`` = path of the newest ``last.ckpt``, ``snapshots`` = series of paths
``gamut/...``       task, run name, sweep name and job number; ``status`` of the last launch

Modes (``mode`` or ``NEPTUNE_MODE``): ``offline`` (default: the run is written under
``<run_dir>/.neptune/``; ``neptune sync --path <run_dir>`` uploads it to a server later),
``async``/``sync`` (a server; the token must be in ``NEPTUNE_API_TOKEN``), ``debug`` (nothing stored).
The token is read by the client from the environment only: this class takes no token argument,
refuses one in the config, and never logs it (a parameter value equal to it is masked).

A resumed gamut run continues the same Neptune run: its custom run id is kept in
``<run_dir>/neptune_run_id`` and passed again as ``custom_run_id``; ``src.eval`` continues it the same
way (:meth:`NeptuneLogger.reopen`) to add evaluation results, leaving ``gamut/status`` as it is.
A :class:`~src.loggers.extras.RunLogger`.
"""

from __future__ import annotations

import io
import logging
import os
import uuid
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypedDict, TypeGuard

import numpy as np
from lightning_fabric.utilities.logger import _convert_params, _flatten_dict
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from src.loggers.extras import RunLogger, recorded_run
from src.utils.io import atomic_write
from src.utils.optional import require
from src.utils.run_folder import LAST_CHECKPOINT
from src.utils.run_folder import NEPTUNE_RUN_ID_FILE as RUN_ID_FILE

log = logging.getLogger(__name__)
TOKEN_ENV = "NEPTUNE_API_TOKEN"
Mode = Literal["async", "sync", "offline", "debug"]
MODES: tuple[Mode, ...] = ("async", "sync", "offline", "debug")


def _is_mode(value: str) -> TypeGuard[Mode]:
    return value in MODES


class _Capture(TypedDict):
    """The client's own capture switches (``neptune.init_run`` keywords)."""

    capture_stdout: bool
    capture_stderr: bool
    capture_hardware_metrics: bool


class NeptuneLogger(RunLogger):
    """Log params, metrics, images and checkpoint paths of a gamut run to Neptune.

    Args:
        project: ``workspace/project`` (offline and debug runs only record it).
        run_dir: the gamut run folder; holds the custom run id and, offline, the ``.neptune`` data.
        mode: ``async``, ``sync``, ``offline`` or ``debug``; None reads ``NEPTUNE_MODE`` (default offline).
        name: the run's display name (gamut passes ``run_name``, or ``<sweep>/<job>`` in a sweep).
        tags: extra ``sys/tags``.
        capture_stdout, capture_stderr, capture_hardware_metrics: the client's own capture (off by
            default: the console is already in ``train.log``, and what it prints is not ours to upload).
        flush_period: seconds between the client's background flushes.
        keep_status: leave ``gamut/status`` as it is, at start and at :meth:`finalize` (``src.eval``
            adding results to a finished run).
    """

    def __init__(
        self,
        project: str,
        run_dir: str,
        mode: str | None = None,
        name: str | None = None,
        tags: list[str] | None = None,
        capture_stdout: bool = False,
        capture_stderr: bool = False,
        capture_hardware_metrics: bool = False,
        flush_period: float = 5.0,
        keep_status: bool = False,
        **unexpected: Any,
    ) -> None:
        super().__init__()
        require("neptune")  # one line naming the extra, before any run folder exists
        if "api_token" in unexpected:
            raise ValueError(
                f"logger.neptune.api_token: the Neptune token is read only from the environment "
                f"({TOKEN_ENV}); remove it from the config"
            )
        if unexpected:
            raise ValueError(f"logger.neptune: unknown key(s) {', '.join(sorted(unexpected))}")
        mode = mode or os.environ.get("NEPTUNE_MODE") or "offline"
        if not _is_mode(mode):
            raise ValueError(f"logger.neptune.mode={mode!r} (or NEPTUNE_MODE): allowed values are {', '.join(MODES)}")
        if mode in ("async", "sync") and not os.environ.get(TOKEN_ENV):
            raise ValueError(
                f"logger.neptune.mode={mode}: set {TOKEN_ENV} in the environment (or use mode offline / debug)"
            )
        if not project or "/" not in str(project):
            raise ValueError(f"logger.neptune.project={project!r}: expected 'workspace/project'")
        self.project, self.mode, self.run_dir = str(project), mode, Path(run_dir)
        self._name = name
        self._tags = list(tags or [])
        self._extra_tags: dict[str, str] = {}
        self._capture = _Capture(
            capture_stdout=capture_stdout,
            capture_stderr=capture_stderr,
            capture_hardware_metrics=capture_hardware_metrics,
        )
        self._flush_period = float(flush_period)
        self.keep_status = bool(keep_status)
        id_file = self.run_dir / RUN_ID_FILE
        stored = id_file.read_text().strip() if id_file.is_file() else ""
        self.resumed = bool(stored)
        self.custom_run_id = stored or uuid.uuid4().hex  # 32 characters (Neptune allows 36)
        self._run = None

    # Lightning's Logger interface -----------------------------------------------------------

    @property
    def name(self) -> str:
        return "neptune"

    @property
    def version(self) -> str:
        return self.custom_run_id

    @property
    def save_dir(self) -> str:
        return str(self.run_dir / ".neptune")

    @classmethod
    def reopen(cls, **options: Any) -> NeptuneLogger | None:
        """The run's Neptune run, to add results to without changing its status; None when the run
        folder names no Neptune run."""
        if recorded_run(options, RUN_ID_FILE) is None:
            return None
        return cls(**{**options, "keep_status": True})

    def set_run_info(self, name: str, tags: Mapping[str, str]) -> None:
        """Display name and tags (task, run name, sweep name and job number), before the first log."""
        self._name = name
        self._extra_tags.update(tags)
        if self._run is not None:
            self._write_info(self._run)

    @property
    @rank_zero_experiment
    def experiment(self):
        """The ``neptune.Run`` (created on first use; rank 0 only)."""
        if self._run is None:
            self._run = self._start()
        return self._run

    def _start(self):
        neptune = require("neptune")

        # The client reads its data folder from NEPTUNE_DATA_DIRECTORY when the run is created.
        previous = os.environ.get("NEPTUNE_DATA_DIRECTORY")
        os.environ["NEPTUNE_DATA_DIRECTORY"] = self.save_dir
        try:
            run = neptune.init_run(
                project=self.project,
                mode=self.mode,
                custom_run_id=self.custom_run_id,
                name=self._name,
                tags=self._tags or None,
                source_files=[],
                git_ref=False,
                capture_traceback=False,
                flush_period=self._flush_period,
                **self._capture,
            )
        finally:
            if previous is None:
                os.environ.pop("NEPTUNE_DATA_DIRECTORY", None)
            else:
                os.environ["NEPTUNE_DATA_DIRECTORY"] = previous
        if not self.resumed and self.mode != "debug":
            atomic_write(self.run_dir / RUN_ID_FILE, lambda f: f.write(self.custom_run_id), mode="w")
            self.resumed = True  # a later start in this process continues the same run
        self._write_info(run)
        # Offline data does not keep custom_run_id; record it so every launch's segment names its run.
        run["gamut/custom_run_id"] = self.custom_run_id
        if not self.keep_status:
            run["gamut/status"] = "running"
        return run

    def _write_info(self, run) -> None:
        if self._name:
            run["sys/name"] = self._name
        if self._extra_tags:
            run["gamut"] = dict(self._extra_tags)
            if "sweep" in self._extra_tags:
                run["sys/tags"].add([f"sweep:{self._extra_tags['sweep']}", f"job:{self._extra_tags['sweep_job']}"])

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace) -> None:
        from neptune.utils import stringify_unsupported

        token = os.environ.get(TOKEN_ENV)
        flat = _flatten_dict(_convert_params(params), delimiter="/")
        clean = {k: ("***" if token and isinstance(v, str) and token in v else v) for k, v in flat.items()}
        nested: dict[str, Any] = {}
        for key, value in clean.items():
            node = nested
            *parents, leaf = key.split("/")
            for p in parents:
                node = node.setdefault(p, {})
                if not isinstance(node, dict):  # a key that is both a value and a namespace: keep the value
                    break
            else:
                node[leaf] = value
        self.experiment["parameters"] = stringify_unsupported(nested)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        run = self.experiment
        for key, value in metrics.items():
            run[f"metrics/{key}"].append(float(value), step=None if step is None else float(step))

    @rank_zero_only
    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        """A uint8 ``[H, W, C]`` image, as PNG, in the file series ``images/<key>``."""
        from neptune.types import File
        from PIL import Image

        array = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
        self.experiment[f"images/{key}"].append(File.from_content(buf.getvalue(), extension="png"), step=float(step))

    @rank_zero_only
    def log_checkpoint(self, path: str, kimg: float) -> None:
        run = self.experiment
        if Path(path).name == LAST_CHECKPOINT:
            run["checkpoints/last"] = str(path)
            run["checkpoints/last_kimg"] = float(kimg)
        else:
            run["checkpoints/snapshots"].append(str(path))

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._run is None:
            return
        if not self.keep_status:
            self._run["gamut/status"] = status
        self._run.stop()
        self._run = None  # logging again (e.g. after a SLURM requeue signal) reopens the same run
