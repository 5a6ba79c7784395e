"""More than one process, the ways users start them (CPU, gloo):

- two "nodes" of one process each on this machine's loopback, started by ``torchrun --nnodes 2`` as
  on a cluster, train like one process with twice the batch;
- a Hydra multirun (``-m``) of ``trainer=ddp`` jobs with 2 processes per job: every job trains once,
  with both ranks, in its own folder; no rank starts the sweep again (src/utils/ddp_launch.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from src.train import train
from tests.browser import free_port
from tests.conftest import TINY, compose_cfg
from tests.test_ddp import FAMILIES, STEPS

ROOT = Path(__file__).resolve().parents[1]
DUMP = ["+callbacks.dump._target_=tests.test_ddp.DumpRankState"]


def _env(log_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK")}
    return {**env, "GAMUT_LOG_DIR": str(log_dir), "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_two_nodes_on_loopback_train_like_one_process_with_twice_the_batch(tmp_path, log_dir):
    common = [
        *[o for o in TINY if not o.startswith("data.batch_size")],
        *FAMILIES["stylegan2"],
        f"trainer.max_steps={STEPS}",
    ]
    port = free_port()
    dump = tmp_path / "ranks"
    procs = []
    for node in (0, 1):
        cmd = [
            sys.executable, "-m", "torch.distributed.run",
            "--nnodes=2", "--nproc_per_node=1", f"--node_rank={node}",
            "--master_addr=127.0.0.1", f"--master_port={port}",
            "-m", "src.train", *common, "data.batch_size=4",
            "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.num_nodes=2",
            "logger=none", "run_name=nodes", *DUMP, f"+callbacks.dump.dirpath={dump}",
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(cmd, cwd=ROOT, env=_env(log_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    outputs = [p.communicate(timeout=300)[0].decode(errors="replace") for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-4000:]
    r0 = torch.load(dump / "rank0.pt", weights_only=True)
    r1 = torch.load(dump / "rank1.pt", weights_only=True)
    state = torch.load(log_dir / "quickstart" / "nodes" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["gamut"]["cur_nimg"] == 8 * STEPS  # both nodes' images counted: a global batch of 8

    train(compose_cfg([*common, "data.batch_size=8", "logger=none", "run_name=single"]))
    single = torch.load(log_dir / "quickstart" / "single" / "checkpoints" / "last.ckpt", weights_only=True)[
        "state_dict"
    ]
    trained = [k for k in r0 if k.startswith(("G.", "D.", "G_ema.")) and r0[k].is_floating_point()]
    compared = [k for k in trained if not k.endswith("w_avg")] + ["pl_mean"]
    for k in compared:
        assert torch.equal(r0[k], r1[k]), f"nodes differ in {k}"
    worst = max(((single[k] - r0[k]).abs() / (1 + single[k].abs())).max().item() for k in compared)
    print(f"max |param(2 nodes x 4) - param(1 x 8)| / (1 + |param|) after {STEPS} iterations: {worst:.3g}")
    assert worst < 1e-6


@pytest.mark.slow
def test_multirun_of_ddp_jobs_runs_each_job_once_with_both_ranks(tmp_path, log_dir):
    cmd = [
        sys.executable, "-m", "src.train", "-m",
        *TINY, *FAMILIES["stylegan2"], "trainer.max_steps=2",
        "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
        "logger=none", "run_name=sweep", "model.optim.g_lr=0.001,0.004",
        *DUMP, "+callbacks.dump.dirpath=${paths.run_dir}/dump",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(log_dir), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    # Hydra announces a sweep once; a rank that re-ran the command line would start it again (and, with
    # jobs marked done being skipped, train the next job a second time)
    assert (proc.stdout + proc.stderr).count("Launching 2 jobs") == 1
    sweep = log_dir / "quickstart" / "sweep"
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0", "1"]  # no rank started the sweep again (it would add jobs or nested folders)
    finals = []
    for job in jobs:
        folder = sweep / job
        assert (folder / "done").is_file()
        assert sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.isdigit()) == []
        r0 = torch.load(folder / "dump" / "rank0.pt", weights_only=True)
        r1 = torch.load(folder / "dump" / "rank1.pt", weights_only=True)
        assert all(torch.equal(r0[k], r1[k]) for k in r0 if k.startswith("G.synthesis"))  # both ranks, one job
        state = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)
        assert state["gamut"]["cur_nimg"] == 2 * 2 * 4  # 2 iterations of 2 ranks x batch 4
        assert state["hyper_parameters"]["optim"]["g_lr"] == (0.001, 0.004)[int(job)]
        finals.append(r0["G.synthesis.blocks.0.conv1.weight"])
    assert not torch.equal(finals[0], finals[1])  # the jobs trained with their own learning rates
