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
COMMON = ["callbacks.checkpoint.every_kimg=0.008", "callbacks.sample_grid.every_kimg=1", "model.loss.r1_interval=2",
          "model.loss.pl_interval=2"]


def _iteration(path: Path) -> int:
    return torch.load(path, weights_only=True)["gamut"]["iteration"]


@pytest.mark.slow
def test_kill_9_then_resume_continues_from_last_checkpoint(tiny_cfg, log_dir, monkeypatch):
    monkeypatch.setenv("NEPTUNE_MODE", "offline")
    rd = log_dir / "quickstart" / "test"
    ckpts = rd / "checkpoints"
    cmd = [sys.executable, "-m", "src.train", *TINY, *COMMON, "logger=[csv,neptune]", "run_name=test",
           "trainer.max_steps=100000"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "GAMUT_LOG_DIR": str(log_dir)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while len(list(ckpts.glob("kimg*.ckpt"))) < 3:  # one every 2 iterations
            assert proc.poll() is None, "training exited early"
            assert time.time() < deadline, "no checkpoints written"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # mid-run: no handler, no final save
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
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
