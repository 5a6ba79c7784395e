"""Neptune logger (offline and debug modes, no server): namespaces, run continuation, token hygiene."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from src.loggers.neptune import RUN_ID_FILE
from src.train import train
from src.utils.validation import ConfigError

# A well-formed (fake) token: the client decodes this format; its api_key is what must never leak.
SECRET = "gamut-test-secret-7f3c1a"
TOKEN = base64.b64encode(
    json.dumps(
        {"api_address": "https://neptune.invalid", "api_url": "https://neptune.invalid", "api_key": SECRET}
    ).encode()
).decode()


def _ops(run_dir: Path) -> list[dict]:
    """Every operation the offline runs of this folder recorded (one offline folder per launch)."""
    ops = []
    for f in sorted((run_dir / ".neptune" / "offline").glob("*/data-*.log")):
        ops += [json.loads(line)["obj"] for line in f.read_text().splitlines() if line.strip()]
    return ops


def _paths(ops: list[dict]) -> set[str]:
    return {"/".join(o["path"]) for o in ops if "path" in o}


def test_offline_run_has_namespaces_continues_and_never_holds_the_token(tiny_cfg, log_dir, monkeypatch):
    monkeypatch.setenv("NEPTUNE_API_TOKEN", TOKEN)
    monkeypatch.delenv("NEPTUNE_MODE", raising=False)
    common = ["callbacks.sample_grid.every_kimg=0.004", "callbacks.checkpoint.every_kimg=0.008"]
    train(tiny_cfg("trainer.max_steps=2", *common, logger="neptune"))
    rd = log_dir / "quickstart" / "test"
    run_id = (rd / RUN_ID_FILE).read_text()
    first = _paths(_ops(rd))
    assert {
        "parameters/model/loss/r1_gamma",
        "parameters/data/batch_size",
        "metrics/Loss/G",
        "metrics/Loss/D",
        "images/samples/fakes",
        "images/samples/reals",
        "checkpoints/last",
        "checkpoints/snapshots",
        "gamut/custom_run_id",
        "gamut/status",
        "sys/name",
    } <= first
    ops = _ops(rd)
    assert any(o.get("value") == run_id for o in ops if o.get("path") == ["gamut", "custom_run_id"])
    # the metric series use images seen as their step, like MLflow
    steps = [v["step"] for o in ops if o.get("path") == ["metrics", "Loss", "G"] for v in o["values"]]
    assert steps == [4.0, 8.0]

    # resume: same custom run id, a second offline segment that names it
    train(tiny_cfg("trainer.max_steps=4", "ckpt_path=last", *common, logger="neptune"))
    assert (rd / RUN_ID_FILE).read_text() == run_id
    assert len(list((rd / ".neptune" / "offline").iterdir())) == 2
    ids = [o["value"] for o in _ops(rd) if o.get("path") == ["gamut", "custom_run_id"]]
    assert ids == [run_id, run_id]

    # the token (and its key) is in no file anything wrote: run folder, configs, logs, MLflow store
    written = [f for f in log_dir.rglob("*") if f.is_file()]
    assert len(written) > 10
    for f in written:
        data = f.read_bytes()
        assert TOKEN.encode() not in data and SECRET.encode() not in data, f


def test_debug_mode_stores_nothing(tiny_cfg, log_dir, monkeypatch):
    monkeypatch.setenv("NEPTUNE_MODE", "debug")
    train(tiny_cfg("trainer.max_steps=1", logger="neptune"))
    rd = log_dir / "quickstart" / "test"
    assert not (rd / RUN_ID_FILE).exists()
    assert [f for f in (rd / ".neptune").rglob("*") if f.is_file()] == []  # the client makes empty folders


@pytest.mark.parametrize(
    "override,key",
    [
        ("+logger.neptune.api_token=abc", "logger.neptune.api_token"),
        ("logger.neptune.mode=online", "logger.neptune.mode"),
        ("logger.neptune.project=noslash", "logger.neptune.project"),
    ],
)
def test_bad_neptune_config_is_one_clear_error(tiny_cfg, log_dir, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        train(tiny_cfg("trainer.max_steps=1", override, logger="neptune"))
    assert not (log_dir / "quickstart" / "test").exists()


def test_server_mode_without_token_is_refused(tiny_cfg, log_dir, monkeypatch):
    monkeypatch.delenv("NEPTUNE_API_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="NEPTUNE_API_TOKEN"):
        train(tiny_cfg("trainer.max_steps=1", "logger.neptune.mode=async", logger="neptune"))
    assert not (log_dir / "quickstart" / "test").exists()
