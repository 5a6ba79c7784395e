"""The names inside a run folder, declared once: every writer and every reader imports them from here.

A training run owns ``${paths.log_dir}/${task_name}/${run_name}/`` (a sweep job
``<run_name>/<job number>/``; docs/architecture.md, "The run folder"). Who writes and who reads each
name:

- ``.hydra/config.yaml``, ``.hydra/overrides.yaml``: written by src/train.py, read by src/utils/resume.py
  (a resume composes the run's own overrides again) and src/eval.py (the reals' data node);
  ``.hydra/resume-<k>/`` holds a resume's own files plus ``changes.yaml``; ``train.log``.
- ``checkpoints/last.ckpt``: written by src/callbacks/checkpoint.py, read by ``ckpt_path=last``
  (src/utils/validation.py, src/utils/resume.py) and src/loggers/neptune.py; every checkpoint has its
  checksum record ``<name>.ckpt.sha256`` (src/utils/integrity.py, which also sets a damaged
  ``last.ckpt`` aside as ``last.ckpt.damaged``).
- ``lock``: the training process that holds the run folder (src/utils/run_lock.py), while it runs.
- ``mlflow_run_id`` / ``neptune_run_id`` / ``wandb_run_id``: written by the loggers (src/loggers/), read
  by them on resume and when src/eval.py reopens the run to report its results.
- ``done`` / ``failed`` / ``pruned``: a run's outcome, written by src/sweeps/jobs.py; read by a relaunched
  sweep (``done``: skip the job), src/sweeps/report.py and the Optuna sweeper (hydra_plugins/).

A sweep folder (``<run_name>/``) holds the jobs' folders, :data:`MLFLOW_PARENT_RUN_ID_FILE` (the MLflow
run the jobs' runs nest under, written by src/loggers/mlflow.py) and, for gamut's Optuna sweeper,
:data:`RESULTS_FILE`. This module imports nothing from gamut (layer 1, below everything that uses it).
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CHANGES_FILE",
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "DONE_FILE",
    "FAILED_FILE",
    "HYDRA_DIR",
    "LAST_CHECKPOINT",
    "LOCK_FILE",
    "LOG_FILE",
    "MLFLOW_PARENT_RUN_ID_FILE",
    "MLFLOW_RUN_ID_FILE",
    "NEPTUNE_RUN_ID_FILE",
    "OVERRIDES_FILE",
    "PRUNED_FILE",
    "RESULTS_FILE",
    "WANDB_RUN_ID_FILE",
    "latest_launch_config",
    "launch_dirs",
    "next_launch_dir",
    "last_checkpoint",
    "remove_if_empty",
    "run_dir_of",
]

HYDRA_DIR = ".hydra"  # the launch record: config.yaml, overrides.yaml, resume-<k>/
CONFIG_FILE = "config.yaml"  # the composed config, unresolved (under HYDRA_DIR)
OVERRIDES_FILE = "overrides.yaml"  # the launch's command-line overrides (under HYDRA_DIR)
RESUME_DIR = "resume-{k}"  # under HYDRA_DIR: the k-th resumed launch's config.yaml, overrides.yaml, changes.yaml
CHANGES_FILE = "changes.yaml"  # what a resume changed, key: [first launch, this launch] (under resume-<k>/)
LOG_FILE = "train.log"  # the log of every launch
CHECKPOINT_DIR = "checkpoints"  # src/conf/callbacks/default.yaml: dirpath ${paths.run_dir}/checkpoints
LAST_CHECKPOINT = "last.ckpt"  # always current; ckpt_path=last resumes it (each .ckpt has a .ckpt.sha256)
LOCK_FILE = "lock"  # who trains the run now (pid, host, start); the lock itself is a flock on the folder
MLFLOW_RUN_ID_FILE = "mlflow_run_id"  # the MLflow run a resume continues
MLFLOW_PARENT_RUN_ID_FILE = "mlflow_parent_run_id"  # in a sweep folder: the sweep's parent MLflow run
NEPTUNE_RUN_ID_FILE = "neptune_run_id"  # the Neptune run a resume continues
WANDB_RUN_ID_FILE = "wandb_run_id"  # the W&B run a resume (and src/eval.py) continues
DONE_FILE = "done"  # the run reached trainer.max_kimg / max_steps (JSON: iteration, kimg, finished, metrics)
FAILED_FILE = "failed"  # a sweep job that stopped with an error (the error, the overrides, the traceback)
PRUNED_FILE = "pruned"  # an Optuna trial stopped by the pruner: not a failure (the pruner's message)
RESULTS_FILE = "optimization_results.yaml"  # in the sweep folder: the Optuna study's counts and best trial


def last_checkpoint(run_dir: Path) -> Path:
    """``<run_dir>/checkpoints/last.ckpt`` (whether or not it exists)."""
    return Path(run_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT


def run_dir_of(ckpt: Path) -> Path | None:
    """``<run>`` for ``<run>/checkpoints/<file>.ckpt``, else None (a checkpoint outside a run folder)."""
    ckpt = Path(ckpt)
    return ckpt.parent.parent if ckpt.parent.name == CHECKPOINT_DIR else None


def remove_if_empty(path: Path, stop: Path) -> None:
    """Remove ``path`` and its parents up to (not including) ``stop`` while they are empty.

    For a launch refused before anything was written: Hydra may already have created the run folder.
    ``rmdir`` only removes an empty folder, so nothing a previous run wrote is ever deleted.
    """
    path, stop = Path(path).resolve(), Path(stop).resolve()
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent


def launch_dirs(run_dir: Path) -> list[Path]:
    """The launches recorded so far, in order: ``.hydra/`` (the first) and each ``.hydra/resume-<k>/``."""
    out = run_dir / HYDRA_DIR
    dirs = [out] if (out / CONFIG_FILE).is_file() else []
    while dirs and (out / RESUME_DIR.format(k=len(dirs))).exists():
        dirs.append(out / RESUME_DIR.format(k=len(dirs)))
    return dirs


def next_launch_dir(run_dir: Path) -> Path:
    """Where this launch records its config: ``.hydra/`` for the first, ``.hydra/resume-<k>/`` after."""
    k = len(launch_dirs(run_dir))
    return run_dir / HYDRA_DIR if k == 0 else run_dir / HYDRA_DIR / RESUME_DIR.format(k=k)


def latest_launch_config(run_dir: Path) -> Path:
    """The config file of the run's latest launch (the last resume's, else the first launch's): what
    the run logs to now, e.g. after it was resumed with another logger."""
    written = [d / CONFIG_FILE for d in launch_dirs(run_dir) if (d / CONFIG_FILE).is_file()]
    return written[-1] if written else run_dir / HYDRA_DIR / CONFIG_FILE
