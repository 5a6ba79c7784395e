"""What a sweep may optimise: the metrics a run puts in ``trainer.callback_metrics``.

``optimized_metric`` (the value a sweep job returns to its sweeper, e.g. an Optuna search) must be
one of them. :func:`check_optimized_metric` refuses it, before anything is written, when the run
would never compute it. The metrics callback is found by its class (a subclass of
:class:`~src.callbacks.metrics.GeneratorMetrics`), not by its config name.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from src.callbacks.metrics import GeneratorMetrics
from src.metrics.protocols import parse_metrics, result_keys
from src.modules.base import GANModule
from src.utils.validation import ConfigError, target_class

__all__ = ["check_optimized_metric", "metric_keys"]


def _target_class(node: object) -> type | None:
    """The class a config node's ``_target_`` names; None when it has none or it cannot be imported
    (instantiation reports a bad ``_target_`` itself)."""
    if not isinstance(node, DictConfig):
        return None
    return target_class(node.get("_target_"))


def _metrics_callback_keys(name: str, node: DictConfig) -> list[str]:
    """The keys a metrics callback node reports (none when ``every_kimg`` is 0); its metric names are
    checked either way."""
    ppl = node.get("ppl")
    ppl = OmegaConf.to_container(ppl, resolve=True) if isinstance(ppl, DictConfig) else {}
    settings = {"num_gen": node.get("num_gen", 50000), "num_real": node.get("num_real"), "ppl": ppl}
    try:
        protocols = parse_metrics(list(node.get("metrics") or []), f"callbacks.{name}.metrics", settings)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if float(node.get("every_kimg") or 0) <= 0:
        return []
    return result_keys(protocols, bool(node.get("intra_fid", False)))


def metric_keys(cfg: DictConfig) -> list[str]:
    """Every key this run puts in ``trainer.callback_metrics`` that a sweep may optimise: the metrics
    callbacks' results (when they evaluate, ``every_kimg > 0``) and the family's
    :attr:`~src.modules.base.GANModule.validation_metrics`."""
    keys: list[str] = []
    for name, node in (cfg.get("callbacks") or {}).items():
        cls = _target_class(node)
        if cls is not None and issubclass(cls, GeneratorMetrics):
            keys += _metrics_callback_keys(str(name), node)
    model = _target_class(cfg.get("model"))
    if model is not None and issubclass(model, GANModule):
        keys += list(model.validation_metrics)
    return keys


def check_optimized_metric(cfg: DictConfig) -> None:
    """Refuse an ``optimized_metric`` the run does not compute (and unknown metric names)."""
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
