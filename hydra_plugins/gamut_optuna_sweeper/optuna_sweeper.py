"""An Optuna study run as a Hydra sweep: one trial is one job of whichever launcher is configured.

The search space is ``hydra.sweeper.params`` (``key: value`` in Hydra's override grammar, see
:func:`parse_search_space`) together with the sweeps given on the command line. The sweep uses
Optuna's ask-and-tell interface, ``n_jobs`` trials at a time: it asks the study for each trial's
values, launches one job per trial with those values as overrides plus ``optuna_trial=<number>``,
numbering the jobs from the trial number (``initial_job_idx``) so that a job folder
``<sweep dir>/<hydra.job.num>`` carries its trial's number, and tells the study how each job ended:

- it returned a finite number: COMPLETE, with that value;
- its folder holds a ``pruned`` marker (a job the pruner stopped, see src/sweeps/optuna.py), or it
  raised ``optuna.TrialPruned``: PRUNED;
- anything else (None, NaN, something that is not a number, an exception): FAIL, and the search
  goes on.

The study is ``study_name`` in ``storage``, loaded when it exists, so launching the same command again
runs ``n_trials`` more trials numbered on from the last. After each batch the sweep writes
``<sweep dir>/optimization_results.yaml``: the study, the trial counts and the best trial so far.

Optuna is imported inside the functions that need it: Hydra imports this module at the start of every
run (its plugin scan), Optuna sweep or not. For the same reason there is no ``from __future__ import
annotations`` here: the scan runs the module before registering it in ``sys.modules``, where
``dataclasses`` looks up string annotations.
"""

import logging
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException, HydraException
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

TRIAL_KEY = "optuna_trial"  # the config key each job gets its trial number in
PRUNED_FILE = "pruned"  # written into a job's folder by a job the pruner stopped
FAILED_FILE = "failed"  # gamut's marker of a job that stopped with an error (src/train.py)
RESULTS_FILE = "optimization_results.yaml"
DIRECTIONS = ("minimize", "maximize")


class SweepConfigError(CompactHydraException):
    """A ``hydra.sweeper`` value (or a command-line sweep) that cannot be used; Hydra prints only the message."""

    def __init__(self, message: str) -> None:
        super().__init__(f"gamut: invalid config: {message}")


# --------------------------------------------------------------------------------------------------
# The search space


@dataclass(frozen=True)
class Param:
    """One searched key: its Optuna distribution and how a drawn value is written back as an override."""

    name: str  # the parameter's name in the study: the config key or group
    key: str  # the override's key as written (with a leading + or ++ when it had one)
    distribution: Any  # an optuna.distributions.BaseDistribution
    texts: tuple[str, ...] = ()  # categorical only: each choice written in the override grammar

    def override(self, value: Any) -> str:
        if self.texts:  # the choice's own text (lists, dicts, quoted strings survive as written)
            for choice, text in zip(self.distribution.choices, self.texts):
                if type(choice) is type(value) and choice == value:
                    return f"{self.key}={text}"
            raise ValueError(f"{self.name}: {value!r} is not one of {self.distribution.choices}")
        return f"{self.key}={value!r}" if isinstance(value, float) else f"{self.key}={value}"


@dataclass
class SearchSpace:
    """What a sweep searches (``params``) and the overrides every trial gets unchanged (``fixed``)."""

    params: dict[str, Param] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)

    @property
    def distributions(self) -> dict[str, Any]:
        return {name: p.distribution for name, p in self.params.items()}

    def overrides(self, values: Mapping[str, Any]) -> list[str]:
        """A trial's overrides: the fixed ones, then one per searched key with the trial's value."""
        return [*self.fixed, *(p.override(values[name]) for name, p in self.params.items())]

    def example(self) -> dict[str, Any]:
        """One value of every searched key (the lowest, or the first choice): to check that they compose."""
        return {name: p.distribution.choices[0] if p.texts else p.distribution.low for name, p in self.params.items()}


