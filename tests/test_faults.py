"""Faults around a run's files (docs/reliability.md): damaged checkpoints, a full disk, a second launch,
NaN. Each test damages, fills or doubles something for real and checks what the user gets: the run
resumes from what is intact with one warning, or stops with one line, and nothing good is lost.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from src.checkpoints.io import AtomicCheckpointIO
from src.train import train
from src.utils.faults import CheckpointWriteFailed, NonFiniteState
from src.utils.integrity import NoIntactCheckpoint, checksum_file, damage, record_checksum, resume_from, sha256_of
from src.utils.run_lock import RunFolderBusy, RunLock
from src.utils.validation import ConfigError
from tests.browser import free_port
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
#: a checkpoint every iteration of 4 images; no grids
EVERY_ITERATION = ["callbacks.checkpoint.every_kimg=0.004", "callbacks.sample_grid.every_kimg=1000"]


def _state(i: float) -> dict:
    return {"w": torch.full((64,), i), "gamut": {"iteration": int(i)}}


def _save(path: Path, i: float) -> None:
    AtomicCheckpointIO().save_checkpoint(_state(i), path)


def _flip_a_byte(path: Path, at: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


# --- damage: what counts as a damaged checkpoint --------------------------------------------------


def test_every_checkpoint_carries_its_checksum(tmp_path):
    ckpt = tmp_path / "last.ckpt"
    _save(ckpt, 1)
    record = json.loads(checksum_file(ckpt).read_text())
    assert record == {"bytes": ckpt.stat().st_size, "sha256": sha256_of(ckpt), "previous": None}
    _save(ckpt, 2)
    assert json.loads(checksum_file(ckpt).read_text())["previous"] == record["sha256"]
    assert damage(ckpt) is None and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "last.ckpt.sha256"]


@pytest.mark.parametrize(
    "harm,expected",
    [
        (lambda p: p.write_bytes(b""), "empty (0 bytes)"),
        (lambda p: p.write_bytes(p.read_bytes()[:-500]), "truncated or extended"),
        (_flip_a_byte, "bytes changed after writing"),
        (lambda p: p.unlink(), "missing"),
    ],
    ids=["empty", "truncated", "bit-flip", "missing"],
)
def test_damage_is_found(tmp_path, harm, expected):
    ckpt = tmp_path / "last.ckpt"
    _save(ckpt, 1)
    harm(ckpt)
    assert expected in damage(ckpt)


def test_without_a_record_a_checkpoint_is_checked_by_reading_it(tmp_path):
    """Checkpoints written before records existed (or copied without theirs) are read to be judged."""
    ckpt = tmp_path / "old.ckpt"
    torch.save(_state(1), ckpt)
    assert damage(ckpt) is None
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    assert damage(ckpt).startswith("unreadable (")


def test_a_kill_between_record_and_rename_leaves_the_old_file_vouched_for(tmp_path):
    """The record is written before the rename; a kill between the two leaves the previous checkpoint
    under the name, and the record (new checksum, previous checksum) still accepts it."""
    ckpt, new = tmp_path / "last.ckpt", tmp_path / ".last.ckpt.x.tmp"
    _save(ckpt, 1)
    torch.save(_state(2), new)
    record_checksum(ckpt, new)  # ... killed here, before os.replace(new, ckpt)
    assert damage(ckpt) is None
    os.replace(new, ckpt)
    assert damage(ckpt) is None and torch.load(ckpt, weights_only=True)["gamut"]["iteration"] == 2


# --- resume_from: ckpt_path=last ------------------------------------------------------------------


def _run_with_checkpoints(root: Path, *iterations: int) -> Path:
    folder = root / "checkpoints"
    for i in iterations:
        _save(folder / f"kimg{i:014.3f}.ckpt", i)
        os.utime(folder / f"kimg{i:014.3f}.ckpt", ns=(i * 10**9, i * 10**9))
    _save(folder / "last.ckpt", iterations[-1])
    return folder


def test_a_damaged_last_falls_back_to_the_newest_intact_snapshot(tmp_path, caplog):
    folder = _run_with_checkpoints(tmp_path, 1, 2, 3)
    _flip_a_byte(folder / "last.ckpt")
    _flip_a_byte(folder / f"kimg{3:014.3f}.ckpt")
    with caplog.at_level(logging.WARNING, logger="gamut.checkpoints"):
        found = resume_from(tmp_path)
    assert found == folder / f"kimg{2:014.3f}.ckpt"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(folder / "last.ckpt") in warnings[0] and str(found) in warnings[0]
    assert "bytes changed" in warnings[0]
    # the damaged file is kept for inspection, out of the way of the next save
    assert (folder / "last.ckpt.damaged").is_file() and not (folder / "last.ckpt").exists()


def test_no_intact_checkpoint_is_one_error_naming_each(tmp_path):
    folder = _run_with_checkpoints(tmp_path, 1)
    (folder / "last.ckpt").write_bytes(b"")
    (folder / f"kimg{1:014.3f}.ckpt").write_bytes(b"junk")
    with pytest.raises(NoIntactCheckpoint) as e:
        resume_from(tmp_path)
    assert "last.ckpt: empty (0 bytes)" in str(e.value) and f"kimg{1:014.3f}.ckpt: truncated" in str(e.value)
    assert (folder / "last.ckpt").exists()  # nothing moved when nothing can be resumed
    assert resume_from(tmp_path / "elsewhere") is None


def test_training_resumes_past_a_truncated_last_ckpt(tiny_cfg, log_dir, caplog):
    """The whole path: a run saved every iteration; its last.ckpt is cut short (a full disk during a
    copy); ckpt_path=last continues from the newest snapshot, equal to the state it held."""
    train(tiny_cfg(*EVERY_ITERATION, "trainer.max_steps=3"))
    folder = log_dir / "quickstart" / "test" / "checkpoints"
    last = folder / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    newest = max(folder.glob("kimg*.ckpt"))
    assert torch.load(newest, weights_only=True)["gamut"]["iteration"] == 3
    with caplog.at_level(logging.WARNING):
        train(tiny_cfg(*EVERY_ITERATION, "trainer.max_steps=4", "ckpt_path=last"))
    assert any("truncated" in r.getMessage() and newest.name in r.getMessage() for r in caplog.records)
    assert torch.load(last, weights_only=True)["gamut"]["iteration"] == 4 and damage(last) is None
    assert (folder / "last.ckpt.damaged").stat().st_size == 1000


def test_a_damaged_checkpoint_named_by_path_is_refused(tiny_cfg, tmp_path):
    ckpt = tmp_path / "x.ckpt"
    _save(ckpt, 1)
    _flip_a_byte(ckpt)
    with pytest.raises(ConfigError, match=r"ckpt_path='.*x\.ckpt': the checkpoint is its bytes changed"):
        train(tiny_cfg(f"ckpt_path={ckpt}"))


# --- a full disk ----------------------------------------------------------------------------------


def _enospc_on_save(monkeypatch, after: int) -> None:
    """torch.save writes half its bytes and fails with ENOSPC on every call after the first ``after``."""
    real, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) <= after:
            return real(obj, f, *args, **kwargs)
        f.write(b"\0" * 4096)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", save)


def test_a_failed_checkpoint_write_keeps_the_last_one_and_stops(tiny_cfg, log_dir, monkeypatch):
    folder = log_dir / "quickstart" / "test" / "checkpoints"
    _enospc_on_save(monkeypatch, after=2)  # iteration 1's kimg snapshot and last.ckpt, then the disk is full
    with pytest.raises(CheckpointWriteFailed) as e:
        train(tiny_cfg(*EVERY_ITERATION, "trainer.max_steps=5"))
    message = str(e.value)
    assert "No space left on device (ENOSPC)" in message and str(folder / "kimg") in message
    assert f"{folder / 'last.ckpt'} from kimg 0.004 is intact" in message
    assert damage(folder / "last.ckpt") is None
    assert torch.load(folder / "last.ckpt", weights_only=True)["gamut"]["iteration"] == 1
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # no partial file left


@pytest.mark.slow
def test_on_a_really_full_filesystem_the_run_stops_with_one_line(tmp_path):
    """A 6 MiB tmpfs (root only; skipped elsewhere): the run's first launch saves; the disk is then filled
    to less than a checkpoint; the resume stops at its first save with one line, exit status 1, and the
    checkpoint and its record are unchanged."""
    mount = tmp_path / "fs"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        env = {**os.environ, "GAMUT_LOG_DIR": str(mount)}
        cmd = [sys.executable, "-m", "src.train", *TINY, "logger=none", "run_name=full", *EVERY_ITERATION]
        first = subprocess.run([*cmd, "trainer.max_steps=1"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert first.returncode == 0, first.stderr[-2000:]
        last = mount / "quickstart" / "full" / "checkpoints" / "last.ckpt"
        before = (last.read_bytes(), checksum_file(last).read_bytes())
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        (mount / "filler").write_bytes(b"\0" * max(free - last.stat().st_size // 2, 0))
        proc = subprocess.run(
            [*cmd, "trainer.max_steps=3", "ckpt_path=last"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 1, proc.stderr[-2000:]
        lines = [line for line in proc.stderr.splitlines() if line.startswith("gamut: ")]
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert lines[0].startswith("gamut: run stopped: cannot write checkpoint ") and "(ENOSPC)" in lines[0]
        assert (last.read_bytes(), checksum_file(last).read_bytes()) == before and damage(last) is None
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# --- one writer per run folder --------------------------------------------------------------------


def test_a_second_launch_into_a_live_run_folder_is_refused(tmp_path):
    """Another process holds the folder (a child that takes the lock and waits); a launch into it is
    refused naming that process; once it is killed (SIGKILL: no clean-up), the lock is stale and taken."""
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from src.utils.run_lock import RunLock\n"
            f"with RunLock({str(run)!r}):\n    print('held', flush=True); time.sleep(600)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderBusy, match=rf"{run} is being trained by another process \(pid {holder.pid} on "):
            RunLock(run).__enter__()
    finally:
        holder.kill()
        holder.wait()
    assert (run / "lock").exists()  # left by the killed holder
    with RunLock(run):
        assert json.loads((run / "lock").read_text())["pid"] == os.getpid()
    assert not (run / "lock").exists()


def test_train_holds_the_lock_and_other_ranks_do_not_lock(tiny_cfg, log_dir, monkeypatch):
    run = log_dir / "quickstart" / "test"
    with RunLock(run):
        with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()}"):
            train(tiny_cfg("trainer.max_steps=1"))
        assert not (run / "checkpoints").exists()  # refused before anything was written
        monkeypatch.setenv("LOCAL_RANK", "1")  # a DDP child of the holder trains in the same folder
        with RunLock(run):  # no RunFolderBusy: it does not try to lock (a second flock would conflict)
            pass
        assert json.loads((run / "lock").read_text())["pid"] == os.getpid()  # the holder's record stays


# --- NaN ------------------------------------------------------------------------------------------


def test_nan_stops_the_run_naming_the_phase_and_keeps_the_last_finite_checkpoint(tiny_cfg, log_dir, monkeypatch):
    """A non-finite D loss in iteration 3 (the finite check every 50 iterations would find it only at
    50): the save after iteration 3 refuses, naming Dmain and the iteration; last.ckpt holds iteration
    2, finite."""
    from src.modules.stylegan2 import losses

    real = losses.d_logistic
    calls = []

    def loss(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        return out * float("nan") if len(calls) == 3 else out

    monkeypatch.setattr(losses, "d_logistic", loss)
    with pytest.raises(NonFiniteState, match=r"phase Dmain at iteration 3 \(found at iteration 3,"):
        train(tiny_cfg(*EVERY_ITERATION, "trainer.max_steps=6"))
    state = torch.load(log_dir / "quickstart" / "test" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["gamut"]["iteration"] == 2
    assert all(t.isfinite().all() for t in state["state_dict"].values() if t.is_floating_point())


# --- data that goes bad during a run ----------------------------------------------------------------


def test_an_image_that_becomes_unreadable_during_training_is_skipped_and_counted(tmp_path):
    """The folder is listed when the run starts; later one file is cut short and one deleted (a disk or
    a sync job failing under the run): each read serves the next good image and counts the file."""
    from src.datamodules.readers import ImageFolderDataset
    from tests.test_readers import encode, gradient_rgb, write_files

    root = write_files(tmp_path / "imgs", {f"{i}.png": encode(gradient_rgb(24, 24, seed=i)) for i in range(4)})
    ds = ImageFolderDataset(root, resolution=16, channels=3)
    first = [ds[i]["image"] for i in range(4)]
    names = [ds.name(i) for i in range(4)]
    (root / names[1]).write_bytes((root / names[1]).read_bytes()[:50])
    (root / names[2]).unlink()
    with pytest.warns(UserWarning, match="bad_files"):
        again = [ds[i]["image"] for i in range(4)]
    assert sorted(ds.bad_files) == sorted([names[1], names[2]])
    assert torch.equal(again[0], first[0]) and torch.equal(again[3], first[3])
    assert torch.equal(again[1], first[3]) and torch.equal(again[2], first[3])  # the next good one
    assert "2 bad image(s) skipped" in ds.summary()


# --- a tracking store that fails ------------------------------------------------------------------


def _not_logged(caplog) -> str:
    lines = [r.getMessage() for r in caplog.records if "not logged while it failed" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records if "MLflow" in r.getMessage()]
    return lines[0]


def test_an_unreachable_mlflow_server_lets_training_finish(tiny_cfg, log_dir, monkeypatch, caplog):
    """No server listens at the URI: the run trains to its end, warns once when the store fails, and
    says at the end how many calls of each kind were not logged."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{free_port()}/"
    with caplog.at_level(logging.WARNING):
        train(tiny_cfg("trainer.max_steps=2", f"paths.mlflow_uri={uri}", logger="mlflow"))
    assert (log_dir / "quickstart" / "test" / "done").is_file()
    failed = [r.getMessage() for r in caplog.records if "training goes on" in r.getMessage()]
    assert len(failed) == 1 and uri in failed[0] and "Connection refused" in failed[0]
    summary = _not_logged(caplog)
    assert "1 log_hyperparams call(s)" in summary and "log_metrics call(s)" in summary


def test_a_locked_sqlite_store_lets_training_finish(tiny_cfg, log_dir, tmp_path, monkeypatch, caplog):
    """Another process holds the SQLite store's write lock for the whole resume (a dashboard writing, a
    second run): training goes on, the calls that could not write are counted."""
    import sqlite3

    from src.loggers import mlflow as gamut_mlflow

    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    train(tiny_cfg("trainer.max_steps=1", f"paths.mlflow_uri={uri}", logger="mlflow"))
    monkeypatch.setattr(gamut_mlflow, "RETRY_AFTER_S", 3600.0)  # one failure, then dropped without waiting
    holder = sqlite3.connect(db, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING):
            train(tiny_cfg("trainer.max_steps=3", "ckpt_path=last", f"paths.mlflow_uri={uri}", logger="mlflow"))
    finally:
        holder.rollback()
        holder.close()
    state = torch.load(log_dir / "quickstart" / "test" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["gamut"]["iteration"] == 3
    assert "locked" in next(r.getMessage() for r in caplog.records if "training goes on" in r.getMessage())
    assert "not logged while it failed" in _not_logged(caplog)
