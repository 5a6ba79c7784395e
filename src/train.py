"""Train a model: ``python -m src.train [overrides]`` (Hydra; see conf/train.yaml).

Compose -> validate -> instantiate -> fit. Nothing is written to the run folder before the
config has been validated and the model, data and loggers have been built.

Sweeps (``-m``): a job that fails (bad config value, exception) writes ``<job dir>/failed`` and the
launcher goes on with the other jobs; :class:`SweepReport` lists the failed jobs at the end and
makes the sweep exit with status 1. A job that finished writes ``<job dir>/done`` (atomically,
last); re-launching the same sweep (same ``run_name``, same overrides in the same order, so the
same job numbers) skips those jobs and, with ``ckpt_path=last``, resumes the others.

Optuna searches (``hparams_search=...``, hydra_plugins/gamut_optuna_sweeper): each job is one trial
(``optuna_trial``) and returns ``optimized_metric``. A trial the pruner stops (``optuna.TrialPruned``,
raised by :func:`src.sweeps.optuna.report`) writes ``<job dir>/pruned`` instead of ``failed``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import traceback
import warnings
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, InstantiationException
from hydra.experimental.callback import Callback as HydraCallback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue
from pytorch_lightning.trainer.states import TrainerStatus

import src.utils.resolvers  # noqa: F401  (registers ${gamut.*})
from src.callbacks.limits import StopAtIteration, lightning_trainer_config, limits_from_config, reached
from src.checkpoints.io import AtomicCheckpointIO
from src.checkpoints.load import apply_init_architecture, load_init_weights, read_init_checkpoint
from src.metrics.protocols import parse_metrics, result_keys
from src.nn.layer_sync import SyncBatchNormPlugin
from src.pretrained.weights import MissingWeightsError
from src.sweeps.optuna import PRUNED_FILE, is_pruned, optuna_launch
from src.sweeps.optuna import study_name as optuna_study_name
from src.utils import ddp_launch
from src.utils.io import atomic_write
from src.utils.malloc import keep_freed_cpu_memory
from src.utils.resume import changed_keys, check_frozen, find_source, merge_overrides
from src.utils.validation import ConfigError, check_model_data, check_required, resolve_ckpt_path, validate

log = logging.getLogger("gamut.train")
log.setLevel(logging.INFO)  # train.log gets gamut's notes even when the root logger is quieter
# Lightning 2.6.6 calls a torch.utils._pytree API that torch 2.15 deprecates; harmless.
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")

DONE_FILE = "done"  # a job/run that reached its length, trainer.max_kimg or max_steps (JSON: iteration, kimg, metrics)
FAILED_FILE = "failed"  # a sweep job that stopped with an error (the error and its traceback)
# PRUNED_FILE = "pruned": an Optuna trial stopped by the pruner (src/sweeps/optuna.py), not a failure


def _instantiate_group(node: DictConfig | None) -> list:
    return [hydra.utils.instantiate(c) for c in (node or {}).values() if c is not None and "_target_" in c]


def _write_run_config(cfg: DictConfig, run_dir: Path, changes: dict | None = None) -> None:
    """Write the composed config and the command-line overrides (when launched by Hydra) under ``.hydra/``.

    A resumed launch keeps the first launch's files (a resume starts from them, src/utils/resume.py)
    and adds ``.hydra/resume-<k>/`` with its own config, overrides and ``changes.yaml``: every key
    whose value differs from the first launch's, as ``key: [first launch, this launch]``.
    """
    out = run_dir / ".hydra"
    if (out / "config.yaml").exists():
        k = 1
        while (out / f"resume-{k}").exists():
            k += 1
        out = out / f"resume-{k}"
    # Unresolved, as composed: src/eval.py lays data.* overrides over this node and its interpolations
    # (data.dataset.resolution: ${data.resolution}) must follow them. Checkpoints record it resolved.
    atomic_write(out / "config.yaml", lambda f: f.write(OmegaConf.to_yaml(cfg)), mode="w")
    if HydraConfig.initialized():
        hc = HydraConfig.get()
        atomic_write(out / "overrides.yaml", lambda f: f.write(OmegaConf.to_yaml(list(hc.overrides.task))), mode="w")
    if changes is not None:
        atomic_write(out / "changes.yaml", lambda f: f.write(OmegaConf.to_yaml(changes)), mode="w")


def _plain_config(cfg: DictConfig) -> dict:
    """The composed config as plain, resolved containers (loggers flatten it into params)."""
    return OmegaConf.to_container(cfg, resolve=True)


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
    """The ``done`` marker of a run folder, or None (missing or unreadable: not done)."""
    try:
        return json.loads((run_dir / DONE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _finished(cfg: DictConfig, run_dir: Path) -> dict | None:
    """The ``done`` record when this run already reached ``trainer.max_steps`` / ``trainer.max_kimg`` (else None)."""
    done = read_done(run_dir)
    limits = limits_from_config(cfg.trainer)
    if done is None or limits.unlimited:
        return None
    nimg = round(float(done.get("kimg", 0.0)) * 1000)
    return done if reached(limits, int(done.get("iteration", -1)), nimg) else None


def metric_keys(cfg: DictConfig) -> list[str]:
    """Every key this run puts in ``trainer.callback_metrics`` that a sweep may optimise: the metrics
    callback's results (when it evaluates, ``every_kimg > 0``) and the family's validation metrics."""
    keys: list[str] = []
    for name, node in (cfg.get("callbacks") or {}).items():
        if isinstance(node, DictConfig) and str(node.get("_target_", "")).endswith(".GeneratorMetrics"):
            ppl = OmegaConf.to_container(node.get("ppl") or {}, resolve=True)
            settings = {"num_gen": node.get("num_gen", 50000), "num_real": node.get("num_real"), "ppl": ppl}
            try:  # names are checked even when the callback is off, before anything is written
                protocols = parse_metrics(list(node.get("metrics") or []), f"callbacks.{name}.metrics", settings)
            except ValueError as e:
                raise ConfigError(str(e)) from None
            if float(node.get("every_kimg") or 0) > 0:
                keys += result_keys(protocols, bool(node.get("intra_fid", False)))
    try:
        keys += list(hydra.utils.get_class(str(cfg.model._target_)).validation_metrics)
    except (AttributeError, ImportError, HydraException):
        pass
    return keys


def check_optimized_metric(cfg: DictConfig) -> None:
    """Refuse unknown metric names and an ``optimized_metric`` the run does not compute (before anything is written)."""
    keys = metric_keys(cfg)
    metric = cfg.get("optimized_metric")
    if metric and metric not in keys:
        hint = (
            f"this run computes {', '.join(keys)}"
            if keys
            else "this run computes no metric; enable one, e.g. callbacks=[default,metrics] "
            f"callbacks.metrics.metrics=[{metric}] callbacks.metrics.every_kimg=50"
        )
        raise ConfigError(f"optimized_metric={metric!r} is not computed by this run: {hint}")


def _tracking_info(cfg: DictConfig) -> tuple[str, dict[str, str]]:
    """The dashboard name and tags of this run: task, run name, user tags, sweep name and job number,
    and for an Optuna trial the study's name and the trial number."""
    tags = {"task": str(cfg.task_name), "run_name": str(cfg.run_name)}
    for t in cfg.get("tags") or []:
        tags[f"tag.{t}"] = "true"
    name = str(cfg.run_name)
    job = sweep_job()
    if job is not None:
        tags["sweep"], tags["sweep_job"] = job[0], str(job[1])
        name = f"{job[0]}/{job[1]}"
    trial = cfg.get("optuna_trial")
    if trial is not None:
        tags["optuna_trial"] = str(trial)
        study = optuna_study_name()
        if study is not None:
            tags["optuna_study"] = study
    return name, tags


