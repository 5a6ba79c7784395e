"""Evaluate a checkpoint: ``python -m src.eval ckpt_path=PATH [metrics=[fid50k_full,pr50k3_full]]``

Its config: src/conf/eval.yaml.

Compose -> validate -> instantiate (module, reals) -> evaluate -> write JSON next to the checkpoint
and report to the run's loggers. Metrics follow NVIDIA's and SEGAN's protocols (src/metrics/).

Reporting goes through the interface training logs with (:class:`~src.loggers.extras.RunLogger`):
the run's ``logger`` node (``<run>/.hydra/config.yaml``) is built again with
:meth:`~src.loggers.extras.RunLogger.reopen` and each logger gets ``metrics/<name>`` at step = the
checkpoint's images seen, as the in-training metrics callback logs them. MLflow, W&B and Neptune add the
results to the run they logged (its status unchanged), CSV writes a version folder ``eval_<time>``,
TensorBoard an event file beside the run's.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import src.utils.resolvers  # noqa: F401  (registers ${gamut.*})
from src.checkpoints.load import load_module
from src.loggers.extras import RunLogger
from src.metrics.protocols import parse_metrics
from src.metrics.suite import MetricSuite, check_weights, flatten, needs_reals
from src.pretrained.weights import MissingWeightsError, allow_downloads
from src.utils.io import atomic_write
from src.utils.run_folder import CONFIG_FILE, HYDRA_DIR, latest_launch_config, run_dir_of
from src.utils.validation import ConfigError, check_model_data

log = logging.getLogger("gamut.eval")
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")


def _plain_dict(node: Any, resolve: bool = True) -> dict[str, Any]:
    """A config node (or None) as a plain dict; {} for anything that is not a mapping."""
    value = OmegaConf.to_container(node, resolve=resolve) if node is not None else {}
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def output_path(cfg: DictConfig, ckpt: Path) -> Path:
    return Path(cfg.output) if cfg.get("output") else ckpt.with_name(f"{ckpt.stem}.metrics.json")


def validate_eval(cfg: DictConfig) -> tuple[Path, list]:
    """Check the keys and files before anything is loaded; ``ConfigError`` names the key."""
    try:
        ckpt = cfg.ckpt_path
    except OmegaConfBaseException:
        raise ConfigError(
            "ckpt_path is required (e.g. ckpt_path=logs/quickstart/<run>/checkpoints/last.ckpt)"
        ) from None
    if ckpt is None or not Path(str(ckpt)).is_file():
        raise ConfigError(f"ckpt_path={ckpt!r}: no such checkpoint file")
    try:
        metrics = parse_metrics(list(cfg.metrics) if not isinstance(cfg.metrics, str) else cfg.metrics)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    for key in ("num_gen", "batch_size", "ppl.num_samples", "ppl.batch_size"):
        value = OmegaConf.select(cfg, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key}={value!r}: expected a positive integer")
    if cfg.num_real is not None and (not isinstance(cfg.num_real, int) or cfg.num_real < 2):
        raise ConfigError(f"num_real={cfg.num_real!r}: expected an integer >= 2, or null for the whole data set")
    if cfg.noise_mode not in ("random", "const", "none"):
        raise ConfigError(f"noise_mode={cfg.noise_mode!r}: allowed values are random, const, none")
    if cfg.get("mirror") not in (None, True, False):
        raise ConfigError(f"mirror={cfg.mirror!r}: expected true, false or null (null: the data's xflip)")
    return Path(str(ckpt)), metrics


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r}: expected auto, cpu, cuda or cuda:<index>") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r}: CUDA is not available on this machine")
    return device


def run_config(ckpt: Path) -> DictConfig:
    """The training run's composed config, unresolved (``<run>/.hydra/config.yaml``), open for
    changes; empty when the checkpoint has no run folder or the folder no config."""
    run = run_dir_of(ckpt)
    run_cfg_file = None if run is None else run / HYDRA_DIR / CONFIG_FILE
    loaded = OmegaConf.load(run_cfg_file) if run_cfg_file is not None and run_cfg_file.is_file() else None
    base = loaded if isinstance(loaded, DictConfig) else OmegaConf.create()
    OmegaConf.set_struct(base, False)
    return base


def data_config(cfg: DictConfig, ckpt: Path, module) -> DictConfig:
    """The reals' data node: the training run's, with eval's non-null ``data.*`` keys laid over it.

    A ``data`` node with a ``_target_`` (``+data=<name>``) replaces the run's data node. Interpolations
    resolve against the training run's config (its colorspace, seed, paths).
    """
    base = run_config(ckpt)
    cs = module.colorspace
    if "colorspace" not in base:
        base.colorspace = {"name": cs.name, "channels": cs.channels, "input_channels": cs.input_channels}
    if "seed" not in base:
        base.seed = cfg.seed
    if "paths" not in base:
        base.paths = OmegaConf.to_container(cfg.paths)
    given = _plain_dict(cfg.get("data"), resolve=False)
    if "_target_" in given:
        base.data = cfg.data
    else:
        if "data" not in base:
            raise ConfigError(
                f"no data config for the reals: {ckpt} has no run folder with .hydra/config.yaml; "
                "pass one, e.g. +data=folder data.root=/path/to/images data.resolution=64"
            )
        base.data = OmegaConf.merge(base.data, {k: v for k, v in given.items() if v is not None})
    try:
        OmegaConf.to_container(base.data, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as e:
        key = e.full_key or "data"
        raise ConfigError(
            f"{key} is required or invalid for the reals ({type(e).__name__}: "
            f"{str(e).splitlines()[0]}), e.g. data.root=/path/to/data"
        ) from None
    return base


def build_dataset(cfg: DictConfig, ckpt: Path, module):
    """``(dataset, num_workers, mirror)`` of the reals; ``mirror`` is the data's ``xflip`` unless
    ``mirror=true|false`` says otherwise (NVIDIA's ``--mirror``: the reals include their x-flips)."""
    base = data_config(cfg, ckpt, module)
    try:
        datamodule = hydra.utils.instantiate(base.data)
        dataset = datamodule.dataset
    except InstantiationException as e:
        raise ConfigError(str(e.__cause__ or e)) from None
    except ValueError as e:
        raise ConfigError(str(e)) from None
    check_model_data(module, datamodule, checkpoint=True)
    workers = cfg.data.get("num_workers") if cfg.get("data") else None
    mirror = cfg.get("mirror")
    mirror = datamodule.xflip if mirror is None else bool(mirror)
    return dataset, int(workers if workers is not None else base.data.get("num_workers", 0) or 0), mirror


def write_json(path: Path, ckpt: Path, module, results: dict[str, dict]) -> dict:
    """Write (or extend) the JSON record of ``ckpt``; earlier metrics of the same snapshot are kept."""
    record = {
        "checkpoint": str(ckpt.resolve()),
        "module": f"{type(module).__module__}.{type(module).__qualname__}",
        "kimg": module.kimg,
        "iteration": int(module.iteration),
        "colorspace": module.colorspace.name,
        "resolution": list(module.resolution),
        "metrics": {},
    }
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            if old.get("kimg") == record["kimg"] and old.get("iteration") == record["iteration"]:
                record["metrics"].update(old.get("metrics", {}))
        except (OSError, ValueError):
            pass
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    for name, r in results.items():
        record["metrics"][name] = {**r, "evaluated_at": stamp}
    atomic_write(path, lambda f: f.write(json.dumps(record, indent=2) + "\n"), mode="w")
    return record


def _tracking_uri(cfg: DictConfig, run: Path) -> str:
    """The MLflow store of the run: ``mlflow_uri``, else an ``mlflow.db`` up to four folders above the
    run folder (its log dir, wherever the run moved), else ``paths.mlflow_uri``."""
    if cfg.get("mlflow_uri"):
        return str(cfg.mlflow_uri)
    for parent in list(run.parents)[:4]:
        if (parent / "mlflow.db").is_file():
            return f"sqlite:///{(parent / 'mlflow.db').resolve()}"
    return str(cfg.paths.mlflow_uri)


def reopen_loggers(cfg: DictConfig, ckpt: Path) -> list[RunLogger]:
    """The loggers of the checkpoint's run, built again from its ``logger`` node to add results to it
    (:meth:`~src.loggers.extras.RunLogger.reopen`), with ``paths.run_dir`` the run folder the
    checkpoint is in; none without a run folder. A logger that is not a
    :class:`~src.loggers.extras.RunLogger`, cannot be resolved, or has no run to add to is skipped."""
    run = run_dir_of(ckpt)
    if run is None:
        return []
    base = run_config(ckpt)
    # the loggers of the latest launch: a run resumed with another logger reports there
    latest_file = latest_launch_config(run)
    latest = OmegaConf.load(latest_file) if latest_file.is_file() else None
    node = latest.get("logger") if isinstance(latest, DictConfig) else None
    if not node:
        return []
    base.logger = node
    if "paths" not in base:
        base.paths = {}
    base.paths.run_dir = str(run)  # where the checkpoint is, wherever the run folder moved
    base.paths.mlflow_uri = _tracking_uri(cfg, run)
    loggers: list[RunLogger] = []
    for name, entry in base.logger.items():
        if entry is None or "_target_" not in entry:
            continue
        try:
            options = _plain_dict(entry)
        except OmegaConfBaseException as e:
            log.warning("logger.%s: cannot be resolved for the results (%s); not reported there", name, e)
            continue
        target = str(options.pop("_target_"))
        cls = hydra.utils.get_class(target)
        if not issubclass(cls, RunLogger):
            log.warning("logger.%s: %s is not a gamut RunLogger; the results are not reported there", name, target)
            continue
        logger = cls.reopen(**options)
        if logger is None:
            log.info("logger.%s: the run has no %s run to add the results to", name, name)
            continue
        loggers.append(logger)
    return loggers


def report(loggers: list[RunLogger], module, flat: dict[str, float]) -> list[str]:
    """Log ``metrics/<name>`` at step = images seen to each logger and close it; what each reported to."""
    metrics = {f"metrics/{k}": float(v) for k, v in flat.items()}
    done = []
    for logger in loggers:
        logger.log_metrics(metrics, step=int(module.cur_nimg))
        logger.finalize("success")
        done.append(f"{type(logger).__name__} {logger.version}")
    return done


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate ``cfg.ckpt_path``; return the flat results (also written to JSON and the run's loggers)."""
    ckpt, metrics = validate_eval(cfg)
    pr = _plain_dict(cfg.get("pr"), resolve=False)
    try:
        allow_downloads(cfg.paths.get("download_weights", True))  # Inception/VGG fetched on first use, or not
        suite = MetricSuite(
            metrics,
            cfg.paths.weights_dir,
            cfg.paths.get("cache_dir"),
            num_gen=cfg.num_gen,
            num_real=cfg.num_real,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            noise_mode=cfg.noise_mode,
            kid=_plain_dict(cfg.kid, resolve=False),
            ppl=_plain_dict(cfg.ppl, resolve=False),
            pr=pr,
            intra_fid=bool(cfg.get("intra_fid", False)),
        )
        check_weights(metrics, cfg.paths.weights_dir)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    device = pick_device(str(cfg.device))
    try:
        module = load_module(ckpt, device)
        suite.check_module(module)  # e.g. the equivariance metrics on a generator without an input transform
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(str(e)) from None
    dataset, mirror = None, False
    if needs_reals(metrics):
        dataset, suite.num_workers, mirror = build_dataset(cfg, ckpt, module)
    log.info("evaluating %s (kimg %.3f) on %s: %s", ckpt, module.kimg, device, ", ".join(suite.metrics))
    results = suite.run(module, dataset, mirror=mirror)
    flat = flatten(results)
    out = output_path(cfg, ckpt)
    write_json(out, ckpt, module, results)
    reported = report(reopen_loggers(cfg, ckpt), module, flat)
    for k, v in flat.items():
        log.info("%s = %.6g", k, v)
    log.info("results written to %s%s", out, f" and reported to {', '.join(reported)}" if reported else "")
    return flat


@hydra.main(version_base="1.3", config_path="conf", config_name="eval.yaml")
def main(cfg: DictConfig) -> float | None:
    try:
        flat = evaluate(cfg)
    except ConfigError as e:
        print(f"gamut: invalid config: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except (MissingWeightsError, ModuleNotFoundError) as e:  # a pretrained file or torch-fidelity is missing
        print(f"gamut: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    first = next(iter(flat.values()), None)
    return first


if __name__ == "__main__":
    main()
