"""Train a model: ``python -m src.train [overrides]`` (Hydra; see src/conf/train.yaml).

Compose -> validate -> instantiate -> fit -> report, one function each below :func:`train`.
Nothing is written to the run folder (src/utils/run_folder.py names its files) before the config
has been validated and the model, data and loggers have been built.

Sweeps (``-m``, src/sweeps/): a job that fails (bad config value, exception) writes
``<job dir>/failed`` and the launcher goes on with the other jobs;
:class:`src.sweeps.report.SweepReport` lists the failed jobs at the end and makes the sweep exit with
status 1. A job that finished writes ``<job dir>/done`` (atomically, last); re-launching the same
sweep (same ``run_name``, same overrides in the same order, so the same job numbers) skips those jobs
and, with ``ckpt_path=last``, resumes the others (src/sweeps/jobs.py).

Optuna searches (``hparams_search=...``, hydra_plugins/gamut_optuna_sweeper): each job is one trial
(``optuna_trial``) and returns ``optimized_metric`` (src/sweeps/objective.py checks that the run
computes it). A trial the pruner stops (``optuna.TrialPruned``, raised by
:func:`src.sweeps.optuna.report`) writes ``<job dir>/pruned`` instead of ``failed``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue
from pytorch_lightning.trainer.states import TrainerStatus

import src.utils.resolvers  # noqa: F401  (registers ${gamut.*})
from src.callbacks.limits import (
    Limits,
    StopAtIteration,
    lightning_trainer_config,
    limits_from_config,
    prefer_named_length,
    reached,
)
from src.checkpoints.io import AtomicCheckpointIO
from src.checkpoints.load import apply_init_architecture, load_init_weights, read_init_checkpoint
from src.loggers.extras import RunLogger
from src.modules.base import GANModule
from src.nn.layer_sync import SyncBatchNormPlugin
from src.pretrained.weights import MissingWeightsError, allow_downloads
from src.sweeps.jobs import finished, sweep_job, tracking_info, write_done, write_failed, write_pruned
from src.sweeps.objective import check_optimized_metric
from src.sweeps.optuna import is_pruned
from src.utils import ddp_launch
from src.utils.faults import RunStopped
from src.utils.io import atomic_write
from src.utils.malloc import keep_freed_cpu_memory
from src.utils.resume import check_resume, first_launch_overrides, resume_config
from src.utils.run_folder import (
    CHANGES_FILE,
    CONFIG_FILE,
    DONE_FILE,
    LOG_FILE,
    OVERRIDES_FILE,
    next_launch_dir,
    remove_if_empty,
)
from src.utils.run_lock import RunLock
from src.utils.validation import ConfigError, check_model_data, check_required, resolve_ckpt_path, validate

log = logging.getLogger("gamut.train")
log.setLevel(logging.INFO)  # train.log gets gamut's notes even when the root logger is quieter
# Lightning 2.6.6 calls a torch.utils._pytree API that torch 2.15 deprecates; harmless.
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")


@dataclass
class Launch:
    """What validation decided about a launch, before anything is built."""

    ckpt_path: str | None  # the checkpoint a resume starts from; None: a fresh run
    changes: dict | None  # a resume's changed keys (``.hydra/resume-<k>/changes.yaml``)
    init: Any = None  # the ``ckpt_init`` checkpoint, read (None without one)
    notes: list[str] = field(default_factory=list)  # what ``ckpt_init`` changed and loaded (train.log)


@dataclass
class Parts:
    """What a run trains: built from the config, checked against each other, nothing written yet."""

    datamodule: pl.LightningDataModule
    model: GANModule
    loggers: list
    notes: list[str]  # the model's notes from ``prepare_fit`` (train.log)


def _instantiate_group(node: DictConfig | None) -> list:
    return [hydra.utils.instantiate(c) for c in (node or {}).values() if c is not None and "_target_" in c]


def _plain_config(cfg: DictConfig) -> dict:
    """The composed config as plain, resolved containers (loggers flatten it into params)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict), "a config is a mapping"
    return plain


