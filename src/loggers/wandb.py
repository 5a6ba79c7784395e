"""Weights & Biases logger: Lightning's ``WandbLogger`` with gamut's extras (src/conf/logger/wandb.yaml).

What a run shows in W&B:

==================  ==========================================================================
config              the composed config, resolved, logged once (a continued run keeps the
                    values it has); ``gamut``: task, run name, sweep, job number, overrides
history             the losses and every ``metrics/*`` at ``trainer/global_step`` = images seen
media               the sample grids (``samples/fakes``, ``samples/reals``, ...) as images
group, tags         a ``-m`` sweep's jobs share ``group`` = the sweep name (one view in the UI);
                    tags ``sweep:<name>``, ``job:<n>`` and the run's own ``tags``
artifacts           with ``log_checkpoints``: each checkpoint save as a version of the ``model``
                    artifact ``model-<run id>``, aliases ``latest`` and ``kimg<K>``
==================  ==========================================================================

Modes (``mode`` or ``WANDB_MODE``): ``offline`` (default: the run is written under
``<run_dir>/wandb/offline-run-<time>-<id>/``, and ``wandb sync <run_dir>/wandb/offline-run-*``
uploads it later, every launch in order), ``online`` (needs ``wandb login`` or ``WANDB_API_KEY``:
without either, off a terminal, the config is refused before the run folder exists), ``disabled``
(nothing stored).

The W&B run id is kept in ``<run_dir>/wandb_run_id``: a resumed gamut run (``ckpt_path=last``)
continues the same W&B run, and ``src.eval`` continues it too (:meth:`WandbLogger.reopen`) to add the
evaluation results, keeping the run's name, group and tags. Only global rank 0 talks to W&B. A
:class:`~src.loggers.extras.RunLogger` that holds one Lightning ``WandbLogger`` per opening of the W&B
run (each ended with ``finish`` at :meth:`finalize`, so the next run in this process is a new one).
"""

from __future__ import annotations

import netrc
import os
import sys
import uuid
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from pytorch_lightning.loggers import WandbLogger as LightningWandbLogger
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from src.loggers.extras import RunLogger, recorded_run
from src.utils.io import atomic_write
from src.utils.optional import require
from src.utils.run_folder import WANDB_RUN_ID_FILE as RUN_ID_FILE

__all__ = ["MODES", "RUN_ID_FILE", "STEP_KEY", "WandbLogger", "has_credentials"]

MODES = ("offline", "online", "disabled")
CONSOLES = ("off", "auto", "wrap", "redirect", "wrap_raw", "wrap_emu")  # wandb.Settings(console=...)
MAX_TAG = 64  # W&B's limit on a tag's length
STEP_KEY = "trainer/global_step"  # the x-axis Lightning's WandbLogger defines (gamut logs images seen there)


