"""A sweep job's side of an Optuna search (the sweeper: hydra_plugins/gamut_optuna_sweeper).

The sweeper gives each job its trial number as ``optuna_trial`` and launches it with the same
``hydra.sweeper`` config, so a job finds its study from ``HydraConfig``: :func:`report` records an
intermediate value of the trial in the study's storage and raises ``optuna.TrialPruned`` when the
study's pruner says the trial is not worth finishing. ``src/train.py`` turns that exception into a
``pruned`` marker in the job's folder (src/sweeps/jobs.py), from which the sweeper tells the study that the trial was
pruned. Outside such a sweep everything here is a no-op.

Optuna is imported inside the functions: importing this module (and ``src.train``) does not import it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hydra_plugins.gamut_optuna_sweeper.optuna_sweeper import TRIAL_KEY, OptunaSweeper, is_trial_pruned
from src.utils.run_folder import RESULTS_FILE

log = logging.getLogger(__name__)

SWEEPER_TARGET = f"{OptunaSweeper.__module__}.{OptunaSweeper.__qualname__}"
__all__ = ["TRIAL_KEY", "is_pruned", "optuna_launch", "report", "study_name", "sweeper_config"]

_studies: dict[tuple[str, str], tuple[Any, Any]] = {}  # (storage, study name) -> (study, its storage)
_warned: set[str] = set()


def sweeper_config():
    """This job's ``hydra.sweeper`` node when Hydra runs it as a job of gamut's Optuna sweeper, else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    sweeper = hc.sweeper
    if sweeper is None or sweeper.get("_target_") != SWEEPER_TARGET:
        return None
    return sweeper


def study_name() -> str | None:
    """The name of the Optuna study this job is a trial of (None outside an Optuna sweep)."""
    sweeper = sweeper_config()
    return None if sweeper is None else str(sweeper.study_name)


def optuna_launch(config: DictConfig) -> set[int] | None:
    """After a multirun (the sweep's own config): the trial numbers this launch of gamut's Optuna
    sweeper ran, from ``<sweep dir>/optimization_results.yaml``; None for any other sweeper."""
    if str(OmegaConf.select(config, "hydra.sweeper._target_", default="")) != SWEEPER_TARGET:
        return None
    import yaml

    try:
        record = yaml.safe_load((Path(str(config.hydra.sweep.dir)) / RESULTS_FILE).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return set()
    return {int(n) for n in record.get("this_launch") or []}


def is_pruned(error: BaseException) -> bool:
    """True when ``error`` is ``optuna.TrialPruned`` (checked by class name: Optuna is not imported)."""
    return is_trial_pruned(error)


def _study(storage: str, name: str, pruner_config: Any) -> tuple[Any, Any]:
    """The study (with the sweep's pruner) and its storage, loaded once per process."""
    key = (storage, name)
    if key not in _studies:
        import hydra.utils
        import optuna

        backend = optuna.storages.RDBStorage(storage)
        pruner = hydra.utils.instantiate(pruner_config) if pruner_config is not None else optuna.pruners.NopPruner()
        _studies[key] = (optuna.load_study(study_name=name, storage=backend, pruner=pruner), backend)
    return _studies[key]


def report(trial_number: int | None, value: float, step: int) -> None:
    """Report ``value`` at ``step`` as an intermediate value of trial ``trial_number`` (``cfg.optuna_trial``).

    Raises ``optuna.TrialPruned`` when the study's pruner (``hydra.sweeper.pruner``) decides to stop
    the trial. A no-op when ``trial_number`` is None, outside a job of gamut's Optuna sweeper, and when
    the study is kept in memory (``hydra.sweeper.storage: null``, which a job cannot reach). Under DDP,
    call it on one rank and share the decision: every rank has to stop.
    """
    if trial_number is None:
        return
    sweeper = sweeper_config()
    if sweeper is None:
        return
    storage = sweeper.get("storage")
    if not storage:
        if "memory" not in _warned:
            _warned.add("memory")
            log.warning("hydra.sweeper.storage is null: intermediate values are not reported and nothing is pruned")
        return
    import optuna

    study, backend = _study(str(storage), str(sweeper.study_name), sweeper.get("pruner"))
    study_id = backend.get_study_id_from_name(study.study_name)
    trial_id = backend.get_trial_id_from_study_id_trial_number(study_id, int(trial_number))
    if backend.get_trial(trial_id).state.is_finished():
        log.warning("Optuna trial %d is already finished; value at step %d not reported", trial_number, step)
        return
    trial = optuna.trial.Trial(study, trial_id)
    value, step = float(value), int(step)
    trial.report(value, step)
    if trial.should_prune():
        pruner = type(study.pruner).__name__
        raise optuna.TrialPruned(f"trial {trial_number} pruned by {pruner} at step {step} (value {value:.6g})")
