"""An Optuna study run as a Hydra sweep: one trial is one job of whichever launcher is configured.

The search space is ``hydra.sweeper.params`` (``key: value`` in Hydra's override grammar) together with
the sweeps given on the command line (:func:`parse_search_space`, in ``_search_space.py``). The sweep
uses Optuna's ask-and-tell interface, ``n_jobs`` trials at a time: it asks the study for each trial's
values, launches one job per trial with those values as overrides plus ``optuna_trial=<number>``,
numbering the jobs from the trial number (``initial_job_idx``) so that a job folder
``<sweep dir>/<hydra.job.num>`` carries its trial's number, and tells the study how each job ended
(:func:`job_outcome`, in ``_outcomes.py``: COMPLETE with the value it returned, PRUNED, or FAIL; a
failed or pruned trial does not stop the search).

The study is ``study_name`` in ``storage``, loaded when it exists, so launching the same command again
runs ``n_trials`` more trials numbered on from the last. After each batch the sweep writes
``<sweep dir>/optimization_results.yaml``: the study, the trial counts and the best trial so far.

This is the module Hydra's plugin scan registers the sweeper from and src/conf/hydra/sweeper/optuna.yaml's
``_target_`` names; it is also the plugin's public interface (the names in ``__all__``), its helpers
being private modules the scan skips. Optuna is imported inside the functions that need it: Hydra
imports this module at the start of every run (its plugin scan), Optuna sweep or not. For the same
reason there is no ``from __future__ import annotations`` here: the scan runs the module before
registering it in ``sys.modules``, where ``dataclasses`` looks up string annotations.
"""

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.gamut_optuna_sweeper._outcomes import is_trial_pruned, job_folder, job_outcome
from hydra_plugins.gamut_optuna_sweeper._search_space import (
    SearchSpace,
    SweepConfigError,
    is_int,
    parse_search_space,
)
from src.utils.run_folder import RESULTS_FILE  # the sweep folder's record of the study

__all__ = [
    "DIRECTIONS",
    "TRIAL_KEY",
    "OptunaSweeper",
    "SearchSpace",
    "SweepConfigError",
    "consecutive_runs",
    "is_trial_pruned",
    "job_folder",
    "job_outcome",
    "parse_search_space",
    "storage_display",
]

log = logging.getLogger(__name__)

TRIAL_KEY = "optuna_trial"  # the config key each job gets its trial number in
DIRECTIONS = ("minimize", "maximize")


# --------------------------------------------------------------------------------------------------
# Launching and recording


