"""``python -m src.eval`` end to end on a tiny trained checkpoint, with randomly initialised
Inception and VGG-16 weights saved under their upstream names; the metrics callback in training."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from src.eval import build_dataset, evaluate
from src.pretrained.weights import OFFLINE_ENV, MissingWeightsError, allow_downloads
from src.train import train
from src.utils.validation import ConfigError
from tests.conftest import TINY, compose_cfg, tiny_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A 2-iteration 16 px StyleGAN2 run with an MLflow run; returns its run folder."""
    return tiny_run(tmp_path_factory.mktemp("logs"), "ev", logger="mlflow")


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
    assert fid["values"] == {"fid": flat["fid"]} and fid["time_s"] > 0
    assert fid["protocol"]["num_gen"] == 3 and fid["protocol"]["num_real"] == 4 and fid["protocol"]["mirror"] is False
    assert fid["protocol"]["real_cache"]["hit"] is False
    assert record["metrics"]["kid"]["protocol"]["subset_size"] == 3
    ppl = record["metrics"]["ppl_wend"]["protocol"]
    assert (ppl["space"], ppl["sampling"], ppl["epsilons"], ppl["num_samples"]) == ("w", "end", [1e-4, 0.01], 4)
    cached = sorted((run.parent.parent / "cache").glob("inception-*.pt"))
    assert len(cached) == 1 and "-16x16-rgb-n4-" in cached[0].name

    # second run: reals come from the cache (FID and KID share it); same seed, same numbers;
    # the entries of the first run are kept
    mtime = cached[0].stat().st_mtime_ns
    again = evaluate(eval_cfg(run, weights_dir, "metrics=[kid]"))
    record = json.loads(out.read_text())
    assert record["metrics"]["kid"]["protocol"]["real_cache"]["hit"] is True and cached[0].stat().st_mtime_ns == mtime
    assert again["kid"] == pytest.approx(flat["kid"], rel=1e-6)
    assert {"fid", "ppl_wend"} <= set(record["metrics"])

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{run.parent.parent / 'mlflow.db'}")
    run_id = (run / "mlflow_run_id").read_text().strip()
    assert [h.step for h in client.get_metric_history(run_id, "metrics/fid")] == [8]  # step = images seen
    assert [h.step for h in client.get_metric_history(run_id, "metrics/kid")] == [8, 8]


def test_eval_reports_to_the_runs_csv_and_tensorboard_loggers(weights_dir, tmp_path):
    """The results reach whatever loggers the run trained with: here CSV (a version folder of its own
    beside the run's, which stays as it was) and TensorBoard (an event file with the scalar)."""
    import csv

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rd = tiny_run(tmp_path / "logs", "files", logger="[csv,tensorboard]")
    trained = {p: p.read_bytes() for p in (rd / "csv").rglob("metrics.csv")}
    flat = evaluate(eval_cfg(rd, weights_dir, "metrics=[ppl_wend]", f"output={tmp_path / 'm.json'}"))
    reported = sorted((rd / "csv").glob("eval_*/metrics.csv"))
    assert len(reported) == 1 and all(p.read_bytes() == b for p, b in trained.items())
    rows = list(csv.DictReader(reported[0].open()))
    assert [(int(r["step"]), float(r["metrics/ppl_wend"])) for r in rows] == [(8, pytest.approx(flat["ppl_wend"]))]
    events = EventAccumulator(str(rd / "tensorboard")).Reload()
    assert [(e.step, e.value) for e in events.Scalars("metrics/ppl_wend")] == [(8, pytest.approx(flat["ppl_wend"]))]


