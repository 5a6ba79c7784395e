"""W&B logger in offline mode (no account, no network): config, losses, sample grids, sweep groups,
run continuation, evaluation results, checkpoint artifacts, and the one-line errors.

Each offline run is read back with wandb's own reader of its ``.wandb`` transaction log
(``wandb leet inspect --json``), so the assertions are on what a ``wandb sync`` would upload.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from src.eval import reopen_loggers, report
from src.loggers.wandb import RUN_ID_FILE, WandbLogger, has_credentials
from src.train import train
from src.utils.validation import ConfigError
from tests.conftest import TINY, compose_cfg

ROOT = Path(__file__).resolve().parents[1]
GRIDS = ["callbacks.sample_grid.every_kimg=0.004", "callbacks.checkpoint.every_kimg=0.004"]


@pytest.fixture(scope="module", autouse=True)
def wandb_offline(tmp_path_factory):
    """Offline, silent, and every W&B folder (settings, cache, artifact staging) in a temporary place."""
    base = tmp_path_factory.mktemp("wandb_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")
        for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
            (base / var).mkdir()
            mp.setenv(var, str(base / var))
        for var in ("WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY"):
            mp.delenv(var, raising=False)
        mp.setenv("NETRC", str(base / "netrc"))  # no credentials from the user's ~/.netrc
        yield base
    import wandb

    wandb.teardown()  # stop this process's wandb service


def segments(run_dir: Path) -> list[Path]:
    """The offline run folders under ``<run_dir>/wandb/``, one per launch, oldest first."""
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def records(segment: Path) -> list[dict]:
    """The records of one offline run, as ``wandb leet inspect --json`` prints them."""
    out = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(segment)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def of_type(recs: list[dict], kind: str) -> list[dict]:
    return [r[kind] for r in recs if r["type"] == kind]


def history(recs: list[dict], key: str) -> list[tuple[int, float]]:
    """``(trainer/global_step, value)`` of ``key`` in the run's history."""
    return [(h["item"]["trainer/global_step"], h["item"][key]) for h in of_type(recs, "history") if key in h["item"]]


def config(recs: list[dict]) -> dict:
    """The run's config: the init record's, with every later update laid over it."""
    merged: dict = {}
    for r in recs:
        if r["type"] in ("run", "config"):
            record = r["run"] if r["type"] == "run" else r
            merged.update(record.get("config", {}).get("update", {}))
    return merged


def test_offline_run_has_config_losses_grids_and_a_resume_continues_it(tiny_cfg, log_dir):
    train(tiny_cfg("trainer.max_steps=2", *GRIDS, logger="wandb"))
    rd = log_dir / "quickstart" / "test"
    run_id = (rd / RUN_ID_FILE).read_text()
    [first] = segments(rd)
    assert first.name.endswith(f"-{run_id}")
    recs = records(first)
    [run] = of_type(recs, "run")
    assert (run["run_id"], run["display_name"], run["project"]) == (run_id, "test", "gamut-quickstart")
    assert run["job_type"] == "train" and "run_group" not in run  # not a sweep: no group

    # the composed config, resolved, and the run's info
    cfg = config(recs)
    assert cfg["model"]["loss"]["r1_gamma"] == tiny_cfg().model.loss.r1_gamma
    assert cfg["data"]["batch_size"] == 4 and cfg["data"]["resolution"] == 16 and cfg["run_name"] == "test"
    assert cfg["gamut"] == {"task": "quickstart", "run_name": "test"}

    # the losses at step = images seen
    assert [s for s, _ in history(recs, "Loss/G")] == [4, 8]
    assert [s for s, _ in history(recs, "Loss/D")] == [4, 8]
    assert all(np.isfinite(v) for _, v in history(recs, "Loss/G"))

    # the sample grid: a PNG in the run's media, the same pixels as samples/fakes_kimg*.png
    grids = history(recs, "samples/fakes.path")
    assert [s for s, _ in grids] == [4, 8, 8]  # every 0.004 kimg, and at the end
    logged = np.asarray(Image.open(first / "files" / grids[-1][1]))
    assert np.array_equal(logged, np.asarray(Image.open(rd / "samples" / "fakes_kimg000000.008.png")))
    assert history(recs, "samples/reals.path")
    assert [e["exit_code"] for e in of_type(recs, "exit")] == [0]
    assert not of_type(recs, "artifact")  # checkpoints are uploaded only when asked

    # a resume continues the same W&B run: a second offline segment with the same id
    train(tiny_cfg("trainer.max_steps=4", "ckpt_path=last", *GRIDS, logger="wandb"))
    assert (rd / RUN_ID_FILE).read_text() == run_id
    assert [s.name.endswith(f"-{run_id}") for s in segments(rd)] == [True, True]
    recs = records(segments(rd)[1])
    assert of_type(recs, "run")[0]["run_id"] == run_id
    assert [s for s, _ in history(recs, "Loss/G")] == [12, 16]

    # src.eval's results reach the same run, at the checkpoint's images seen, name and group untouched
    eval_cfg = compose_cfg([f"ckpt_path={rd / 'checkpoints' / 'last.ckpt'}"], config_name="eval.yaml")
    loggers = reopen_loggers(eval_cfg, rd / "checkpoints" / "last.ckpt")
    assert [type(lg) for lg in loggers] == [WandbLogger]
    report(loggers, SimpleNamespace(cur_nimg=16), {"fid": 123.5})
    third = segments(rd)[2]
    recs = records(third)
    [run] = of_type(recs, "run")
    assert run["run_id"] == run_id and "display_name" not in run and "job_type" not in run
    assert history(recs, "metrics/fid") == [(16, 123.5)]


