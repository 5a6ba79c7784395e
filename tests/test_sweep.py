"""Hydra multirun sweeps: failure isolation, per-job dashboard runs, re-launch skips/resumes, launchers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from mlflow.tracking import MlflowClient

from src.utils.integrity import checksum_file
from tests.conftest import CONF, TINY

ROOT = Path(__file__).resolve().parents[1]


def _sweep(log_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    # job 0: data.batch_size=3 is not a multiple of model.mbstd_group=2 (a bad value); jobs 1, 2 train
    cmd = [
        sys.executable,
        "-m",
        "src.train",
        "-m",
        *TINY,
        "logger=mlflow",
        "run_name=sw",
        "ckpt_path=last",
        "trainer.max_steps=2",
        "callbacks.checkpoint.every_kimg=0.001",
        "callbacks.sample_grid.every_kimg=1",
        "data.batch_size=3,4,8",
        *extra,
    ]
    env = {**os.environ, "GAMUT_LOG_DIR": str(log_dir)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_failed_job_does_not_stop_the_sweep_and_relaunch_skips_and_resumes(tmp_path):
    proc = _sweep(tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    sweep = tmp_path / "quickstart" / "sw"
    assert "sweep sw: 1 of 3 job(s) failed" in proc.stderr and "job 0: ConfigError" in proc.stderr
    assert "model.mbstd_group" in (sweep / "0" / "failed").read_text()
    assert not (sweep / "0" / "checkpoints").exists()
    for job, batch in (("1", 4), ("2", 8)):
        assert (sweep / job / "done").is_file()
        state = torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=True)
        assert state["gamut"]["iteration"] == 2 and state["datamodule_hyper_parameters"]["batch_size"] == batch

    # each job is its own MLflow run, named <sweep>/<job> and tagged with the sweep and the job number
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("quickstart")
    every = client.search_runs([exp.experiment_id])
    parents = [r for r in every if r.data.tags.get("sweep_parent") == "true"]
    runs = {r.data.tags["sweep_job"]: r for r in every if "sweep_job" in r.data.tags}
    assert set(runs) == {"1", "2"}  # job 0 stopped at validation, before any run was opened
    # the sweep is one parent run with the jobs as its children (MLflow's UI nests them)
    assert len(parents) == 1 and parents[0].info.run_name == "sw" and parents[0].data.tags["sweep"] == "sw"
    parent_id = parents[0].info.run_id
    assert (sweep / "mlflow_parent_run_id").read_text() == parent_id
    for job, run in runs.items():
        assert run.data.tags["sweep"] == "sw" and run.info.run_name == f"sw/{job}"
        assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == parent_id
        assert f"data.batch_size={ {'1': 4, '2': 8}[job] }" in run.data.tags["overrides"]

    # job 2 is "killed" after its first iteration: back to that checkpoint, no done marker
    done1 = (sweep / "1" / "done").read_bytes()
    last1 = (sweep / "1" / "checkpoints" / "last.ckpt").read_bytes()
    first = sorted((sweep / "2" / "checkpoints").glob("kimg*.ckpt"))[0]
    assert torch.load(first, weights_only=True)["gamut"]["iteration"] == 1
    shutil.copyfile(first, sweep / "2" / "checkpoints" / "last.ckpt")
    shutil.copyfile(checksum_file(first), checksum_file(sweep / "2" / "checkpoints" / "last.ckpt"))  # its record
    (sweep / "2" / "done").unlink()

    # the same command again (hydra/launcher=parallel runs it the same way, 2 jobs at once)
    proc = _sweep(tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "1 of 3 job(s) failed" in proc.stderr
    assert (sweep / "1" / "done").read_bytes() == done1  # skipped: nothing rewritten
    assert (sweep / "1" / "checkpoints" / "last.ckpt").read_bytes() == last1
    assert "already finished" in out
    state = torch.load(sweep / "2" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["gamut"]["iteration"] == 2 and (sweep / "2" / "done").is_file()
    # the resumed job continued its MLflow run instead of opening a new one; still one parent
    assert len(client.search_runs([exp.experiment_id])) == 3


def _hydra_cfg(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("train.yaml", overrides=["run_name=x", *overrides], return_hydra_config=True)


def test_launcher_configs_compose():
    """SLURM can't run here; its config must still compose with every documented key."""
    slurm = _hydra_cfg(
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=8",
        "hydra.launcher.tasks_per_node=8",
        "trainer=ddp",
        "trainer.devices=8",
    ).hydra.launcher
    assert slurm._target_.endswith("submitit_launcher.SlurmLauncher")
    assert slurm.partition == "gpu" and slurm.tasks_per_node == 8 and slurm.max_num_timeout == 3
    assert slurm.submitit_folder.endswith("/x/.submitit/%j")
    parallel = _hydra_cfg("hydra/launcher=parallel").hydra.launcher
    assert parallel._target_.endswith("JoblibLauncher") and parallel.n_jobs == 2
    assert _hydra_cfg().hydra.callbacks.sweep_report._target_ == "src.sweeps.report.SweepReport"