def test_nvidia_named_metrics_write_their_protocols(run, weights_dir, tmp_path):
    """fid/pr/is by NVIDIA's naming, shrunk to a few images, on a mirrored data set of 3 images: the
    *_full names read the 3 reals unflipped (metric_main.py sets xflip=False), the legacy fid4 the
    first 4 of the 6 mirrored ones; pr uses NVIDIA's vgg16.pt, pr*_torchvision torchvision's VGG-16."""
    out = tmp_path / "m.json"
    flat = evaluate(
        eval_cfg(
            run,
            weights_dir,
            "metrics=[fid4_full,fid4,pr42_full,pr42_full_torchvision,is10]",
            "+data.dataset.size=3",
            "mirror=true",
            "intra_fid=true",
            f"output={out}",
        )
    )
    assert set(flat) == {
        "fid4_full",
        "fid4_full_intra",
        "fid4",
        "fid4_intra",
        "pr42_full_precision",
        "pr42_full_recall",
        "pr42_full_torchvision_precision",
        "pr42_full_torchvision_recall",
        "is10_mean",
        "is10_std",
    }
    metrics = json.loads(out.read_text())["metrics"]
    per_class = metrics["fid4_full"]["per_class"]  # the quickstart model is conditional: FID per class, then the mean
    assert per_class and flat["fid4_full_intra"] == pytest.approx(sum(per_class.values()) / len(per_class))
    fid, legacy, pr, tv, is_ = (
        metrics[k]["protocol"] for k in ("fid4_full", "fid4", "pr42_full", "pr42_full_torchvision", "is10")
    )
    assert (fid["num_gen"], fid["num_real"], fid["max_real"], fid["mirror"], fid["data_xflip"]) == (
        4,
        3,
        None,
        False,
        True,
    )
    assert (legacy["num_real"], legacy["max_real"], legacy["mirror"]) == (4, 4, True)  # 3 images + flips, first 4
    assert (pr["num_gen"], pr["num_real"], pr["nhood"], pr["feature_net"], pr["mirror"]) == (4, 3, 2, "nvidia", False)
    assert pr["network"] == "VGG-16 fc2 (NVIDIA's vgg16.pt)" and fid["network"] == "Inception-v3 pool3"
    assert tv["feature_net"] == "torchvision" and tv["network"] == "VGG-16 fc2 (torchvision's ImageNet weights)"
    assert (is_["num_gen"], is_["splits"]) == (10, 10) and "num_real" not in is_
    assert 0 <= flat["pr42_full_precision"] <= 1 and 0 <= flat["pr42_full_recall"] <= 1
    assert flat["is10_mean"] >= 1.0
    cache = run.parent.parent / "cache"
    assert len(list(cache.glob("vgg16-nvidia-*-n3-*.pt"))) == 1
    assert len(list(cache.glob("vgg16-torchvision-*-n3-*.pt"))) == 1
    assert len(list(cache.glob("inception-*-n4-mirror-*.pt"))) == 1  # the legacy name's pass over the flips


def test_missing_weights_stop_before_any_work(run, tmp_path, monkeypatch):
    with pytest.raises(
        MissingWeightsError, match=rf"weights-inception-2015-12-05-6726825d.pth not found.*off \({OFFLINE_ENV}=1\)"
    ):
        evaluate(eval_cfg(run, tmp_path, "metrics=[fid]", f"output={tmp_path / 'x.json'}"))
    with pytest.raises(MissingWeightsError, match="vgg16.pt not found.*nvlabs-fi-cdn.nvidia.com"):
        evaluate(eval_cfg(run, tmp_path, "metrics=[ppl]", f"output={tmp_path / 'x.json'}"))
    monkeypatch.delenv(OFFLINE_ENV)  # the config alone forbids the download: still no request leaves
    try:
        with pytest.raises(MissingWeightsError, match=r"downloads are off \(paths.download_weights=false\)"):
            evaluate(eval_cfg(run, tmp_path, "metrics=[fid]", "paths.download_weights=false"))
    finally:
        allow_downloads(True)
    assert not (tmp_path / "x.json").exists()