def _job(tmp_path: Path, job: int, **options) -> WandbLogger:
    """A sweep job's logger as src.train drives it: run info, config, a loss, the end."""
    lg = WandbLogger(project="p", run_dir=str(tmp_path / "sw" / str(job)), name="sw", **options)
    lg.set_run_info(
        f"sw/{job}", {"task": "t", "run_name": "sw", "sweep": "sw", "sweep_job": str(job), "overrides": f"a={job}"}
    )
    lg.log_hyperparams({"a": job})
    lg.log_metrics({"Loss/G": 1.0 + job}, step=4)
    lg.finalize("success")
    return lg


def test_a_sweeps_jobs_share_the_sweep_as_their_group(tmp_path):
    runs = []
    for job in (0, 1):
        lg = _job(tmp_path, job)
        [seg] = segments(lg.run_dir)
        runs.append((of_type(recs := records(seg), "run")[0], config(recs)))
    (a, cfg_a), (b, cfg_b) = runs
    assert a["run_group"] == b["run_group"] == "sw" and a["run_id"] != b["run_id"]
    assert (a["display_name"], b["display_name"]) == ("sw/0", "sw/1")
    assert set(a["tags"]) == {"sweep:sw", "job:0"} and set(b["tags"]) == {"sweep:sw", "job:1"}
    assert cfg_b["gamut"]["overrides"] == "a=1" and cfg_b["gamut"]["sweep_job"] == "1" and cfg_b["a"] == 1

    # a group in the config wins over the sweep's name
    lg = _job(tmp_path / "other", 0, group="mine", tags=["x"])
    [run] = of_type(records(segments(lg.run_dir)[0]), "run")
    assert run["run_group"] == "mine" and set(run["tags"]) == {"x", "sweep:sw", "job:0"}


def test_a_mark_after_the_run_ended_reopens_it(tmp_path):
    """A pruned Optuna trial is marked after fit stopped (src/train.py): the mark reaches the same run."""
    lg = WandbLogger(project="p", run_dir=str(tmp_path / "trial"), name="t")
    lg.set_run_info("t", {"task": "t", "run_name": "t"})
    lg.log_metrics({"Loss/G": 1.0}, step=4)
    lg.finalize("failed")
    lg.set_run_info("t", {"optuna_pruned": "true"})
    first, second = (records(seg) for seg in segments(lg.run_dir))
    assert [e["exit_code"] for e in of_type(first, "exit") + of_type(second, "exit")] == [1, 1]
    [run] = of_type(second, "run")
    assert run["run_id"] == lg.version and run["tags"] == ["optuna_pruned"]
    assert config(second)["gamut"]["optuna_pruned"] == "true"


