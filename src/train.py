"""Train a model: ``python -m src.train [overrides]`` (Hydra; see conf/train.yaml).

Compose -> validate -> instantiate -> fit. Nothing is written to the run folder before the
config has been validated and the model and data have been built.
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

import src.utils.resolvers  # noqa: F401  (registers ${gamut.*})
from src.callbacks.limits import StopAtIteration
from src.metrics.weights import MissingWeightsError
from src.utils.checkpoint_io import AtomicCheckpointIO
from src.utils.checkpoints import apply_init_architecture, load_init_weights, read_init_checkpoint
from src.utils.io import atomic_write
from src.utils.validation import ConfigError, check_model_data, check_required, resolve_ckpt_path, validate

log = logging.getLogger("gamut.train")
log.setLevel(logging.INFO)  # train.log gets gamut's notes even when the root logger is quieter
# Lightning 2.6.6 calls a torch.utils._pytree API that torch 2.15 deprecates; harmless.
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")


def _instantiate_group(node: DictConfig | None) -> list:
    return [hydra.utils.instantiate(c) for c in (node or {}).values() if c is not None and "_target_" in c]


def _write_run_config(cfg: DictConfig, run_dir: Path) -> None:
    """Write the composed config (and Hydra's, when launched by Hydra) under ``.hydra/``.

    A resumed launch keeps the first launch's files and adds ``.hydra/resume-<k>/``.
    """
    out = run_dir / ".hydra"
    if (out / "config.yaml").exists():
        k = 1
        while (out / f"resume-{k}").exists():
            k += 1
        out = out / f"resume-{k}"
    atomic_write(out / "config.yaml", lambda f: f.write(OmegaConf.to_yaml(cfg)), mode="w")
    if HydraConfig.initialized():
        hc = HydraConfig.get()
        atomic_write(out / "overrides.yaml", lambda f: f.write(OmegaConf.to_yaml(list(hc.overrides.task))), mode="w")


def _plain_config(cfg: DictConfig) -> dict:
    """The composed config as plain, resolved containers (loggers flatten it into params)."""
    return OmegaConf.to_container(cfg, resolve=True)


def train(cfg: DictConfig) -> dict:
    """Train from a composed config; return the final logged metrics as floats."""
    init, init_notes = None, []
    check_required(cfg)
    if cfg.get("ckpt_init"):
        try:
            init = read_init_checkpoint(cfg.ckpt_init)
            init_notes = apply_init_architecture(cfg, init)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    try:
        validate(cfg)
        ckpt_path = resolve_ckpt_path(cfg)
        OmegaConf.to_container(cfg.data, resolve=True, throw_on_missing=True)
    except (MissingMandatoryValue, InterpolationToMissingValueError) as e:
        found = re.search(r"Missing mandatory value: ([\w.]+)", str(e))
        key = found.group(1) if found else e.full_key
        raise ConfigError(f"{key} is required (e.g. {key}=/path/to/data)") from None
    pl.seed_everything(cfg.seed, workers=True)
    try:
        datamodule = hydra.utils.instantiate(cfg.data)
        model = hydra.utils.instantiate(cfg.model)
        check_model_data(model, datamodule)
        if init is not None and ckpt_path is None:  # a resume restores its own weights
            init_notes += load_init_weights(model, init)
        # Pretrained parts a model needs for training (ChromaGAN's VGG-16 trunk and teacher), loaded
        # here so that a missing weights file stops the launch before the run folder exists.
        prepare = getattr(model, "prepare_fit", None)
        fit_notes = prepare(datamodule, resuming=ckpt_path is not None) if callable(prepare) else []
    except InstantiationException as e:
        cause = e.__cause__ if e.__cause__ is not None else e
        raise ConfigError(str(cause)) from None
    except (ValueError, MissingWeightsError) as e:  # dataset built (channels, resolution, files), weights
        raise ConfigError(str(e)) from None

    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_run_config(cfg, run_dir)
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)

    for note in fit_notes:
        log.info("model: %s", note)
    if init is not None:
        log.info("ckpt_init %s%s", cfg.ckpt_init, "" if ckpt_path is None else " (architecture only: resuming)")
        for note in init_notes:
            log.info("ckpt_init: %s", note)
    try:
        callbacks = _instantiate_group(cfg.get("callbacks"))
        callbacks.append(StopAtIteration(int(cfg.trainer.max_steps)))
        loggers = _instantiate_group(cfg.get("logger"))
        trainer: pl.Trainer = hydra.utils.instantiate(
            cfg.trainer, max_steps=-1, callbacks=callbacks, logger=loggers or False,
            plugins=[AtomicCheckpointIO()], default_root_dir=str(run_dir))
        for lg in loggers:
            lg.log_hyperparams(_plain_config(cfg))
        if ckpt_path:
            log.info("resuming %s from %s", cfg.run_name, ckpt_path)
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        log.info("run folder: %s", run_dir)
        return metrics
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


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
    try:
        metrics = train(cfg)
    except ConfigError as e:
        _remove_if_empty(Path(cfg.paths.run_dir), Path(cfg.paths.log_dir))
        print(f"gamut: invalid config: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    metric = cfg.get("optimized_metric")
    return metrics.get(metric) if metric else None


if __name__ == "__main__":
    main()
