"""Metrics of G_ema every ``every_kimg`` during training and at its end (off by default).

Enable with ``callbacks=[default,metrics]`` (src/conf/callbacks/metrics.yaml; add ``traversal`` etc. to
the list as needed) and set ``callbacks.metrics.every_kimg`` and ``callbacks.metrics.metrics``
(e.g. ``[fid10k_full]``; names in :mod:`src.metrics.protocols`, any kind registered in
:mod:`src.metrics.registry` included). Each evaluation goes

* to every logger as ``metrics/<key>`` at step = images seen (the x-axis of the losses), with its
  duration as ``progress/metrics_sec``;
* to ``trainer.callback_metrics`` under the bare key (``fid10k_full``), so ``src.train`` returns
  the last measured value as ``optimized_metric`` to a Hydra sweeper;
* to ``<run>/metrics.jsonl``, one line per evaluation with each metric's protocol;
* to the Optuna trial of a ``hparams_search`` sweep (``optuna_trial``), which may prune the run.

The evaluation runs under its own RNG state, so training's random stream (and exact resume) is
unaffected. Under DDP each rank generates its share; torchmetrics gathers the features.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.callbacks import Callback

from src.callbacks.checkpoint import crossed
from src.metrics.suite import MetricSuite, check_weights, flatten
from src.utils.io import atomic_write

log = logging.getLogger(__name__)


def data_mirror(trainer) -> bool:
    """Whether the training data is x-flipped (``data.xflip``): the metrics' reals then include the flips."""
    from src.datamodules.image_datamodule import ImageDataModule  # (lead: may move to the module's imports)

    datamodule = trainer.datamodule
    return isinstance(datamodule, ImageDataModule) and datamodule.xflip


class GeneratorMetrics(Callback):
    """Evaluates :class:`~src.metrics.suite.MetricSuite` every ``every_kimg`` (0: never) and, with
    ``at_end``, once more when training ends (unless the last evaluation was at that point).

    ``dirpath``: the folder of ``metrics.jsonl`` (None: none written). ``optimized_metric``: the key
    a sweep optimises, reported to the trial when this suite computes it (``src.train`` checks the
    key at start-up against every source, this callback and the family's validation metrics).
    ``optuna_trial``: the trial number set by the Optuna sweeper (None outside a search). Every other
    keyword is the suite's (``metrics``, ``weights_dir``, ``cache_dir``, ``num_gen``, ``num_real``,
    ``batch_size``, ``seed``, ``noise_mode``, ``kid``, ``ppl``, ``pr``, ``intra_fid``), set in
    src/conf/callbacks/metrics.yaml as src/conf/eval.yaml sets them.
    """

    def __init__(
        self,
        every_kimg: float = 0,
        dirpath: str | None = None,
        at_end: bool = True,
        optimized_metric: str | None = None,
        optuna_trial: int | None = None,
        **suite_options: Any,
    ) -> None:
        self.every_kimg = float(every_kimg or 0)
        self.dirpath = None if dirpath is None else Path(dirpath)
        self.at_end = bool(at_end)
        suite_options["metrics"] = list(suite_options.get("metrics", ()))
        self.suite = MetricSuite(**suite_options)
        self.optimized_metric = optimized_metric or None
        self.optuna_trial = optuna_trial
        self.last: dict[str, float] = {}
        self.last_nimg: int | None = None

    @property
    def active(self) -> bool:
        return self.every_kimg > 0

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.active:  # a missing weights file or a metric the model cannot take stops the run now
            check_weights(self.suite.metrics, self.suite.weights_dir)
            self.suite.check_module(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = batch["image"].shape[0] * trainer.world_size
        if self.active and crossed(pl_module.cur_nimg, step, self.every_kimg * 1000):
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.active and self.at_end and self.last_nimg != int(pl_module.cur_nimg):
            self.evaluate(trainer, pl_module, report=False)

    def evaluate(self, trainer, pl_module, report: bool = True) -> dict[str, float]:
        """Run the suite now; ``report``: also hand the optimised value to the Optuna trial (which may
        stop the run by raising ``optuna.TrialPruned``)."""
        start = time.perf_counter()
        needs = any(p.needs_reals for p in self.suite.protocols)
        results = self.suite.run(
            pl_module,
            trainer.datamodule.dataset if needs else None,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            is_global_zero=trainer.is_global_zero,
            mirror=data_mirror(trainer),
        )
        took = time.perf_counter() - start
        self.last = flatten(results)
        self.last_nimg = int(pl_module.cur_nimg)
        for k, v in self.last.items():  # every rank: the values are gathered, so they agree
            trainer.callback_metrics[k] = torch.tensor(v)
        if trainer.is_global_zero:
            step = int(pl_module.cur_nimg)
            values = {**{f"metrics/{k}": v for k, v in self.last.items()}, "progress/metrics_sec": took}
            for lg in trainer.loggers:
                lg.log_metrics(values, step=step)
            if self.dirpath is not None:
                self._append(self.dirpath / "metrics.jsonl", pl_module, results)
            log.info(
                "kimg %.3f: %s (metrics took %.1f s)",
                pl_module.kimg,
                ", ".join(f"{k} {v:.4g}" for k, v in self.last.items()),
                took,
            )
        key = self.optimized_metric
        if report and self.optuna_trial is not None and key is not None and key in self.last:
            self._report(trainer, pl_module, self.last[key])
        return self.last

    def _report(self, trainer, pl_module, value: float) -> None:
        """Rank 0 reports ``value`` (the optimized metric) to the trial; every rank stops together if pruned."""
        from src.sweeps.optuna import is_pruned, report

        verdict = None
        if trainer.is_global_zero:
            try:
                report(self.optuna_trial, value, int(pl_module.cur_nimg))
            except Exception as e:
                if not is_pruned(e):
                    raise
                verdict = (e, str(e))
        message = trainer.strategy.broadcast(None if verdict is None else verdict[1], src=0)
        if message is not None:
            if verdict is not None:
                raise verdict[0]
            import optuna

            raise optuna.TrialPruned(message)

    def _append(self, path: Path, pl_module, results: dict[str, dict]) -> None:
        old = path.read_text() if path.is_file() else ""
        line = json.dumps({"kimg": pl_module.kimg, "iteration": pl_module.iteration, "metrics": results})
        atomic_write(path, lambda f: f.write(old + line + "\n"), mode="w")