def test_checkpoints_become_model_artifact_versions_when_asked(tiny_cfg, log_dir):
    train(tiny_cfg("trainer.max_steps=2", *GRIDS, "logger.wandb.log_checkpoints=true", logger="wandb"))
    rd = log_dir / "quickstart" / "test"
    run_id = (rd / RUN_ID_FILE).read_text()
    arts = of_type(records(segments(rd)[0]), "artifact")
    # saves at 0.004 and 0.008 kimg (snapshot + last.ckpt: one version each); the end adds no save
    assert [sorted(a["aliases"]) for a in arts] == [["kimg0.004", "latest"], ["kimg0.008", "latest"]]
    for a in arts:
        assert a["name"] == f"model-{run_id}" and a["type"] == "model"
        [entry] = a["manifest"]["contents"]
        assert entry["path"] == "model.ckpt" and int(entry["size"]) > 1000
    assert json.loads(arts[1]["metadata"]) == {"kimg": 0.008, "file": "kimg000000.008.ckpt"}


def test_disabled_mode_stores_nothing(tiny_cfg, log_dir):
    train(tiny_cfg("trainer.max_steps=1", "logger.wandb.mode=disabled", logger="wandb"))
    rd = log_dir / "quickstart" / "test"
    assert not (rd / RUN_ID_FILE).exists() and not segments(rd)


@pytest.mark.parametrize(
    "override,message",
    [
        ("logger.wandb.mode=shared", r"logger\.wandb\.mode='shared' .*offline, online, disabled"),
        ("logger.wandb.mode=online", r"logger\.wandb\.mode=online: no W&B API key.*`wandb login`.*WANDB_API_KEY"),
        ("logger.wandb.project=", r"logger\.wandb\.project"),
        ("logger.wandb.console=bogus", r"logger\.wandb\.console='bogus': allowed values are off, auto"),
    ],
)
def test_bad_wandb_config_is_one_clear_error(tiny_cfg, log_dir, override, message):
    with pytest.raises(ConfigError, match=message):
        train(tiny_cfg("trainer.max_steps=1", override, logger="wandb"))
    assert not (log_dir / "quickstart" / "test").exists()


def test_credentials_are_found_where_wandb_login_puts_them(tmp_path, monkeypatch):
    assert not has_credentials()  # the fixture's environment: no key, an empty NETRC path
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password 0123456789abcdef\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert has_credentials()
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")  # a self-hosted server: its own entry
    assert not has_credentials()
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef")
    assert has_credentials()


def test_a_missing_wandb_package_is_one_line_naming_the_extra(tiny_cfg, log_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError(name="wandb")
    with pytest.raises(ConfigError) as err:
        train(tiny_cfg("trainer.max_steps=1", logger="wandb"))
    assert str(err.value) == (
        "logger=wandb needs the 'wandb' extra, which is not installed: pip install \"gamut[wandb]\" "
        '(in a clone: pip install -e ".[wandb]")'
    )
    assert not (log_dir / "quickstart" / "test").exists()


@pytest.mark.slow
def test_a_two_job_sweep_is_one_group(tmp_path):
    """``python -m src.train -m ... logger=wandb``: both jobs' W&B runs are in the group ``sw``."""
    cmd = [sys.executable, "-m", "src.train", "-m", *TINY, "logger=wandb", "run_name=sw", "trainer.max_steps=1"]
    env = {**os.environ, "GAMUT_LOG_DIR": str(tmp_path)}
    proc = subprocess.run([*cmd, "data.batch_size=4,8"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    runs = [of_type(records(segments(tmp_path / "quickstart" / "sw" / job)[0]), "run")[0] for job in ("0", "1")]
    assert [r["run_group"] for r in runs] == ["sw", "sw"]
    assert [r["display_name"] for r in runs] == ["sw/0", "sw/1"]
    assert len({r["run_id"] for r in runs}) == 2
