"""Resume from the run's own config: the first launch's overrides, then today's; model keys frozen."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from src.train import train
from src.utils.resume import changed_keys, check_frozen, frozen_values, merge_overrides, override_key
from src.utils.validation import ConfigError
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
FAST = ["logger=csv", "callbacks.sample_grid.every_kimg=100", "callbacks.checkpoint.every_kimg=100"]


def _cli(log_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GAMUT_LOG_DIR": str(log_dir)}
    env.pop("SLURM_JOB_ID", None)
    return subprocess.run(
        [sys.executable, "-m", "src.train", *overrides], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def _state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)


# ------------------------------------------------------------------------------------------------
# The pieces, on plain values.


def test_override_keys_and_merge():
    assert override_key("+model.loss.x=1") == "model.loss.x"
    assert override_key("~logger") == "logger" and override_key("model=segan") == "model"
    first = ["experiment=quickstart", "run_name=r", "data.resolution=64", "trainer.max_steps=3", "ckpt_path=x"]
    now = ["run_name=r", "ckpt_path=last", "trainer.max_steps=5"]
    assert merge_overrides(first, now) == [
        "experiment=quickstart",
        "data.resolution=64",
        "run_name=r",
        "ckpt_path=last",
        "trainer.max_steps=5",
    ]


def test_frozen_keys_are_architecture_and_data_shape():
    cfg = {
        "model": {
            "channel_base": 512,
            "optim": {"g_lr": 0.1},
            "subspace": {"variant": "eigen"},
            "loss": {"r1_gamma": 1},
            "ema": {"kimg": 1},
            "perf": {"compile": False},
        },
        "data": {"resolution": 64, "batch_size": 16},
        "colorspace": {"name": "lab", "channels": 3},
        "trainer": {"max_steps": 5},
    }
    assert frozen_values(cfg) == {
        "model.channel_base": 512,
        "model.subspace.variant": "eigen",
        "data.resolution": 64,
        "colorspace.name": "lab",
        "colorspace.channels": 3,
    }
    training = {
        **cfg,
        "model": {**cfg["model"], "optim": {"g_lr": 0.2}},
        "trainer": {"max_steps": 9},
        "data": {"resolution": 64, "batch_size": 8},
    }
    check_frozen(cfg, training, "r")  # training keys may change
    assert changed_keys(cfg, training) == {
        "data.batch_size": [16, 8],
        "model.optim.g_lr": [0.1, 0.2],
        "trainer.max_steps": [5, 9],
    }
    for key, value in (("data.resolution", [64, 32]), ("model.channel_base", 1024), ("colorspace.name", "rgb")):
        top, _, leaf = key.rpartition(".")
        other = {**cfg, top: {**cfg[top], leaf: value}}
        with pytest.raises(ConfigError, match=rf"{key}=.*\(the run has "):
            check_frozen(cfg, other, "r")


# ------------------------------------------------------------------------------------------------
# The user's commands.


def test_runs_from_before_channels_followed_the_colorspace_still_resume():
    """Earlier configs carried ``model.img_channels``; it follows the (frozen) colour space now."""
    first = {
        "model": {"img_channels": 3, "z_dim": 8},
        "colorspace": {"name": "rgb", "channels": 3},
        "data": {"resolution": 16},
    }
    now = {"model": {"z_dim": 8}, "colorspace": {"name": "rgb", "channels": 3}, "data": {"resolution": 16}}
    check_frozen(first, now, "r")
    with pytest.raises(ConfigError, match="colorspace.name"):
        check_frozen(first, {**now, "colorspace": {"name": "gray", "channels": 1}}, "r")


def test_cli_resume_keeps_the_first_launch_config_and_refuses_new_architecture(tmp_path):
    """The issue's commands: a run started at another resolution resumes at it; channel_base is fixed."""
    first = _cli(
        tmp_path, *TINY, *FAST, "run_name=r", "data.resolution=32", "model.optim.g_lr=0.001", "trainer.max_steps=2"
    )
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "quickstart" / "r"
    # today's command names neither the resolution nor the lr: both come from the run
    again = _cli(
        tmp_path,
        "experiment=quickstart",
        "run_name=r",
        "ckpt_path=last",
        "trainer.max_steps=3",
        "trainer.enable_progress_bar=false",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    state = _state(run)
    assert state["gamut"]["iteration"] == 3
    assert state["state_dict"]["G.synthesis.blocks.0.const"].shape[-1] == 4
    assert state["hyper_parameters"]["resolution"] == 32 and state["hyper_parameters"]["optim"]["g_lr"] == 0.001
    assert state["gamut"]["config"]["data"]["resolution"] == 32  # the checkpoint records the config
    changes = yaml.safe_load((run / ".hydra" / "resume-1" / "changes.yaml").read_text())
    assert changes["trainer.max_steps"] == [2, 3]
    assert "data.resolution" not in changes and "model.optim.g_lr" not in changes
    assert "resume: trainer.max_steps: 2 -> 3" in (run / "train.log").read_text()

    before = (run / "checkpoints" / "last.ckpt").read_bytes()
    refused = _cli(
        tmp_path,
        "experiment=quickstart",
        "run_name=r",
        "ckpt_path=last",
        "trainer.max_steps=4",
        "model.channel_base=1024",
    )
    assert refused.returncode == 2
    line = [ln for ln in refused.stderr.splitlines() if ln.startswith("gamut:")]
    assert len(line) == 1 and "model.channel_base=1024 (the run has 128)" in line[0], refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == before
    assert not (run / ".hydra" / "resume-2").exists()


def test_cli_resume_of_a_missing_run_or_unreadable_config_is_one_line(tmp_path):
    proc = _cli(tmp_path, "experiment=quickstart", "run_name=nope", "ckpt_path=last")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"no run at {tmp_path / 'quickstart' / 'nope'}" in proc.stderr
    assert not (tmp_path / "quickstart" / "nope").exists()

    run = tmp_path / "quickstart" / "bad"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    (run / ".hydra" / "overrides.yaml").write_text("{not: [a, list")
    proc = _cli(tmp_path, "experiment=quickstart", "run_name=bad", "ckpt_path=last")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{run / '.hydra' / 'overrides.yaml'}: cannot read the run's overrides" in proc.stderr


def test_resume_from_a_checkpoint_that_travelled_alone_checks_its_record(tiny_cfg, log_dir, tmp_path):
    train(tiny_cfg("trainer.max_steps=1", *FAST[1:], "data.resolution=32"))
    copy = tmp_path / "elsewhere" / "run.ckpt"
    copy.parent.mkdir()
    shutil.copyfile(log_dir / "quickstart" / "test" / "checkpoints" / "last.ckpt", copy)
    with pytest.raises(ConfigError, match=r"data.resolution=16 \(the run has 32\)"):
        train(tiny_cfg("trainer.max_steps=2", f"ckpt_path={copy}", run_name="other"))
    assert not (log_dir / "quickstart" / "other").exists()
    train(tiny_cfg("trainer.max_steps=2", f"ckpt_path={copy}", "data.resolution=32", run_name="other"))
    assert _state(log_dir / "quickstart" / "other")["gamut"]["iteration"] == 2


@pytest.mark.slow
def test_sweep_relaunch_resumes_each_job_from_its_own_config(tmp_path):
    tiny = [o for o in TINY if not o.startswith("data.resolution=")]
    sweep = ["-m", *tiny, *FAST, "run_name=sw", "model.optim.g_lr=0.001,0.002"]
    first = _cli(tmp_path, *sweep, "data.resolution=32", "trainer.max_steps=1")
    assert first.returncode == 0, first.stderr[-3000:]
    again = _cli(tmp_path, *sweep, "ckpt_path=last", "trainer.max_steps=2")  # the resolution comes from each job
    assert again.returncode == 0, again.stderr[-3000:]
    for job, lr in (("0", 0.001), ("1", 0.002)):
        state = _state(tmp_path / "quickstart" / "sw" / job)
        assert state["gamut"]["iteration"] == 2
        assert state["hyper_parameters"]["resolution"] == 32 and state["hyper_parameters"]["optim"]["g_lr"] == lr