def has_credentials() -> bool:
    """Whether an online run finds a W&B key without asking: ``WANDB_API_KEY``, an identity token
    file, or the ``.netrc`` entry ``wandb login`` writes for the server (``WANDB_BASE_URL``)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    files = [os.environ["NETRC"]] if os.environ.get("NETRC") else [Path.home() / ".netrc", Path.home() / "_netrc"]
    for file in files:
        try:
            if netrc.netrc(str(file)).authenticators(str(host)) is not None:
                return True
        except (OSError, netrc.NetrcParseError):
            continue
    return False


class WandbLogger(RunLogger):
    """Log a gamut run's config, metrics, sample grids and (when asked) checkpoints to W&B.

    Args:
        project: the W&B project (one per task name by default).
        run_dir: the gamut run folder: holds the run id and the ``wandb/`` folder.
        mode: ``offline``, ``online`` or ``disabled``.
        name: the run's display name (gamut sets ``run_name``, or ``<sweep>/<job>`` in a sweep).
        entity: the W&B team or user; None: ``WANDB_ENTITY`` or the account's default.
        group: the W&B group; None: the sweep name for a sweep's jobs, no group otherwise.
        job_type: W&B's job type of the run.
        tags: extra W&B tags (the sweep's and the run's own ``tags`` are added).
        log_checkpoints: upload each checkpoint save as a ``model`` artifact (large files: off by default).
        console: W&B's console capture (``off``: the console is in ``train.log`` already).
        system_metrics: W&B's CPU/GPU/memory charts.
        keep_info: open the run without setting its name, group, tags or job type (``src.eval``).
    """

    def __init__(
        self,
        project: str,
        run_dir: str,
        mode: str = "offline",
        name: str | None = None,
        entity: str | None = None,
        group: str | None = None,
        job_type: str | None = "train",
        tags: list[str] | None = None,
        log_checkpoints: bool = False,
        console: str = "off",
        system_metrics: bool = False,
        keep_info: bool = False,
    ) -> None:
        super().__init__()
        require("wandb")  # one line naming the extra, before any run folder exists
        if mode not in MODES:
            raise ValueError(f"logger.wandb.mode={mode!r} (or WANDB_MODE): allowed values are {', '.join(MODES)}")
        if console not in CONSOLES:
            raise ValueError(f"logger.wandb.console={console!r}: allowed values are {', '.join(CONSOLES)}")
        if not project:
            raise ValueError("logger.wandb.project is empty: name a W&B project (or set WANDB_PROJECT)")
        self.project, self.mode, self.run_dir = str(project), mode, Path(run_dir)
        self.entity, self.group, self.job_type = entity, group, job_type
        self.log_checkpoints, self.keep_info = bool(log_checkpoints), bool(keep_info)
        self.console, self.system_metrics = console, bool(system_metrics)
        self.display_name = name
        self.extra_tags = [str(t) for t in tags or []]
        self.run_info: dict[str, str] = {}  # set_run_info's tags: the config's ``gamut`` entry
        id_file = self.run_dir / RUN_ID_FILE
        stored = id_file.read_text().strip() if id_file.is_file() else ""
        self.resumed = bool(stored)
        self.run_id = stored or uuid.uuid4().hex[:16]
        self._lightning: LightningWandbLogger | None = None  # the W&B run while it is open
        self._opened = False  # the W&B run was opened in this process (and maybe finished since)
        self._exit_code = 0  # of the last finish
        self._uploaded_kimg: float | None = None  # the save whose checkpoint is uploaded already
        if mode == "online" and not has_credentials() and not (sys.stdin is not None and sys.stdin.isatty()):
            raise ValueError(
                "logger.wandb.mode=online: no W&B API key on this machine: run `wandb login` or set "
                "WANDB_API_KEY (mode offline needs no account)"
            )

    # Lightning's Logger interface -----------------------------------------------------------

    @property
    def name(self) -> str:
        return self.project

    @property
    def version(self) -> str:
        return self.run_id

    @property
    def save_dir(self) -> str:
        return str(self.run_dir)

    @property
    @rank_zero_experiment
    def experiment(self):
        """The ``wandb.Run``, opened (created, or continued by id) on first use; rank 0 only."""
        return self._opened_logger().experiment

    def _opened_logger(self) -> LightningWandbLogger:
        """Lightning's logger of the open W&B run (rank 0 only: called from rank-zero methods)."""
        if self._lightning is None:
            self._lightning = self._open()
        return self._lightning

    def _open(self) -> LightningWandbLogger:
        """Create the W&B run, or continue it by id, and hand it to Lightning's logger (which logs
        the metrics at :data:`STEP_KEY`). gamut calls ``wandb.init`` itself: Lightning's own call
        passes a setting (``anonymous``) that W&B 0.31 warns about at every launch."""
        wandb = require("wandb")
        info: dict[str, Any] = {}
        if not self.keep_info:
            group = self.group or self.run_info.get("sweep")
            info = dict(name=self.display_name, group=group, job_type=self.job_type, tags=self._tags())
            info["config"] = {"gamut": dict(self.run_info)} if self.run_info else None
        run = wandb.init(
            dir=str(self.run_dir),  # wandb writes <run_dir>/wandb/
            id=self.run_id,
            resume="allow",  # continue the run with this id where there is one
            project=self.project,
            entity=self.entity,
            mode=self.mode,
            settings=wandb.Settings(console=self.console, x_disable_stats=not self.system_metrics, silent=True),
            **info,
        )
        run.define_metric(STEP_KEY)
        run.define_metric("*", step_metric=STEP_KEY, step_sync=True)
        if not self.resumed and self.mode != "disabled":
            atomic_write(self.run_dir / RUN_ID_FILE, lambda f: f.write(self.run_id), mode="w")
            self.resumed = True  # a later opening in this process continues the same run
        self._opened = True
        return LightningWandbLogger(experiment=run, project=self.project, save_dir=str(self.run_dir), id=self.run_id)

    def _tags(self) -> list[str]:
        """The W&B tags: the config's, the run's own ``tags``, and the sweep's name and job number."""
        tags = [*self.extra_tags, *(k.removeprefix("tag.") for k in self.run_info if k.startswith("tag."))]
        if "sweep" in self.run_info:
            tags += [f"sweep:{self.run_info['sweep']}", f"job:{self.run_info.get('sweep_job', '')}"]
        if self.run_info.get("optuna_pruned") == "true":
            tags.append("optuna_pruned")
        return list(dict.fromkeys(t[:MAX_TAG] for t in tags))

    @classmethod
    def reopen(cls, **options: Any) -> WandbLogger | None:
        """The run's W&B run, to add results to without changing its name, group or tags; None when
        the run folder names no W&B run."""
        if recorded_run(options, RUN_ID_FILE) is None:
            return None
        return cls(**{**options, "keep_info": True})

    def set_run_info(self, name: str, tags: Mapping[str, str]) -> None:
        """Display name, group and tags (task, run name, sweep name and job number), before the first log."""
        self.display_name = name
        self.run_info.update(tags)
        self._write_info()

    @rank_zero_only
    def _write_info(self) -> None:
        """Name, tags and the ``gamut`` config entry on a run opened already (a W&B group is set only
        when a run is created); a run finished already (a pruned trial's mark) is opened for them."""
        if not self._opened or self.keep_info:
            return
        if self._lightning is None:  # finished: opening it again sets them
            self._opened_logger()
            self._finish(self._exit_code)
            return
        run = self.experiment
        run.name = self.display_name
        run.tags = tuple(self._tags())
        run.config.update({"gamut": dict(self.run_info)}, allow_val_change=True)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace) -> None:
        """The composed config as the W&B config; keys the run has already keep their values."""
        values = vars(params) if isinstance(params, Namespace) else dict(params)
        self.experiment.config.setdefaults(values)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Lightning's: ``metrics`` with :data:`STEP_KEY` = ``step`` (images seen), W&B's x-axis."""
        self._opened_logger().log_metrics(metrics, step)

    @rank_zero_only
    def log_image(self, key: str, image: np.ndarray, step: int) -> None:
        """A uint8 ``[H, W, C]`` image under ``key`` at :data:`STEP_KEY` = ``step``."""
        wandb = require("wandb")
        array = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
        self.experiment.log({key: wandb.Image(np.ascontiguousarray(array)), STEP_KEY: int(step)})

    @rank_zero_only
    def log_checkpoint(self, path: str, kimg: float) -> None:
        """With ``log_checkpoints``: the checkpoint as a new version of the run's ``model`` artifact
        (one per save: a snapshot and ``last.ckpt`` written together are one version)."""
        if not self.log_checkpoints or kimg == self._uploaded_kimg:
            return
        wandb = require("wandb")
        file = Path(path).name
        artifact = wandb.Artifact(f"model-{self.run_id}", type="model", metadata={"kimg": kimg, "file": file})
        artifact.add_file(str(path), name="model.ckpt")  # copied: last.ckpt is rewritten at the next save
        self.experiment.log_artifact(artifact, aliases=["latest", f"kimg{kimg:.3f}"])
        self._uploaded_kimg = kimg

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Finish the W&B run (exit code 0 for a finished or stopped run, 1 for a failed one)."""
        if self._lightning is not None:
            self._finish(0 if status in ("success", "finished") else 1)

    def _finish(self, exit_code: int) -> None:
        self.experiment.finish(exit_code=exit_code)
        self._exit_code, self._lightning = exit_code, None  # logging again opens the same run again