def _slurm_requeued() -> bool:
    """True in a SLURM job that was requeued (SLURM sets ``SLURM_RESTART_COUNT`` >= 1)."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT", "0")) > 0
    except ValueError:
        return False


def validated(cfg: DictConfig, limits: Limits) -> Launch:
    """Check the composed config before anything is built or written; ``ConfigError`` names the key.

    Settles the launch: a requeued SLURM job continues its run, ``ckpt_init`` sets the architecture,
    ``ckpt_path`` becomes a file (or None), and a resume is checked against the run's first launch.
    """
    if cfg.get("ckpt_path") is None and _slurm_requeued():
        # A requeued SLURM job reruns its original command: continue this run instead of refusing it.
        with open_dict(cfg):
            cfg.ckpt_path = "last"
        log.info("SLURM requeue (SLURM_RESTART_COUNT=%s): ckpt_path=last", os.environ["SLURM_RESTART_COUNT"])
    check_required(cfg)
    if cfg.get("optuna_trial") is not None and limits.unlimited:
        raise ConfigError("an Optuna trial needs a length: set trainer.max_kimg or trainer.max_steps")
    init, notes = None, []
    if cfg.get("ckpt_init"):
        try:
            init = read_init_checkpoint(cfg.ckpt_init)
            notes = apply_init_architecture(cfg, init)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    try:
        validate(cfg)
        check_optimized_metric(cfg)
        start_if_missing = sweep_job() is not None or "SLURM_JOB_ID" in os.environ
        ckpt_path = resolve_ckpt_path(cfg, start_if_missing=start_if_missing)
        changes = check_resume(cfg, Path(cfg.paths.run_dir)) if ckpt_path is not None else None
        OmegaConf.to_container(cfg.data, resolve=True, throw_on_missing=True)
    except (MissingMandatoryValue, InterpolationToMissingValueError) as e:
        found = re.search(r"Missing mandatory value: ([\w.]+)", str(e))
        key = found.group(1) if found else e.full_key
        raise ConfigError(f"{key} is required (e.g. {key}=/path/to/data)") from None
    return Launch(ckpt_path, changes, init, notes)


def instantiated(cfg: DictConfig, launch: Launch) -> Parts:
    """Build the data, the model and the loggers, and check them against each other.

    Everything that can fail on a bad value (a dataset's files, a missing weights file, a logger's
    settings) fails here, as a ``ConfigError``, before the run folder exists.
    """
    try:
        allow_downloads(cfg.paths.get("download_weights", True))  # pretrained files fetched on first use, or not
        datamodule = hydra.utils.instantiate(cfg.data)
        model = hydra.utils.instantiate(cfg.model)
        check_model_data(model, datamodule)
        if launch.init is not None and launch.ckpt_path is None:  # a resume restores its own weights
            launch.notes += load_init_weights(model, launch.init)
        # Pretrained parts a model needs for training (ChromaGAN's VGG-16 trunk and teacher), loaded
        # here so that a missing weights file stops the launch before the run folder exists.
        notes = model.prepare_fit(datamodule, resuming=launch.ckpt_path is not None)
        # Loggers write nothing when built (their runs start at the first log), so a bad logger
        # value is reported here, before the run folder exists.
        loggers = _instantiate_group(cfg.get("logger"))
    except InstantiationException as e:
        cause = e.__cause__ if e.__cause__ is not None else e
        raise ConfigError(str(cause)) from None
    except (ValueError, MissingWeightsError) as e:  # dataset built (channels, resolution, files), weights
        raise ConfigError(str(e)) from None
    return Parts(datamodule, model, loggers, list(notes))


def _write_run_config(cfg: DictConfig, run_dir: Path, changes: dict | None = None) -> None:
    """Write the composed config and the command-line overrides (when launched by Hydra) under ``.hydra/``.

    A resumed launch keeps the first launch's files (a resume starts from them, src/utils/resume.py)
    and adds ``.hydra/resume-<k>/`` with its own config, overrides and ``changes.yaml``: every key
    whose value differs from the first launch's, as ``key: [first launch, this launch]``.
    """
    out = next_launch_dir(run_dir)
    # Unresolved, as composed: src/eval.py lays data.* overrides over this node and its interpolations
    # (data.dataset.resolution: ${data.resolution}) must follow them. Checkpoints record it resolved.
    atomic_write(out / CONFIG_FILE, lambda f: f.write(OmegaConf.to_yaml(cfg)), mode="w")
    if HydraConfig.initialized():
        hc = HydraConfig.get()
        atomic_write(out / OVERRIDES_FILE, lambda f: f.write(OmegaConf.to_yaml(list(hc.overrides.task))), mode="w")
    if changes is not None:
        atomic_write(out / CHANGES_FILE, lambda f: f.write(OmegaConf.to_yaml(changes)), mode="w")


def _log_launch(cfg: DictConfig, launch: Launch, parts: Parts) -> None:
    """The launch's notes, first lines of train.log: the model's, a resume's changes, ``ckpt_init``'s."""
    for note in parts.notes:
        log.info("model: %s", note)
    for key, (before, now) in (launch.changes or {}).items():
        log.info("resume: %s: %r -> %r", key, before, now)
    if launch.init is not None:
        resuming = launch.ckpt_path is not None
        log.info("ckpt_init %s%s", cfg.ckpt_init, " (architecture only: resuming)" if resuming else "")
        for note in launch.notes:
            log.info("ckpt_init: %s", note)


def train(cfg: DictConfig) -> dict:
    """Train from a composed config; return the final logged metrics as floats."""
    run_dir = Path(cfg.paths.run_dir)
    limits = limits_from_config(cfg.trainer)  # trainer.max_steps or trainer.max_kimg (validated below)
    done = finished(run_dir, limits) if sweep_job() is not None else None
    if done is not None:  # a relaunched sweep skips the jobs that finished
        log.info(
            "%s: already finished (iteration %s, %s); skipping this job",
            run_dir,
            done.get("iteration"),
            run_dir / DONE_FILE,
        )
        return {k: float(v) for k, v in (done.get("metrics") or {}).items()}
    with RunLock(run_dir):  # one writer per run folder; a second launch is refused (src/utils/run_lock.py)
        return _train_holding_the_folder(cfg, run_dir, limits)


def _train_holding_the_folder(cfg: DictConfig, run_dir: Path, limits: Limits) -> dict:
    launch = validated(cfg, limits)
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("cpu_malloc_cache", True):
        keep_freed_cpu_memory()
    parts = instantiated(cfg, launch)
    datamodule, model, loggers, ckpt_path = parts.datamodule, parts.model, parts.loggers, launch.ckpt_path

    # From here on the run folder exists.
    model.run_config = _plain_config(cfg)  # recorded in every checkpoint (resume without the run folder)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_run_config(cfg, run_dir, launch.changes)
    handler = logging.FileHandler(run_dir / LOG_FILE)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)
    _log_launch(cfg, launch, parts)
    try:
        callbacks = _instantiate_group(cfg.get("callbacks"))
        callbacks.append(StopAtIteration(limits))
        plugins: list = [AtomicCheckpointIO()]
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
        name, tags = tracking_info(cfg)
        for lg in loggers:
            if isinstance(lg, RunLogger):  # gamut's loggers: dashboard name and sweep tags
                lg.set_run_info(name, tags)
            lg.log_hyperparams(_plain_config(cfg))
        if ckpt_path:
            log.info("resuming %s from %s", cfg.run_name, ckpt_path)
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        except Exception as e:
            if is_pruned(e):  # the dashboard tells a pruned trial from a failed one (both runs end FAILED)
                for lg in loggers:
                    if isinstance(lg, RunLogger):
                        lg.set_run_info(name, {"optuna_pruned": "true"})
            raise
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        at_end = limits.unlimited or reached(limits, model.iteration, model.cur_nimg)
        if trainer.state.status == TrainerStatus.FINISHED and at_end and trainer.is_global_zero:
            write_done(run_dir, model.iteration, model.kimg, metrics)
        log.info("run folder: %s", run_dir)
        return metrics
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


@hydra.main(version_base="1.3", config_path="conf", config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    job = sweep_job()
    if job is not None:
        ddp_launch.install()  # DDP ranks of a sweep job run that job, not the sweep (src/utils/ddp_launch.py)
    try:
        with ddp_launch.job_environment():
            cfg = resume_config(cfg)
            note = prefer_named_length(cfg, list(HydraConfig.get().overrides.task), first_launch_overrides(cfg))
            if note is not None:
                log.info(note)
            metrics = train(cfg)
    except ConfigError as e:
        if job is None:
            remove_if_empty(Path(cfg.paths.run_dir), Path(cfg.paths.log_dir))  # what Hydra created
            print(f"gamut: invalid config: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        print(f"gamut: sweep job {job[1]}: invalid config: {e}", file=sys.stderr, flush=True)
        write_failed(Path(cfg.paths.run_dir), e)
        return None  # the launcher goes on; SweepReport reports it and sets the exit status
    except RunStopped as e:  # a fault with its own one-line report (src/utils/faults.py)
        print(f"gamut: run stopped: {e}", file=sys.stderr, flush=True)
        if job is None:
            raise SystemExit(1) from None
        write_failed(Path(cfg.paths.run_dir), e)
        return None
    except Exception as e:  # one failed job must not stop the sweep
        if job is None:
            raise
        if is_pruned(e):  # not a failure: the pruner stopped this trial
            log.info("sweep job %d: %s", job[1], e)
            write_pruned(Path(cfg.paths.run_dir), e)
            return None
        log.exception("sweep job %d failed", job[1])
        write_failed(Path(cfg.paths.run_dir), e)
        return None
    metric = cfg.get("optimized_metric")
    return metrics.get(metric) if metric else None


if __name__ == "__main__":
    main()
