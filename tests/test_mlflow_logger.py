"""MLflow tracking on a real SQLite store: params, metrics by step, images, run continuation."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from src.loggers.mlflow import RUN_ID_FILE, MLflowLogger


def make(tmp_path, run_dir):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return MLflowLogger(
        experiment_name="quickstart",
        tracking_uri=uri,
        run_dir=str(run_dir),
        run_name="r1",
        artifact_location=str(tmp_path / "artifacts"),
    ), uri


def test_run_is_continued_with_its_params_metrics_and_images(tmp_path):
    run_dir = tmp_path / "quickstart" / "r1"
    lg, uri = make(tmp_path, run_dir)
    lg.log_hyperparams({"model": {"lr": 0.002, "loss": {"r1_gamma": 10}}, "ckpt_path": None})
    lg.log_metrics({"Loss/G": 1.5}, step=10)
    lg.log_image("samples/fakes", np.zeros((8, 8, 3), np.uint8), step=10)
    lg.finalize("success")
    run_id = lg.run_id
    assert (run_dir / RUN_ID_FILE).read_text() == run_id

    # relaunch with the same run folder: same MLflow run, changed param values are kept, new ones added
    lg2, _ = make(tmp_path, run_dir)
    assert lg2.resumed and lg2.run_id == run_id
    lg2.log_hyperparams({"model": {"lr": 0.002, "loss": {"r1_gamma": 10}}, "ckpt_path": "last", "extra": 1})
    lg2.log_metrics({"Loss/G": 1.2}, step=20)
    lg2.finalize("success")

    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.data.params["model/lr"] == "0.002" and run.data.params["model/loss/r1_gamma"] == "10"
    assert run.data.params["ckpt_path"] == "None" and run.data.params["extra"] == "1"
    history = client.get_metric_history(run_id, "Loss/G")
    assert [(m.step, m.value) for m in history] == [(10, 1.5), (20, pytest.approx(1.2))]
    assert client.get_experiment(run.info.experiment_id).name == "quickstart"
    assert len(client.search_runs([run.info.experiment_id])) == 1
    artifacts = [a.path for a in client.list_artifacts(run_id, "images")]
    assert any("samples_fakes" in p for p in artifacts)


def test_a_new_run_folder_gets_a_new_run(tmp_path):
    a, uri = make(tmp_path, tmp_path / "a")
    b, _ = make(tmp_path, tmp_path / "b")
    assert a.run_id != b.run_id
