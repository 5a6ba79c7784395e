"""After a multirun: the jobs that failed, listed, and the sweep's exit status.

:class:`SweepReport` is a Hydra callback (``src/conf/hydra/default.yaml``: ``hydra.callbacks.sweep_report``).
It reads the markers each job left in its folder (src/sweeps/jobs.py), so it works for every
launcher, including those that run jobs in other processes (joblib) or machines (SLURM).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig

from src.sweeps.optuna import optuna_launch
from src.utils.run_folder import FAILED_FILE

__all__ = ["SweepReport", "job_folders"]


def job_folders(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep (``<sweep dir>/<job number>``), by job number."""
    if not sweep_dir.is_dir():
        return []
    return sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


class SweepReport(HydraCallback):
    """Hydra callback: after a multirun, list the jobs that failed and exit with status 1.

    Each job records its outcome in its own folder (``done`` / ``failed``). An Optuna search counts
    only the trials of this launch (earlier launches' folders stay), and a trial the pruner stopped
    (``pruned``) is not a failure.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = job_folders(sweep_dir)
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
