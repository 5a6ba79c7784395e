"""FID / KID / PPL of G_ema every ``every_kimg`` during training (off by default).

Enable with ``callbacks=[default,metrics]`` (conf/callbacks/metrics.yaml; add ``traversal`` etc. to
the list as needed) and set ``callbacks.metrics.every_kimg``. Values go to every logger as ``metrics/<name>`` at
step = images seen (the x-axis of the losses) and to ``<run>/metrics.jsonl``, one line per
evaluation. The evaluation runs under its own RNG state, so training's random stream (and exact
resume) is unaffected. Under DDP each rank generates its share; torchmetrics gathers the features.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pytorch_lightning.callbacks import Callback

from src.callbacks.checkpoint import crossed
from src.metrics.suite import MetricSuite, check_weights, flatten, needs_reals
from src.utils.io import atomic_write

log = logging.getLogger(__name__)


class GeneratorMetrics(Callback):
    """Evaluates :class:`~src.metrics.suite.MetricSuite` every ``every_kimg`` (0: never); ``dirpath``
    is the folder of ``metrics.jsonl`` (None: none written). Every other keyword is the suite's
    (``metrics``, ``weights_dir``, ``cache_dir``, ``num_gen``, ``num_real``, ``batch_size``, ``seed``,
    ``noise_mode``, ``kid``, ``ppl``), set in conf/callbacks/metrics.yaml as conf/eval.yaml sets them."""

    def __init__(self, every_kimg: float = 0, dirpath: str | None = None, **suite_options: Any) -> None:
        self.every_kimg = float(every_kimg or 0)
        self.dirpath = None if dirpath is None else Path(dirpath)
        suite_options["metrics"] = list(suite_options.get("metrics", ()))
        self.suite = MetricSuite(**suite_options)
        self.last: dict[str, float] = {}

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.every_kimg > 0:  # a missing weights file stops the run now, not hours into it
            check_weights(self.suite.metrics, self.suite.weights_dir)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = batch["image"].shape[0] * trainer.world_size
        if crossed(pl_module.cur_nimg, step, self.every_kimg * 1000):
            self.evaluate(trainer, pl_module)

    def evaluate(self, trainer, pl_module) -> dict[str, float]:
        dataset = trainer.datamodule.dataset if needs_reals(self.suite.metrics) else None
        results = self.suite.run(
            pl_module,
            dataset,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            is_global_zero=trainer.is_global_zero,
        )
        self.last = flatten(results)
        if trainer.is_global_zero:
            step = int(pl_module.cur_nimg)
            for lg in trainer.loggers:
                lg.log_metrics({f"metrics/{k}": v for k, v in self.last.items()}, step=step)
            if self.dirpath is not None:
                self._append(pl_module, results)
            log.info("kimg %.3f: %s", pl_module.kimg, ", ".join(f"{k} {v:.4g}" for k, v in self.last.items()))
        return self.last

    def _append(self, pl_module, results: dict[str, dict]) -> None:
        path = self.dirpath / "metrics.jsonl"
        old = path.read_text() if path.is_file() else ""
        line = json.dumps({"kimg": pl_module.kimg, "iteration": pl_module.iteration, "metrics": results})
        atomic_write(path, lambda f: f.write(old + line + "\n"), mode="w")
