"""A training process killed with SIGKILL mid-run resumes from its last checkpoint with ckpt_path=last."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from src.loggers.neptune import RUN_ID_FILE
from src.train import train
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
COMMON = [
    "callbacks.checkpoint.every_kimg=0.008",
    "callbacks.sample_grid.every_kimg=1",
    "model.loss.r1_interval=2",
    "model.loss.pl_interval=2",
]


# Progress is watched through sample grids (every 2 iterations); the only checkpoint is the one the
# signal handling writes.
NO_PERIODIC_SAVES = ["callbacks.checkpoint.every_kimg=1000", "callbacks.sample_grid.every_kimg=0.008"]


def _iteration(path: Path) -> int:
    return torch.load(path, weights_only=True)["gamut"]["iteration"]


def _start_until(cmd: list[str], env: dict, ready) -> subprocess.Popen:
    """Start training ``cmd`` and return once ``ready()`` is true (it must stay running until then)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while not ready():
            assert proc.poll() is None, "training exited early"
            assert time.time() < deadline, "training made no progress"
            time.sleep(0.05)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_kill_9_then_resume_continues_from_last_checkpoint(tiny_cfg, log_dir, monkeypatch):
    monkeypatch.setenv("NEPTUNE_MODE", "offline")
    rd = log_dir / "quickstart" / "test"
    ckpts = rd / "checkpoints"
    cmd = [
        sys.executable,
        "-m",
        "src.train",
        *TINY,
        *COMMON,
        "logger=[csv,neptune]",
        "run_name=test",
        "trainer.max_steps=100000",
    ]
    proc = _start_until(
        cmd, {**os.environ, "GAMUT_LOG_DIR": str(log_dir)}, lambda: len(list(ckpts.glob("kimg*.ckpt"))) >= 3
    )  # one every 2 iterations
    try:
        os.kill(proc.pid, signal.SIGKILL)  # mid-run: no handler, no final save
        proc.wait(timeout=30)
    finally:
        _stop(proc)
    assert proc.returncode == -signal.SIGKILL
    assert not (rd / "done").exists()

    # every checkpoint on disk loads (atomic writes: a kill mid-save leaves at most a .tmp file)
    files = sorted(ckpts.glob("*.ckpt"))
    states = {p.name: torch.load(p, weights_only=True) for p in files}
    k = states["last.ckpt"]["gamut"]["iteration"]
    # (the kill may land between a kimg snapshot and the last.ckpt written right after it)
    assert k >= 4 and max(s["gamut"]["iteration"] for s in states.values()) in (k, k + 2)
    assert states["last.ckpt"]["gamut"]["cur_nimg"] == 4 * k
    run_id = (rd / RUN_ID_FILE).read_text()

    metrics = train(tiny_cfg(*COMMON, "ckpt_path=last", f"trainer.max_steps={k + 3}", logger="[csv,neptune]"))
    final = torch.load(ckpts / "last.ckpt", weights_only=True)
    assert final["gamut"]["iteration"] == k + 3 and final["gamut"]["cur_nimg"] == 4 * (k + 3)
    assert metrics["progress/kimg"] == pytest.approx(4 * (k + 3) / 1000)
    assert f"from {ckpts / 'last.ckpt'}" in (rd / "train.log").read_text()
    # the resumed launch's first logged step is the one right after the checkpoint
    versions = sorted((rd / "csv").iterdir())
    assert len(versions) == 2
    steps = [int(r["step"]) for r in csv.DictReader((versions[-1] / "metrics.csv").open())]
    assert steps[0] == 4 * (k + 1) and steps[-1] == 4 * (k + 3)
    assert (rd / RUN_ID_FILE).read_text() == run_id  # the Neptune run continues
    for p in ckpts.glob("*.ckpt"):
        torch.load(p, weights_only=True)
    assert (rd / "done").is_file()


@pytest.mark.slow
def test_slurm_requeue_saves_last_then_the_requeued_job_resumes(tiny_cfg, log_dir, tmp_path):
    """SLURM pre-emption as Lightning sees it: SLURM_* variables, SIGUSR1 (``--signal=USR1@90``) and
    ``scontrol requeue`` (a stand-in on PATH that records its call: SLURM itself cannot run here).
    ``last.ckpt`` is saved at the next iteration boundary before the requeue; the requeued job reruns
    the original command (no ckpt_path) with ``SLURM_RESTART_COUNT=1`` and continues the run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "requeued"
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" > {marker}\n')
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {
        "SLURM_NTASKS": "1",
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "gamut",
        "SLURM_NODELIST": "localhost",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
    }
    env = {**os.environ, "GAMUT_LOG_DIR": str(log_dir), "PATH": f"{bin_dir}:{os.environ['PATH']}", **slurm}
    ckpts = log_dir / "quickstart" / "test" / "checkpoints"
    cmd = [
        sys.executable,
        "-m",
        "src.train",
        *TINY,
        *NO_PERIODIC_SAVES,
        "logger=csv",
        "run_name=test",
        "trainer.max_steps=100000",
    ]
    proc = _start_until(cmd, env, lambda: len(list((ckpts.parent / "samples").glob("fakes_kimg*.png"))) >= 3)
    try:
        os.kill(proc.pid, signal.SIGUSR1)
        deadline = time.time() + 120
        while not marker.exists():
            assert time.time() < deadline, "scontrol requeue was never called"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # what SLURM does to the job after requeueing it
        proc.wait(timeout=30)
    finally:
        _stop(proc)
    assert marker.read_text().split() == ["requeue", "4242"]
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt"]  # written at the signal, nowhere else
    k = _iteration(ckpts / "last.ckpt")
    assert k >= 4

    requeued = {**env, "SLURM_RESTART_COUNT": "1"}
    rerun = subprocess.run(
        [*cmd[:-1], f"trainer.max_steps={k + 2}"], cwd=ROOT, env=requeued, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert _iteration(ckpts / "last.ckpt") == k + 2
    assert "SLURM requeue (SLURM_RESTART_COUNT=1): ckpt_path=last" in rerun.stdout + rerun.stderr
    assert f"from {ckpts / 'last.ckpt'}" in (ckpts.parent / "train.log").read_text()


@pytest.mark.slow
def test_sigterm_saves_last_checkpoint_and_exits(log_dir):
    """SIGTERM (a scheduler's stop, ``kill``): training ends at the next iteration boundary with last.ckpt saved."""
    ckpts = log_dir / "quickstart" / "test" / "checkpoints"
    cmd = [
        sys.executable,
        "-m",
        "src.train",
        *TINY,
        *NO_PERIODIC_SAVES,
        "logger=csv",
        "run_name=test",
        "trainer.max_steps=100000",
    ]
    proc = _start_until(
        cmd,
        {**os.environ, "GAMUT_LOG_DIR": str(log_dir)},
        lambda: len(list((ckpts.parent / "samples").glob("fakes_kimg*.png"))) >= 3,
    )
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        _stop(proc)
    assert proc.returncode != -signal.SIGTERM  # handled: Lightning stops at the next batch boundary
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt"]  # written at the signal, nowhere else
    assert _iteration(ckpts / "last.ckpt") >= 4
    assert not (ckpts.parent / "done").exists()  # interrupted, not finished: a sweep relaunch resumes it
