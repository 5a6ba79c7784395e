"""``python -m src.eval`` end to end on a tiny trained checkpoint, with randomly initialised
Inception and VGG-16 weights saved under their upstream names; the metrics callback in training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
import torchvision

from src.eval import build_dataset, evaluate
from src.pretrained.weights import WEIGHTS, MissingWeightsError
from src.train import train
from src.utils.validation import ConfigError
from tests.conftest import TINY, compose_cfg, logs_in

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    """Random-init Inception (torch-fidelity's architecture) and VGG-16 trunk under the upstream names."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    cls = tf_inception.FeatureExtractorInceptionV3
    with (
        mock.patch.object(tf_inception, "load_state_dict_from_url", lambda *a, **k: {}),
        mock.patch.object(cls, "load_state_dict", lambda self, state: None),
    ):
        net = cls("inception-v3-compat", ["2048"])  # nothing is downloaded or loaded: random init
    torch.save(net.state_dict(), d / WEIGHTS["inception"].filename)
    trunk = torchvision.models.vgg16(weights=None).features  # LPIPS reads only the features.* tensors
    torch.save({f"features.{k}": v for k, v in trunk.state_dict().items()}, d / WEIGHTS["vgg16"].filename)
    return d


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A 2-iteration 16 px StyleGAN2 run with an MLflow run; returns its run folder."""
    log_dir = tmp_path_factory.mktemp("logs")
    with logs_in(log_dir):
        train(compose_cfg([*TINY, "logger=mlflow", "run_name=ev", "trainer.max_steps=2"]))
    return log_dir / "quickstart" / "ev"


def eval_cfg(run: Path, weights_dir: Path, *overrides: str):
    return compose_cfg(
        [
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
            f"paths.weights_dir={weights_dir}",
            f"paths.log_dir={run.parent.parent}",
            "num_gen=3",
            "num_real=4",
            "batch_size=4",
            "ppl.num_samples=4",
            "ppl.batch_size=2",
            *overrides,
        ],
        config_name="eval.yaml",
    )


def test_eval_writes_json_logs_to_mlflow_and_reuses_the_cache(run, weights_dir):
    cfg = eval_cfg(run, weights_dir, "metrics=[fid,kid,ppl_wend]")
    flat = evaluate(cfg)
    assert set(flat) == {"fid", "kid", "kid_std", "ppl_wend", "ppl_wend_eps0.01"}
    assert all(v == v for v in flat.values())  # no NaN
    out = run / "checkpoints" / "last.metrics.json"
    record = json.loads(out.read_text())
    assert record["kimg"] == pytest.approx(0.008) and record["iteration"] == 2
    assert record["checkpoint"] == str((run / "checkpoints" / "last.ckpt").resolve())
    fid = record["metrics"]["fid"]
    assert fid["value"] == flat["fid"] and fid["num_gen"] == 3 and fid["num_real"] == 4 and fid["time_s"] > 0
    assert fid["real_cache"]["hit"] is False
    assert record["metrics"]["kid"]["subset_size"] == 3
    ppl = record["metrics"]["ppl_wend_eps0.01"]
    assert (ppl["space"], ppl["sampling"], ppl["epsilon"], ppl["num_samples"]) == ("w", "end", 0.01, 4)
    cached = sorted((run.parent.parent / "cache").glob("inception-*.pt"))
    assert len(cached) == 1 and "-16x16-rgb-n4-" in cached[0].name

    # second run: reals come from the cache (FID and KID share it); same seed, same numbers;
    # the entries of the first run are kept
    mtime = cached[0].stat().st_mtime_ns
    again = evaluate(eval_cfg(run, weights_dir, "metrics=[kid]"))
    record = json.loads(out.read_text())
    assert record["metrics"]["kid"]["real_cache"]["hit"] is True and cached[0].stat().st_mtime_ns == mtime
    assert again["kid"] == pytest.approx(flat["kid"], rel=1e-6)
    assert {"fid", "ppl_wend", "ppl_wend_eps0.01"} <= set(record["metrics"])

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{run.parent.parent / 'mlflow.db'}")
    run_id = (run / "mlflow_run_id").read_text().strip()
    assert [h.step for h in client.get_metric_history(run_id, "metrics/fid")] == [8]  # step = images seen
    assert [h.step for h in client.get_metric_history(run_id, "metrics/kid")] == [8, 8]


def test_missing_weights_stop_before_any_work(run, tmp_path):
    with pytest.raises(MissingWeightsError, match="weights-inception-2015-12-05-6726825d.pth not found"):
        evaluate(eval_cfg(run, tmp_path, "metrics=[fid]", f"output={tmp_path / 'x.json'}"))
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth not found"):
        evaluate(eval_cfg(run, tmp_path, "metrics=[ppl]", f"output={tmp_path / 'x.json'}"))
    assert not (tmp_path / "x.json").exists()


def test_data_overrides_apply_to_the_runs_data_node(run, weights_dir):
    from src.checkpoints.load import load_module

    cfg = eval_cfg(run, weights_dir, "data.resolution=32")
    module = load_module(cfg.ckpt_path)
    with pytest.raises(ConfigError, match=r"data.resolution=\[32, 32\] does not match the checkpoint's \[16, 16\]"):
        build_dataset(cfg, Path(cfg.ckpt_path), module)
    dataset, _ = build_dataset(eval_cfg(run, weights_dir, "data.num_workers=0"), Path(cfg.ckpt_path), module)
    assert dataset.resolution == (16, 16) and len(dataset) == 10000  # the run's shapes data set


def test_cli_rejects_an_unknown_metric_in_one_line(run, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.eval",
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
            "metrics=[fid,fdi]",
            f"paths.weights_dir={tmp_path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "gamut: invalid config: metrics: unknown metric 'fdi'; valid choices: fid, kid, ppl" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_metrics_callback_logs_and_leaves_training_unchanged(tmp_path, weights_dir, monkeypatch):
    monkeypatch.setenv("GAMUT_LOG_DIR", str(tmp_path))
    common = [*TINY, "logger=csv", "trainer.max_steps=4"]
    train(compose_cfg([*common, "run_name=plain"]))
    train(
        compose_cfg(
            [
                *common,
                "run_name=metrics",
                "callbacks=[default,metrics]",
                "callbacks.metrics.every_kimg=0.008",
                "callbacks.metrics.metrics=[ppl_wend]",
                "callbacks.metrics.ppl.num_samples=2",
                "callbacks.metrics.ppl.batch_size=2",
                f"paths.weights_dir={weights_dir}",
            ]
        )
    )
    rd = tmp_path / "quickstart" / "metrics"
    lines = [json.loads(line) for line in (rd / "metrics.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in lines] == [0.008, 0.016] and lines[0]["metrics"]["ppl_wend"]["value"] >= 0
    import csv

    rows = [r for r in csv.DictReader(next((rd / "csv").rglob("metrics.csv")).open()) if r.get("metrics/ppl_wend")]
    assert [int(r["step"]) for r in rows] == [8, 16]
    a = torch.load(tmp_path / "quickstart" / "plain" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(rd / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # the metrics did not touch the training RNG


def test_metrics_callback_checks_weights_at_start(tmp_path, monkeypatch):
    monkeypatch.setenv("GAMUT_LOG_DIR", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="weights-inception"):
        train(
            compose_cfg(
                [
                    *TINY,
                    "logger=none",
                    "trainer.max_steps=1",
                    "callbacks=[default,metrics]",
                    f"paths.weights_dir={tmp_path / 'empty'}",
                ]
            )
        )