def _slurm_requeued() -> bool:
    """True in a SLURM job that was requeued (SLURM sets ``SLURM_RESTART_COUNT`` >= 1)."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT", "0")) > 0
    except ValueError:
        return False


def train(cfg: DictConfig) -> dict:
    """Train from a composed config; return the final logged metrics as floats."""
    init, init_notes = None, []
    run_dir = Path(cfg.paths.run_dir)
    if sweep_job() is not None:
        done = _finished(cfg, run_dir)
        if done is not None:
            log.info(
                "%s: already finished (iteration %s, %s); skipping this job",
                run_dir,
                done.get("iteration"),
                run_dir / DONE_FILE,
            )
            return {k: float(v) for k, v in (done.get("metrics") or {}).items()}
    if cfg.get("ckpt_path") is None and _slurm_requeued():
        # A requeued SLURM job reruns its original command: continue this run instead of refusing it.
        with open_dict(cfg):
            cfg.ckpt_path = "last"
        log.info("SLURM requeue (SLURM_RESTART_COUNT=%s): ckpt_path=last", os.environ["SLURM_RESTART_COUNT"])
    check_required(cfg)
    if cfg.get("optuna_trial") is not None and limits_from_config(cfg.trainer).unlimited:
        raise ConfigError("an Optuna trial needs a length: set trainer.max_kimg or trainer.max_steps")
    if cfg.get("ckpt_init"):
        try:
            init = read_init_checkpoint(cfg.ckpt_init)
            init_notes = apply_init_architecture(cfg, init)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    try:
        validate(cfg)
        check_optimized_metric(cfg)
        ckpt_path = resolve_ckpt_path(cfg, start_if_missing=sweep_job() is not None or "SLURM_JOB_ID" in os.environ)
        changes = _check_resume(cfg, run_dir) if ckpt_path is not None else None
        OmegaConf.to_container(cfg.data, resolve=True, throw_on_missing=True)
    except (MissingMandatoryValue, InterpolationToMissingValueError) as e:
        found = re.search(r"Missing mandatory value: ([\w.]+)", str(e))
        key = found.group(1) if found else e.full_key
        raise ConfigError(f"{key} is required (e.g. {key}=/path/to/data)") from None
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("cpu_malloc_cache", True):
        keep_freed_cpu_memory()
    try:
        datamodule = hydra.utils.instantiate(cfg.data)
        model = hydra.utils.instantiate(cfg.model)
        check_model_data(model, datamodule)
        if init is not None and ckpt_path is None:  # a resume restores its own weights
            init_notes += load_init_weights(model, init)
        # Pretrained parts a model needs for training (ChromaGAN's VGG-16 trunk and teacher), loaded
        # here so that a missing weights file stops the launch before the run folder exists.
        fit_notes = model.prepare_fit(datamodule, resuming=ckpt_path is not None)
        # Loggers write nothing when built (their runs start at the first log), so a bad logger
        # value is reported here, before the run folder exists.
        loggers = _instantiate_group(cfg.get("logger"))
    except InstantiationException as e:
        cause = e.__cause__ if e.__cause__ is not None else e
        raise ConfigError(str(cause)) from None
    except (ValueError, MissingWeightsError) as e:  # dataset built (channels, resolution, files), weights
        raise ConfigError(str(e)) from None

    model.run_config = _plain_config(cfg)  # recorded in every checkpoint (resume without the run folder)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_run_config(cfg, run_dir, changes)
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)

    for note in fit_notes:
        log.info("model: %s", note)
    for key, (before, now) in (changes or {}).items():
        log.info("resume: %s: %r -> %r", key, before, now)
    if init is not None:
        log.info("ckpt_init %s%s", cfg.ckpt_init, "" if ckpt_path is None else " (architecture only: resuming)")
        for note in init_notes:
            log.info("ckpt_init: %s", note)
    try:
        callbacks = _instantiate_group(cfg.get("callbacks"))
        limits = limits_from_config(cfg.trainer)  # trainer.max_steps or trainer.max_kimg (validated)
        callbacks.append(StopAtIteration(limits))
        plugins = [AtomicCheckpointIO()]
        if cfg.trainer.get("sync_batchnorm"):  # BatchNorm over all ranks on every backend, CPU/gloo included
            plugins.append(SyncBatchNormPlugin())
        trainer: pl.Trainer = hydra.utils.instantiate(
            lightning_trainer_config(cfg.trainer),
            max_steps=-1,
            callbacks=callbacks,
            logger=loggers or False,
            plugins=plugins,
            default_root_dir=str(run_dir),
        )
        name, tags = _tracking_info(cfg)
        for lg in loggers:
            if hasattr(lg, "set_run_info"):  # gamut's own loggers: dashboard name and sweep tags
                lg.set_run_info(name, tags)
            lg.log_hyperparams(_plain_config(cfg))
        if ckpt_path:
            log.info("resuming %s from %s", cfg.run_name, ckpt_path)
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        except Exception as e:
            if is_pruned(e):  # the dashboard tells a pruned trial from a failed one (both runs end FAILED)
                for lg in loggers:
                    if hasattr(lg, "set_run_info"):
                        lg.set_run_info(name, {"optuna_pruned": "true"})
            raise
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        at_end = limits.unlimited or reached(limits, model.iteration, model.cur_nimg)
        if trainer.state.status == TrainerStatus.FINISHED and at_end and trainer.is_global_zero:
            _write_done(run_dir, model, metrics)
        log.info("run folder: %s", run_dir)
        return metrics
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _check_resume(cfg: DictConfig, run_dir: Path) -> dict | None:
    """Refuse a resume that changes the model or the data's shape; return what else changed."""
    source = find_source(cfg.ckpt_path, run_dir)
    first = source.config() if source is not None else None
    if first is None:
        return None
    check_frozen(first, cfg, source.run_dir or source.checkpoint)
    return changed_keys(first, cfg)


