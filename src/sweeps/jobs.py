"""A sweep job's bookkeeping: which job this is, how its run ended, and what the dashboards call it.

Every job of a multirun (``python -m src.train -m ...``) records its outcome in its own folder, so
the outcome survives any launcher (joblib's processes, SLURM's machines) and a relaunch:

- ``done`` (:func:`write_done`, atomically and last): the run reached ``trainer.max_kimg`` /
  ``trainer.max_steps``; a relaunch of the same sweep skips the job (:func:`finished`). A single run
  writes it too.
- ``failed`` (:func:`write_failed`): the job stopped with an error; :class:`src.sweeps.report.SweepReport`
  lists it after the sweep and makes the sweep exit with status 1.
- ``pruned`` (:func:`write_pruned`): an Optuna trial the pruner stopped (src/sweeps/optuna.py); the
  sweeper counts it as PRUNED, not as a failure.

The names are src/utils/run_folder.py's.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src.callbacks.limits import Limits, reached
from src.sweeps.optuna import study_name
from src.utils.io import atomic_write
from src.utils.run_folder import DONE_FILE, FAILED_FILE, PRUNED_FILE

__all__ = ["finished", "read_done", "sweep_job", "tracking_info", "write_done", "write_failed", "write_pruned"]


def sweep_job() -> tuple[str, int] | None:
    """``(sweep name, job number)`` when Hydra runs this as a multirun job, else None.

    The sweep's name is the last folder of ``hydra.sweep.dir`` (``run_name`` with the default
    hydra config), so every job of a sweep is tagged with it.
    """
    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    return Path(str(hc.sweep.dir)).name, int(hc.job.num)


def read_done(run_dir: Path) -> dict | None:
    """The ``done`` record of a run folder, or None (missing or unreadable: not done)."""
    try:
        return json.loads((Path(run_dir) / DONE_FILE).read_text())
    except (OSError, ValueError):
        return None


def finished(run_dir: Path, limits: Limits) -> dict | None:
    """The ``done`` record when the run in ``run_dir`` already reached ``limits`` (else None).

    A run without a length (``limits.unlimited``) is never finished: its relaunch continues it.
    """
    done = read_done(run_dir)
    if done is None or limits.unlimited:
        return None
    nimg = round(float(done.get("kimg", 0.0)) * 1000)
    return done if reached(limits, int(done.get("iteration", -1)), nimg) else None


def write_done(run_dir: Path, iteration: int, kimg: float, metrics: dict[str, float]) -> None:
    """Mark the run finished (atomically, as the last file written); drop a stale ``failed``."""
    record = {
        "iteration": int(iteration),
        "kimg": float(kimg),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "metrics": metrics,
    }
    (Path(run_dir) / FAILED_FILE).unlink(missing_ok=True)
    atomic_write(Path(run_dir) / DONE_FILE, lambda f: f.write(json.dumps(record, indent=1)), mode="w")


def write_failed(run_dir: Path, error: BaseException) -> None:
    """Record a job's error: its first line (what :class:`~src.sweeps.report.SweepReport` prints), the
    job's overrides and the traceback."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    body = f"{type(error).__name__}: {error}\noverrides: {' '.join(overrides)}\n\n{text}"
    atomic_write(Path(run_dir) / FAILED_FILE, lambda f: f.write(body), mode="w")


def write_pruned(run_dir: Path, error: BaseException) -> None:
    """Mark an Optuna trial stopped by the pruner: the sweeper reads this as PRUNED, not failed."""
    atomic_write(Path(run_dir) / PRUNED_FILE, lambda f: f.write(f"{error}\n"), mode="w")


def tracking_info(cfg: DictConfig) -> tuple[str, dict[str, str]]:
    """The dashboard name and tags of a run: task, run name, user tags, sweep name, job number and the
    job's command-line overrides, and for an Optuna trial the study's name and the trial number."""
    tags = {"task": str(cfg.task_name), "run_name": str(cfg.run_name)}
    for t in cfg.get("tags") or []:
        tags[f"tag.{t}"] = "true"
    name = str(cfg.run_name)
    job = sweep_job()
    if job is not None:
        tags["sweep"], tags["sweep_job"] = job[0], str(job[1])
        tags["overrides"] = " ".join(HydraConfig.get().overrides.task)[:5000]  # what this job varies
        name = f"{job[0]}/{job[1]}"
    trial = cfg.get("optuna_trial")
    if trial is not None:
        tags["optuna_trial"] = str(trial)
        study = study_name()
        if study is not None:
            tags["optuna_study"] = study
    return name, tags
