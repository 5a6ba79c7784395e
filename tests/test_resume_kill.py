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
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "last.ckpt.sha256"]  # at the signal only
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
    """SIGTERM (a scheduler's stop, ``kill``): training ends at the next iteration boundary with last.ckpt
    saved, and the relaunch with ckpt_path=last continues from it."""
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
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "last.ckpt.sha256"]  # at the signal only
    assert _iteration(ckpts / "last.ckpt") >= 4
    assert not (ckpts.parent / "done").exists()  # interrupted, not finished: a sweep relaunch resumes it
    # the relaunch continues from the checkpoint the signal wrote
    k = _iteration(ckpts / "last.ckpt")
    rerun = subprocess.run(
        [*cmd[:-1], f"trainer.max_steps={k + 2}", "ckpt_path=last"],
        cwd=ROOT,
        env={**os.environ, "GAMUT_LOG_DIR": str(log_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert _iteration(ckpts / "last.ckpt") == k + 2 and (ckpts.parent / "done").is_file()
    assert f"from {ckpts / 'last.ckpt'}" in (ckpts.parent / "train.log").read_text()


#: kill trials: ADA on (its p is part of the state), R1 and path length lazy, a checkpoint every iteration
TRIAL = [
    "callbacks.checkpoint.every_kimg=0.004",
    "callbacks.sample_grid.every_kimg=1000",
    "model.loss.r1_interval=2",
    "model.loss.pl_interval=3",
    "model.augment.mode=ada",
    "model.augment.interval=1",
    "model.augment.kimg=0.1",
]
TRIALS = 3


def _kill_at_random(cmd: list[str], env: dict, ckpts: Path, rng, victim=None) -> int:
    """Start ``cmd``, wait for 3 checkpoints and then a random 0-1.5 s (mid-iteration, mid-save or
    between), SIGKILL ``victim(proc)`` (default: the process itself); the iteration of last.ckpt."""
    proc = _start_until(cmd, env, lambda: len(list(ckpts.glob("kimg*.ckpt"))) >= 3)
    try:
        time.sleep(float(rng.uniform(0, 1.5)))
        os.kill(victim(proc) if victim else proc.pid, signal.SIGKILL)
        proc.wait(timeout=120)  # a DDP rank 0 whose peer died fails at its next collective
    finally:
        _stop(proc)
    return _iteration(ckpts / "last.ckpt")


@pytest.mark.slow
def test_kill_9_at_random_moments_resumes_bit_exactly(tiny_cfg, log_dir):
    """TRIALS times: kill -9 at a random moment, resume to k + 3, compare with a straight run to k + 3:
    G, D, G_ema, ADA's p, both Adam states and the RNG, bit for bit (fp32, CPU)."""
    import numpy as np

    from tests.test_train import _assert_same_state

    rng = np.random.default_rng(0)
    env = {**os.environ, "GAMUT_LOG_DIR": str(log_dir)}
    exact = 0
    for trial in range(TRIALS):
        name = f"killed{trial}"
        ckpts = log_dir / "quickstart" / name / "checkpoints"
        cmd = [sys.executable, "-m", "src.train", *TINY, *TRIAL, "logger=none", f"run_name={name}"]
        k = _kill_at_random([*cmd, "trainer.max_steps=100000"], env, ckpts, rng)
        train(tiny_cfg(*TRIAL, "ckpt_path=last", f"trainer.max_steps={k + 3}", run_name=name))
        train(tiny_cfg(*TRIAL, f"trainer.max_steps={k + 3}", run_name=f"straight{trial}"))
        resumed = torch.load(ckpts / "last.ckpt", weights_only=True)
        straight = torch.load(
            log_dir / "quickstart" / f"straight{trial}" / "checkpoints" / "last.ckpt", weights_only=True
        )
        assert resumed["state_dict"]["augmentation.pipe.p"] != 0  # ADA moved p
        _assert_same_state(resumed, straight)
        exact += 1
    print(f"{exact} of {TRIALS} kill trials resumed bit-exactly")


def _child_of(proc: subprocess.Popen) -> int:
    """The one child process of ``proc`` (Lightning's rank 1 of a 2-process CPU DDP launch)."""
    deadline = time.time() + 60
    while time.time() < deadline:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise AssertionError("rank 1 never started")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds rank 1 through /proc")
def test_ddp_rank_killed_then_resume_is_bit_exact(log_dir):
    """2 processes (gloo): rank 1 is killed with SIGKILL at a random moment; rank 0 stops; the same
    command with ckpt_path=last resumes to k + 2 and equals a straight 2-process run to k + 2."""
    import numpy as np

    from tests.test_ddp import STYLEGAN2
    from tests.test_train import _assert_same_state

    env = {**os.environ, "GAMUT_LOG_DIR": str(log_dir), "OMP_NUM_THREADS": "1"}
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "logger=none"]
    cmd = [sys.executable, "-m", "src.train", *TINY, *STYLEGAN2, *TRIAL[:2], *ddp]
    ckpts = log_dir / "quickstart" / "killed" / "checkpoints"
    k = _kill_at_random(
        [*cmd, "run_name=killed", "trainer.max_steps=100000"], env, ckpts, np.random.default_rng(1), _child_of
    )
    for name, extra in (("killed", ["ckpt_path=last"]), ("straight", [])):
        proc = subprocess.run(
            [*cmd, f"run_name={name}", f"trainer.max_steps={k + 2}", *extra],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    resumed = torch.load(ckpts / "last.ckpt", weights_only=True)
    straight = torch.load(log_dir / "quickstart" / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["gamut"]["iteration"] == k + 2
    _assert_same_state(resumed, straight)