def resume_config(cfg: DictConfig) -> DictConfig:
    """For a resume launched from the command line: the first launch's overrides, then today's.

    The run folder's ``.hydra/overrides.yaml`` holds the first launch's command line; composing it
    with today's overrides laid over it (src/utils/resume.py) gives the config the run was launched
    with plus what was asked now. Without that file (a checkpoint that travelled alone, a run
    launched from Python), the config is today's and :func:`_check_resume` guards the model's keys.
    """
    if not HydraConfig.initialized() or cfg.get("ckpt_path") is None:
        return cfg
    source = find_source(cfg.ckpt_path, Path(cfg.paths.run_dir))
    first = source.overrides() if source is not None else None
    if first is None:
        return cfg
    now = list(HydraConfig.get().overrides.task)
    merged = merge_overrides(first, now)
    if merged == now:
        return cfg
    log.info("resume: composing the run's own overrides %s with today's %s", first, now)
    try:
        return hydra.compose(config_name="train", overrides=merged)
    except HydraException as e:
        raise ConfigError(
            f"{source.overrides_file}: the run's overrides no longer compose with today's ({str(e).splitlines()[0]})"
        ) from None


def _write_done(run_dir: Path, model, metrics: dict) -> None:
    """Mark the run finished (atomically, as the last file written); drop a stale ``failed``."""
    record = {
        "iteration": int(model.iteration),
        "kimg": float(model.kimg),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "metrics": metrics,
    }
    (run_dir / FAILED_FILE).unlink(missing_ok=True)
    atomic_write(run_dir / DONE_FILE, lambda f: f.write(json.dumps(record, indent=1)), mode="w")


