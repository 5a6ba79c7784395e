"""DDP jobs inside a Hydra multirun (``python -m src.train -m trainer=ddp ...``).

Lightning's DDP starts ranks 1..N-1 by running the command line again with ``hydra.run.dir`` pinned
(``_hydra_subprocess_cmd`` in lightning_fabric's ``subprocess_script.py``). Under a multirun that
command line still holds ``-m`` and every swept value, so each child would start the whole sweep
again, in the wrong folders (the trap lightning-hydra-template and Lightning's issue tracker report).
Two things fix it:

- :func:`child_command`: in a multirun job, a rank's command is ``python -m src.train`` with *this
  job's* overrides (``hydra.overrides.task``: the swept values it drew included) and
  ``hydra.run.dir`` set to the job's folder, so the children run exactly this job as a plain run
  beside rank 0; outside a multirun, Lightning's own command.
- :func:`job_environment`: Lightning leaves ``LOCAL_RANK``, ``NODE_RANK``, ``WORLD_SIZE``,
  ``MASTER_ADDR`` and ``MASTER_PORT`` set in the launching process, and a second job in the same
  process would then take itself for an externally launched rank and wait for peers that never come.
  Around each job, these variables get their values from before the job back, and the process group
  is destroyed.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

__all__ = ["child_command", "install", "job_environment"]

DDP_ENV = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK", "RANK")


def child_command(local_rank: int) -> tuple[Sequence[str], str]:
    """The command and working folder that start DDP rank ``local_rank`` of this Hydra job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from hydra.utils import get_original_cwd
    from lightning_fabric.strategies.launchers.subprocess_script import _hydra_subprocess_cmd

    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return _hydra_subprocess_cmd(local_rank=local_rank)
    import __main__

    spec = getattr(__main__, "__spec__", None)
    command = [sys.executable, "-m", spec.name] if spec is not None else [sys.executable, os.path.abspath(sys.argv[0])]
    command += list(hc.overrides.task)
    command += [
        f'hydra.run.dir="{hc.runtime.output_dir}"',
        f"hydra.job.name=train_ddp_process_{local_rank}",
        "hydra.output_subdir=null",  # rank 0 writes the job's .hydra/
    ]
    return command, get_original_cwd()


def install() -> None:
    """Make Lightning's DDP launcher start a multirun job's ranks with :func:`child_command`."""
    from pytorch_lightning.strategies.launchers import subprocess_script

    subprocess_script._hydra_subprocess_cmd = child_command


@contextlib.contextmanager
def job_environment() -> Iterator[None]:
    """Run one job; afterwards the DDP variables Lightning set are back to their values from before,
    and the default process group (if the job made one) is destroyed."""
    before = {k: os.environ.get(k) for k in DDP_ENV}
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
