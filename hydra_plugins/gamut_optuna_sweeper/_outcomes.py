"""How a finished job of gamut's Optuna sweeper ended, as the trial state the study is told.

:func:`job_outcome` reads a Hydra ``JobReturn`` and the job's folder (:func:`job_folder`):

- it returned a finite number: COMPLETE, with that value;
- its folder holds a ``pruned`` marker (a job the pruner stopped, see src/sweeps/optuna.py), or it
  raised ``optuna.TrialPruned``: PRUNED;
- anything else (None, NaN, something that is not a number, an exception): FAIL, with a note saying
  why (the first line of the job's ``failed`` marker when it left one).

The marker names are the run folder's (:mod:`src.utils.run_folder`). Optuna is not imported here
(:func:`is_trial_pruned` checks the exception by name). A private module, as ``_search_space`` is:
Hydra's plugin scan leaves it alone.
"""

import math
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from src.utils.run_folder import FAILED_FILE, PRUNED_FILE

__all__ = ["is_trial_pruned", "job_folder", "job_outcome"]


def job_folder(ret: JobReturn) -> Path | None:
    """The folder the job ran in (``hydra.runtime.output_dir``; gamut's ``paths.run_dir``)."""
    out = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg is not None else None
    if out:
        return Path(str(out))
    try:
        run_dir = OmegaConf.select(ret.cfg, "paths.run_dir") if ret.cfg is not None else None
    except Exception:  # an interpolation that only resolves inside the job
        run_dir = None
    return Path(str(run_dir)) if run_dir else None


def _first_line(path: Path) -> str:
    try:
        lines = path.read_text().strip().splitlines()
    except OSError:
        return ""
    return lines[0] if lines else ""


def is_trial_pruned(error: object) -> bool:
    """True for ``optuna.TrialPruned`` (and subclasses), checked by name so as not to import Optuna."""
    return any(c.__name__ == "TrialPruned" and c.__module__.startswith("optuna") for c in type(error).__mro__)


def job_outcome(ret: JobReturn) -> tuple[str, float | None, str]:
    """``(state, value, note)`` of a finished job: ``COMPLETE`` with its value, ``PRUNED`` or ``FAIL``."""
    folder = job_folder(ret)
    if folder is not None and (folder / PRUNED_FILE).is_file():
        return "PRUNED", None, _first_line(folder / PRUNED_FILE)
    if ret.status != JobStatus.COMPLETED:
        error = ret._return_value
        if is_trial_pruned(error):
            return "PRUNED", None, str(error)
        if isinstance(error, BaseException):
            return "FAIL", None, f"raised {type(error).__name__}: {error}"
        return "FAIL", None, f"job status {ret.status.name}"
    value = ret._return_value
    if value is None:
        note = "returned no value"
        if folder is not None and (folder / FAILED_FILE).is_file():
            note += f" ({_first_line(folder / FAILED_FILE)}; {folder / FAILED_FILE})"
        else:
            note += " (is optimized_metric among the metrics the job logs?)"
        return "FAIL", None, note
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "FAIL", None, f"returned {value!r}, not a number"
    if not math.isfinite(number):
        return "FAIL", None, f"returned {number}"
    return "COMPLETE", number, ""