def _write_pruned(run_dir: Path, error: BaseException) -> None:
    """Mark an Optuna trial stopped by the pruner: the sweeper reads this as PRUNED, not failed."""
    atomic_write(run_dir / PRUNED_FILE, lambda f: f.write(f"{error}\n"), mode="w")


def _write_failed(run_dir: Path, error: BaseException) -> None:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    body = f"{type(error).__name__}: {error}\noverrides: {' '.join(overrides)}\n\n{text}"
    atomic_write(run_dir / FAILED_FILE, lambda f: f.write(body), mode="w")


class SweepReport(HydraCallback):
    """Hydra callback: after a multirun, list the jobs that failed and exit with status 1.

    Each job records its outcome in its own folder (``done`` / ``failed``), so this works for
    every launcher, including those that run jobs in other processes (joblib) or machines (SLURM).
    An Optuna search counts only the trials of this launch (earlier launches' folders stay), and a
    trial the pruner stopped (``pruned``) is not a failure.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = (
            sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
            if sweep_dir.is_dir()
            else []
        )
        trials = optuna_launch(config)
        if trials is not None:
            jobs = [p for p in jobs if int(p.name) in trials]
        failed = [p for p in jobs if (p / FAILED_FILE).is_file()]
        if not failed:
            return
        lines = [f"gamut: sweep {sweep_dir.name}: {len(failed)} of {len(jobs)} job(s) failed:"]
        for p in failed:
            first = (p / FAILED_FILE).read_text().splitlines()
            lines.append(f"  job {p.name}: {first[0] if first else '?'}  ({p / FAILED_FILE})")
        if trials is None:
            lines.append("fix them and re-launch the same command with ckpt_path=last: finished jobs are skipped")
        else:
            lines.append("they count as failed trials of the study; the same command again runs new trials")
        print("\n".join(lines), file=sys.stderr, flush=True)
        raise SystemExit(1)


def _remove_if_empty(path: Path, stop: Path) -> None:
    """Remove ``path`` and its parents up to ``stop`` while they are empty (what Hydra created)."""
    path, stop = path.resolve(), stop.resolve()
    while path != stop and stop in path.parents:
        try:
            path.rmdir()  # only succeeds when empty: never deletes anything a previous run wrote
        except OSError:
            return
        path = path.parent


@hydra.main(version_base="1.3", config_path="../conf", config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    job = sweep_job()
    if job is not None:
        ddp_launch.install()  # DDP ranks of a sweep job run that job, not the sweep (src/utils/ddp_launch.py)
    try:
        with ddp_launch.job_environment():
            metrics = train(resume_config(cfg))
    except ConfigError as e:
        if job is None:
            _remove_if_empty(Path(cfg.paths.run_dir), Path(cfg.paths.log_dir))
            print(f"gamut: invalid config: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        print(f"gamut: sweep job {job[1]}: invalid config: {e}", file=sys.stderr, flush=True)
        _write_failed(Path(cfg.paths.run_dir), e)
        return None  # the launcher goes on; SweepReport reports it and sets the exit status
    except Exception as e:  # noqa: BLE001 - one failed job must not stop the sweep
        if job is None:
            raise
        if is_pruned(e):  # not a failure: the pruner stopped this trial
            log.info("sweep job %d: %s", job[1], e)
            _write_pruned(Path(cfg.paths.run_dir), e)
            return None
        log.exception("sweep job %d failed", job[1])
        _write_failed(Path(cfg.paths.run_dir), e)
        return None
    metric = cfg.get("optimized_metric")
    return metrics.get(metric) if metric else None


if __name__ == "__main__":
    main()