def parse_search_space(
    params: Mapping[str, Any] | None, arguments: Sequence[str] = (), parser: OverridesParser | None = None
) -> SearchSpace:
    """The search space of ``hydra.sweeper.params`` and the command line's overrides.

    Each ``params`` entry ``key: value`` is parsed as the override ``key=value``:

    - ``interval(a, b)``: a float, uniform in [a, b); ``tag(log, interval(a, b))``: log-uniform;
    - ``int(interval(a, b))`` or ``tag(int, interval(a, b))``: an integer in [a, b] (with ``log`` too);
    - ``range(a, b, step)``: ``a, a + step, ...`` below ``b``, as Python's range and Hydra's basic
      sweeper count (int or float steps);
    - ``choice(x, y, ...)`` or ``x,y,...``: categorical; a config group too (``model: choice(stylegan2, segan)``);
    - any other value: fixed, the same for every trial.

    Nested mappings count as dotted keys (``+hydra.sweeper.params.model.optim.g_lr=...`` on the command
    line makes one). Of ``arguments`` (the command line's overrides), a sweep joins the search space and
    anything else is passed to every trial as written; either way it replaces a ``params`` entry for
    the same key. A value that cannot define a distribution raises :class:`SweepConfigError` naming the
    key, e.g. ``hydra.sweeper.params.model.optim.g_lr: interval(0.01, 0.001): low must be below high``.
    """
    parser = parser or OverridesParser.create()
    configured: dict[str, tuple[str, Override, str]] = {}
    for key, value in _flatten(params or {}):
        text = _value_text(value)
        override = _parse(parser, f"{key}={text}", f"hydra.sweeper.params.{key}: {text}")
        configured[override.key_or_group] = (f"hydra.sweeper.params.{key}: {text}", override, f"{key}={text}")
    given = [(arg, _parse(parser, arg, arg)) for arg in arguments]
    named = {o.key_or_group for _, o in given}

    space = SearchSpace()
    for name, (where, override, text) in configured.items():
        if name not in named:  # the command line wins
            _add(space, where, override, text)
    for arg, override in given:
        _add(space, arg, override, arg)
    return space


