"""A Hydra app with a trivial task for tests/test_optuna_sweep.py: drives gamut's Optuna sweeper
(src/conf/hydra/sweeper/optuna.yaml) through the basic launcher without training anything.

The job returns ``(x - 0.3) ** 2 + n``; ``script[optuna_trial % len(script)]`` says how trial
``optuna_trial`` ends: ``ok`` (that value), ``none`` (returns None), ``nonfinite`` (returns NaN),
``raise``, ``marker`` (writes a ``pruned`` file into its folder, as src/train.py does) or ``report``
(reports the trial number as the value at steps 0, 1, 2 through src.sweeps.optuna.report, which
raises optuna.TrialPruned when the pruner says so). Each job writes what it saw to ``<job dir>/job.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="optuna_task_conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    folder = Path(HydraConfig.get().runtime.output_dir)
    trial = cfg.optuna_trial
    how = cfg.script[trial % len(cfg.script)]
    (folder / "job.json").write_text(json.dumps({"trial": trial, "x": cfg.x, "n": cfg.n, "how": how}))
    if how == "none":
        return None
    if how == "nonfinite":
        return float("nan")
    if how == "raise":
        raise RuntimeError(f"trial {trial} broke")
    if how == "marker":
        (folder / "pruned").write_text(f"trial {trial} pruned at step 0\n")
        return None
    if how == "report":
        from src.sweeps.optuna import report

        for step in range(3):
            report(trial, float(trial), step)
    return (cfg.x - 0.3) ** 2 + cfg.n


if __name__ == "__main__":
    main()