def test_data_overrides_apply_to_the_runs_data_node(run, weights_dir):
    from src.checkpoints.load import load_module

    cfg = eval_cfg(run, weights_dir, "data.resolution=32")
    module = load_module(cfg.ckpt_path)
    with pytest.raises(ConfigError, match=r"data.resolution=\[32, 32\] does not match the checkpoint's \[16, 16\]"):
        build_dataset(cfg, Path(cfg.ckpt_path), module)
    dataset, _, mirror = build_dataset(eval_cfg(run, weights_dir, "data.num_workers=0"), Path(cfg.ckpt_path), module)
    assert dataset.resolution == (16, 16) and len(dataset) == 10000  # the run's shapes data set
    assert mirror is False  # the run's data.xflip
    assert build_dataset(eval_cfg(run, weights_dir, "mirror=true"), Path(cfg.ckpt_path), module)[2] is True


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
    assert "gamut: invalid config: metrics: unknown metric 'fdi'; known: fid50k_full, kid50k_full" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_metrics_callback_logs_and_leaves_training_unchanged(tmp_path, weights_dir, monkeypatch):
    monkeypatch.setenv("GAMUT_LOG_DIR", str(tmp_path))
    common = [*TINY, "logger=csv", "trainer.max_steps=4"]
    train(compose_cfg([*common, "run_name=plain"]))
    returned = train(
        compose_cfg(
            [
                *common,
                "run_name=metrics",
                "callbacks=[default,metrics]",
                "callbacks.metrics.every_kimg=0.008",
                "callbacks.metrics.metrics=[ppl_wend]",
                "callbacks.metrics.ppl.num_samples=2",
                "callbacks.metrics.ppl.batch_size=2",
                "optimized_metric=ppl_wend",
                f"paths.weights_dir={weights_dir}",
            ]
        )
    )
    rd = tmp_path / "quickstart" / "metrics"
    lines = [json.loads(line) for line in (rd / "metrics.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in lines] == [0.008, 0.016] and lines[0]["metrics"]["ppl_wend"]["values"]["ppl_wend"] >= 0
    # the last value reaches trainer.callback_metrics, which train() returns (a sweep job returns returned[metric])
    assert returned["ppl_wend"] == pytest.approx(lines[-1]["metrics"]["ppl_wend"]["values"]["ppl_wend"])
    assert json.loads((rd / "done").read_text())["metrics"]["ppl_wend"] == pytest.approx(returned["ppl_wend"])
    import csv

    rows = list(csv.DictReader(next((rd / "csv").rglob("metrics.csv")).open()))
    assert [int(r["step"]) for r in rows if r.get("metrics/ppl_wend")] == [8, 16]
    assert all(float(r["progress/metrics_sec"]) > 0 for r in rows if r.get("metrics/ppl_wend"))  # its duration
    a = torch.load(tmp_path / "quickstart" / "plain" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(rd / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # the metrics did not touch the training RNG


def test_metrics_callback_evaluates_at_the_end_of_training(tmp_path, weights_dir, monkeypatch):
    """A run shorter than every_kimg still reports its metric once, at the end (what a sweep returns)."""
    monkeypatch.setenv("GAMUT_LOG_DIR", str(tmp_path))
    returned = train(
        compose_cfg(
            [
                *TINY,
                "logger=none",
                "trainer.max_steps=1",
                "run_name=end",
                "callbacks=[default,metrics]",
                "callbacks.metrics.every_kimg=100",
                "callbacks.metrics.metrics=[ppl_wend]",
                "callbacks.metrics.ppl.num_samples=2",
                "callbacks.metrics.ppl.batch_size=2",
                f"paths.weights_dir={weights_dir}",
            ]
        )
    )
    lines = (tmp_path / "quickstart" / "end" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["kimg"] == pytest.approx(0.004) and "ppl_wend" in returned


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([], "optimized_metric='fid10k_full' is not computed by this run: this run computes no metric; enable one"),
        (
            ["callbacks=[default,metrics]", "callbacks.metrics.metrics=[kid10k_full,is10k]"],
            "this run computes kid10k_full, kid10k_full_std, is10k_mean, is10k_std",
        ),
        (["callbacks=[default,metrics]", "callbacks.metrics.every_kimg=0"], "this run computes no metric"),
    ],
)
def test_an_optimized_metric_the_run_does_not_compute_is_refused_at_start(tmp_path, monkeypatch, overrides, message):
    monkeypatch.setenv("GAMUT_LOG_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(compose_cfg([*TINY, "logger=none", "run_name=bad", "optimized_metric=fid10k_full", *overrides]))
    assert not (tmp_path / "quickstart" / "bad").exists()  # nothing written


def test_an_unknown_metric_in_the_callback_is_refused_before_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GAMUT_LOG_DIR", str(tmp_path))
    overrides = [*TINY, "logger=none", "run_name=bad", "callbacks=[default,metrics]", "callbacks.metrics.metrics=[fdi]"]
    with pytest.raises(ConfigError, match="callbacks.metrics.metrics: unknown metric 'fdi'; known: fid50k_full"):
        train(compose_cfg(overrides))
    assert not (tmp_path / "quickstart" / "bad").exists()


def test_chromagans_validation_metrics_are_sweepable():
    from src.sweeps.objective import metric_keys

    cfg = compose_cfg(["experiment=chromagan", "trainer.accelerator=cpu"])
    assert {"val/psnr", "val/ssim", "val/psnr_gain"} <= set(metric_keys(cfg))


def test_metrics_callback_checks_weights_at_start(tmp_path, monkeypatch):
    monkeypatch.setenv("GAMUT_LOG_DIR", str(tmp_path))
    monkeypatch.delenv(OFFLINE_ENV)  # src.train forbids the download from its config alone
    try:
        with pytest.raises(MissingWeightsError, match=r"weights-inception.*\(paths.download_weights=false\)"):
            train(
                compose_cfg(
                    [
                        *TINY,
                        "logger=none",
                        "trainer.max_steps=1",
                        "callbacks=[default,metrics]",
                        f"paths.weights_dir={tmp_path / 'empty'}",
                        "paths.download_weights=false",
                    ]
                )
            )
    finally:
        allow_downloads(True)


def test_eval_reports_to_the_logger_of_the_runs_latest_launch(weights_dir, tmp_path):
    """A run trained with CSV and resumed with TensorBoard (a run moved to another logger, e.g. off
    Neptune): the results go to TensorBoard, the logger it logs to now, and no CSV version is added."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from src.train import train
    from tests.conftest import TINY, compose_cfg, logs_in

    rd = tiny_run(tmp_path / "logs", "moved", logger="csv")
    with logs_in(tmp_path / "logs"):
        train(compose_cfg([*TINY, "run_name=moved", "logger=tensorboard", "ckpt_path=last", "trainer.max_steps=3"]))
    assert (rd / ".hydra" / "resume-1" / "config.yaml").is_file()
    flat = evaluate(eval_cfg(rd, weights_dir, "metrics=[ppl_wend]", f"output={tmp_path / 'm.json'}"))
    events = EventAccumulator(str(rd / "tensorboard")).Reload()
    assert [(e.step, e.value) for e in events.Scalars("metrics/ppl_wend")] == [(12, pytest.approx(flat["ppl_wend"]))]
    assert not list((rd / "csv").glob("eval_*"))