def _flatten(node: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _value_text(value: Any) -> str:
    """A ``params`` value as override text: strings are already in the grammar, the rest is encoded."""
    if isinstance(value, str):
        return value
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    return Transformer.str(value)


def _parse(parser: OverridesParser, text: str, where: str) -> Override:
    try:
        (override,) = parser.parse_overrides([text])
    except HydraException as e:
        lines = [ln.strip() for ln in str(e).splitlines()]
        reason = [ln for ln in lines if ln and not ln.startswith(("Error parsing override", "See https://"))]
        raise SweepConfigError(f"{where}: cannot be parsed ({'; '.join(reason or lines[:1])})") from None
    return override


def _add(space: SearchSpace, where: str, override: Override, text: str) -> None:
    if override.is_hydra_override():
        raise SweepConfigError(f"{where}: a hydra.* key cannot be searched")
    if not override.is_sweep_override():
        space.fixed.append(text)
        return
    distribution, texts = _distribution(override, where)
    name = override.key_or_group
    space.params[name] = Param(name, override.get_key_element(), distribution, texts)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _distribution(override: Override, where: str) -> tuple[Any, tuple[str, ...]]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    tags = set(getattr(value, "tags", None) or ())
    if isinstance(value, IntervalSweep):
        low, high, log_scale = value.start, value.end, "log" in tags
        integer = "int" in tags or (_is_int(low) and _is_int(high))
        if integer:
            low, high = math.ceil(low), math.floor(high)
        if not low < high:
            raise SweepConfigError(f"{where}: low must be below high")
        if log_scale and low <= 0:
            raise SweepConfigError(f"{where}: a log interval needs low > 0")
        if integer:
            return IntDistribution(int(low), int(high), log=log_scale), ()
        return FloatDistribution(float(low), float(high), log=log_scale), ()
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        if "log" in tags:
            raise SweepConfigError(f"{where}: a range has a step and cannot be log; use tag(log, interval(a, b))")
        if not step > 0:
            raise SweepConfigError(f"{where}: step must be positive")
        if not start < stop:
            raise SweepConfigError(f"{where}: empty range (start must be below stop)")
        count = math.ceil((Decimal(str(stop)) - Decimal(str(start))) / Decimal(str(step)))
        if _is_int(start) and _is_int(stop) and _is_int(step):
            return IntDistribution(start, start + (count - 1) * step, step=step), ()
        last = Decimal(str(start)) + (count - 1) * Decimal(str(step))
        return FloatDistribution(float(start), float(last), step=float(step)), ()
    # choice(...), a,b,c, or glob(...) over a config group's options (in the order listed)
    elements = list(value.list) if isinstance(value, ChoiceSweep) else list(override.sweep_iterator())
    if not elements:
        raise SweepConfigError(f"{where}: empty choice")
    texts = tuple(Transformer.str(e) for e in elements)
    if len(set(texts)) < len(texts):
        raise SweepConfigError(f"{where}: a choice is listed twice")
    return CategoricalDistribution([Transformer.encode(e) for e in elements]), texts


# --------------------------------------------------------------------------------------------------
# Jobs and their outcome


def job_folder(ret: JobReturn) -> Path | None:
    """The folder the job ran in (``hydra.runtime.output_dir``; gamut's ``paths.run_dir``)."""
    out = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg is not None else None
    if out:
        return Path(str(out))
    try:
        run_dir = OmegaConf.select(ret.cfg, "paths.run_dir") if ret.cfg is not None else None
    except Exception:  # noqa: BLE001 - an interpolation that only resolves inside the job
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


def consecutive_runs(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """``(start index, end index)`` of each run of consecutive numbers: one launch each, so that
    every job number equals its trial number (another process asking the same study can leave gaps)."""
    runs, start = [], 0
    for i in range(1, len(numbers) + 1):
        if i == len(numbers) or numbers[i] != numbers[i - 1] + 1:
            runs.append((start, i))
            start = i
    return runs


def _display(url: str | None) -> str:
    """A storage URL for logs and files, password hidden."""
    if url is None:
        return "in memory"
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not an SQLAlchemy URL: shown as given
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
    """Hydra sweeper running an Optuna study; its options are conf/hydra/sweeper/optuna.yaml's."""

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
            if not _is_int(value) or value < least:
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
        except Exception as e:  # noqa: BLE001 - any bad sampler/pruner config is one line naming the key
            cause = e.__cause__ or e  # instantiate wraps what the class raised
            reason = "; ".join(ln.strip() for ln in str(cause).splitlines() if ln.strip())
            raise SweepConfigError(f"hydra.sweeper.{key}: {type(cause).__name__}: {reason}") from None

    def _check_study(self, study: Any, direction: str, space: SearchSpace) -> None:
        from optuna.distributions import check_distribution_compatibility

        where = f"study {study.study_name!r} ({_display(self.storage)})"
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
            f"({_display(storage)}) has no trials, so its trials would reuse those numbers; "
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
        except Exception as e:  # noqa: BLE001 - a bad URL, a driver that is not installed, no server
            raise SweepConfigError(f"hydra.sweeper.storage={_display(storage)}: {type(e).__name__}: {e}") from None
        self._check_study(study, direction, space)
        previous = len(study.get_trials(deepcopy=False))
        seed = self.sampler.get("seed") if isinstance(self.sampler, Mapping) else None
        if previous and _is_int(seed):  # the same seed again would redraw the first launch's values
            study.sampler = self._build("sampler", self.sampler, seed=seed + previous)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        log.info(
            "Optuna study %r (%s): %d trial(s) so far; %d more, %d at a time, in %s",
            study.study_name,
            _display(storage),
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
            except Exception as e:  # noqa: BLE001
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
            "storage": _display(self.storage),
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