def consecutive_runs(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """``(start index, end index)`` of each run of consecutive numbers: one launch each, so that
    every job number equals its trial number (another process asking the same study can leave gaps)."""
    runs, start = [], 0
    for i in range(1, len(numbers) + 1):
        if i == len(numbers) or numbers[i] != numbers[i - 1] + 1:
            runs.append((start, i))
            start = i
    return runs


def storage_display(url: str | None) -> str:
    """A storage URL for logs and files, password hidden."""
    if url is None:
        return "in memory"
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: shown as given
        return url


def _write_text(path: Path, text: str) -> None:
    """Write ``path`` atomically (a reader sees the old file or the new one, never a partial one)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------------
# The sweeper


class OptunaSweeper(Sweeper):
    """Hydra sweeper running an Optuna study; its options are src/conf/hydra/sweeper/optuna.yaml's."""

    def __init__(
        self,
        study_name: str | None = None,
        storage: str | None = None,
        direction: str = "auto",
        n_trials: int = 20,
        n_jobs: int = 1,
        sampler: Any = None,
        pruner: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.study_name = study_name
        self.storage = None if storage is None else str(storage)
        self.direction = direction
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.sampler = sampler
        self.pruner = pruner
        self.params = params
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        self.trial_key = TRIAL_KEY

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        # gamut's train.yaml declares optuna_trial; another app's config gets it added
        self.trial_key = TRIAL_KEY if TRIAL_KEY in config else f"+{TRIAL_KEY}"

    # -- checks ------------------------------------------------------------------------------------

    def _checked_direction(self) -> str:
        direction = str(self.direction).lower() if isinstance(self.direction, str) else None
        if direction == "auto":  # from the metric: FID/KID/PPL fall as models improve, IS/PR/PSNR/SSIM rise
            metric = None if self.config is None else self.config.get("optimized_metric")
            if not metric:
                raise SweepConfigError("hydra.sweeper.direction=auto needs optimized_metric (or give the direction)")
            from src.metrics.protocols import higher_is_better

            return "maximize" if higher_is_better(str(metric)) else "minimize"
        if direction not in DIRECTIONS:
            raise SweepConfigError(f"hydra.sweeper.direction={self.direction!r}: must be auto, minimize or maximize")
        return direction

    def _check_counts(self) -> None:
        for key, least in (("n_trials", 0), ("n_jobs", 1)):
            value = getattr(self, key)
            if not is_int(value) or value < least:
                raise SweepConfigError(f"hydra.sweeper.{key}={value!r}: must be a whole number >= {least}")
        if not self.study_name:
            raise SweepConfigError("hydra.sweeper.study_name is empty")

    def _build(self, key: str, node: Any, **kwargs: Any) -> Any:
        """Instantiate ``hydra.sweeper.<key>`` (null: None; a bare class path also works)."""
        if node is None:
            return None
        from hydra.utils import instantiate

        if isinstance(node, str):
            node = {"_target_": node}
        try:
            return instantiate(node, **kwargs)
        except Exception as e:  # any bad sampler/pruner config is one line naming the key
            cause = e.__cause__ or e  # instantiate wraps what the class raised
            reason = "; ".join(ln.strip() for ln in str(cause).splitlines() if ln.strip())
            raise SweepConfigError(f"hydra.sweeper.{key}: {type(cause).__name__}: {reason}") from None

    def _check_study(self, study: Any, direction: str, space: SearchSpace) -> None:
        from optuna.distributions import check_distribution_compatibility

        where = f"study {study.study_name!r} ({storage_display(self.storage)})"
        if study.direction.name.lower() != direction:
            raise SweepConfigError(
                f"hydra.sweeper.direction={direction}: the {where} was created to {study.direction.name.lower()}; "
                "give a new study another hydra.sweeper.study_name (or run_name)"
            )
        seen: set[str] = set()
        for trial in study.get_trials(deepcopy=False):
            for name, old in trial.distributions.items():
                new = space.params.get(name)
                if new is None or name in seen:
                    continue
                seen.add(name)
                try:
                    check_distribution_compatibility(old, new.distribution)
                except ValueError as e:
                    raise SweepConfigError(
                        f"{name}: the {where} searched it as {old}, which cannot change to {new.distribution} "
                        f"({e}); give a new study another hydra.sweeper.study_name (or run_name)"
                    ) from None

    def _check_sweep_dir(self, sweep_dir: Path, storage: str | None) -> None:
        """A new (or empty) study must not number its trials into job folders another launch left.
        Checked before the study is created, so a refused launch leaves nothing in the storage."""
        import optuna

        jobs = sorted((p.name for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=int)
        if not jobs:
            return
        if storage is not None:
            try:
                if optuna.load_study(study_name=str(self.study_name), storage=storage).get_trials(deepcopy=False):
                    return
            except KeyError:  # no such study
                pass
        shown = ", ".join(jobs[:5]) + (", ..." if len(jobs) > 5 else "")
        raise SweepConfigError(
            f"{sweep_dir} already holds job folders ({shown}) but the study {self.study_name!r} "
            f"({storage_display(storage)}) has no trials, so its trials would reuse those numbers; "
            "move the folders away or choose another run_name"
        )

    # -- the sweep ---------------------------------------------------------------------------------

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        import optuna

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        space = parse_search_space(self.params, arguments, parser)
        direction = self._checked_direction()
        self._check_counts()
        sampler = self._build("sampler", self.sampler)
        pruner = self._build("pruner", self.pruner)
        # a key that does not compose stops the launch here, before the study gets a trial
        self.validate_batch_is_legal([[*space.overrides(space.example()), f"{self.trial_key}=0"]])
        storage = self._prepare_storage()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        try:
            if sweep_dir.is_dir():
                self._check_sweep_dir(sweep_dir, storage)
            study = optuna.create_study(
                study_name=str(self.study_name),
                storage=storage,
                sampler=sampler,
                pruner=pruner,
                direction=direction,
                load_if_exists=True,
            )
        except SweepConfigError:
            raise
        except Exception as e:  # a bad URL, a driver that is not installed, no server
            where = storage_display(storage)
            raise SweepConfigError(f"hydra.sweeper.storage={where}: {type(e).__name__}: {e}") from None
        self._check_study(study, direction, space)
        previous = len(study.get_trials(deepcopy=False))
        seed = self.sampler.get("seed") if isinstance(self.sampler, Mapping) else None
        if previous and is_int(seed):  # the same seed again would redraw the first launch's values
            study.sampler = self._build("sampler", self.sampler, seed=seed + previous)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        log.info(
            "Optuna study %r (%s): %d trial(s) so far; %d more, %d at a time, in %s",
            study.study_name,
            storage_display(storage),
            previous,
            self.n_trials,
            self.n_jobs,
            sweep_dir,
        )
        log.info("searching: %s", ", ".join(f"{n}: {p.distribution}" for n, p in space.params.items()) or "nothing")
        returns: list[Sequence[JobReturn]] = []
        launched: list[int] = []
        while len(launched) < self.n_trials:
            count = min(self.n_jobs, self.n_trials - len(launched))
            trials = [study.ask(space.distributions) for _ in range(count)]
            try:
                results = self._launch(trials, space)
                for trial, ret in zip(trials, results):
                    self._tell(study, trial, ret)
            except BaseException:  # a launcher error, Ctrl-C: these trials must not stay RUNNING
                for trial in trials:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                raise
            launched += [t.number for t in trials]
            returns.append(results)
            self._write_results(study, sweep_dir, launched)
        if not launched:
            self._write_results(study, sweep_dir, launched)
        self._log_best(study, sweep_dir)
        return returns

    def _prepare_storage(self) -> str | None:
        """The storage URL; for an SQLite file, its folder is created."""
        url = self.storage
        if url is None:
            return None
        if not url.strip():
            raise SweepConfigError("hydra.sweeper.storage is empty (null keeps the study in memory)")
        if url.startswith("sqlite:"):
            from sqlalchemy.engine import make_url

            try:
                database = make_url(url).database
            except Exception as e:  # a URL SQLAlchemy cannot read
                raise SweepConfigError(f"hydra.sweeper.storage={url}: {e}") from None
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return url

    def _launch(self, trials: Sequence[Any], space: SearchSpace) -> list[JobReturn]:
        assert self.launcher is not None
        batch = [[*space.overrides(t.params), f"{self.trial_key}={t.number}"] for t in trials]
        self.validate_batch_is_legal(batch)  # a composition error stops the sweep here, not in every job
        results: list[JobReturn] = []
        for start, end in consecutive_runs([t.number for t in trials]):
            results += list(self.launcher.launch(batch[start:end], initial_job_idx=trials[start].number))
        return results

    def _tell(self, study: Any, trial: Any, ret: JobReturn) -> None:
        from optuna.trial import TrialState

        state, value, note = job_outcome(ret)
        folder = job_folder(ret)
        if folder is not None:
            trial.set_user_attr("job_dir", str(folder))
        if state == "COMPLETE":
            study.tell(trial, value)
            log.info("trial %d: value %.6g (%s)", trial.number, value, _params_text(trial.params))
            return
        study.tell(trial, state=TrialState[state])
        if state == "FAIL" and isinstance(ret._return_value, BaseException):
            error = ret._return_value
            log.error("trial %d failed: %s", trial.number, note, exc_info=(type(error), error, error.__traceback__))
        else:
            log.warning("trial %d %s: %s", trial.number, "pruned" if state == "PRUNED" else "failed", note)

    def _write_results(self, study: Any, sweep_dir: Path, launched: list[int]) -> None:
        import yaml

        trials = study.get_trials(deepcopy=False)
        count = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
        assert self.config is not None
        record: dict[str, Any] = {
            "study_name": study.study_name,
            "storage": storage_display(self.storage),
            "direction": study.direction.name.lower(),
            "optimized_metric": OmegaConf.select(self.config, "optimized_metric", default=None),
            "trials": {
                "total": len(trials),
                "complete": count["COMPLETE"],
                "pruned": count["PRUNED"],
                "failed": count["FAIL"],
                "running": count["RUNNING"],
            },
            "this_launch": list(launched),
        }
        best = _best_trial(study)
        if best is None:
            record.update(best_trial=None, note="no trial has completed yet: there is no best value")
        else:
            record.update(
                best_trial=best.number,
                best_value=float(best.value),
                best_params=dict(best.params),
                best_job_dir=best.user_attrs.get("job_dir"),
            )
        _write_text(sweep_dir / RESULTS_FILE, yaml.safe_dump(record, sort_keys=False))

    def _log_best(self, study: Any, sweep_dir: Path) -> None:
        best = _best_trial(study)
        if best is None:
            log.warning("study %r: no trial has completed, so there is no best value yet", study.study_name)
        else:
            log.info(
                "study %r: best trial %d, value %.6g (%s)",
                study.study_name,
                best.number,
                best.value,
                _params_text(best.params),
            )
        log.info("results: %s", sweep_dir / RESULTS_FILE)


def _best_trial(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:  # no COMPLETE trial
        return None


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
