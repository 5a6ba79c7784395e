"""Checkpoint integrity: every checkpoint carries a checksum, and a resume never starts from a damaged one.

Writing (:func:`record_checksum`, called by ``AtomicCheckpointIO`` between the temporary file's fsync
and its rename): ``<name>.ckpt.sha256`` beside the checkpoint, written atomically *before* the rename,
holds the new file's size and SHA-256 and the previous file's SHA-256. A kill between the two renames
leaves the previous checkpoint under the name and a record that still vouches for it, so no moment of
a save makes an intact checkpoint look damaged.

Reading (:func:`damage`): a checkpoint is damaged when it is missing, empty, of another size than
recorded (truncated by a full disk or a killed copy), of other bytes than recorded (changed after
writing), or, with no record (checkpoints written before records existed, or copied without theirs),
when ``torch.load`` cannot read it. :func:`resume_from` picks what ``ckpt_path=last`` resumes: the
run's ``last.ckpt`` when intact, else the newest intact checkpoint of the run folder with one warning
naming both files (the damaged file is kept, renamed ``<name>.damaged``, so the next save cannot
overwrite the evidence); with none intact, one error naming each file and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch

from src.utils.io import atomic_write
from src.utils.run_folder import CHECKPOINT_DIR, LAST_CHECKPOINT

__all__ = [
    "CHECKSUM_SUFFIX",
    "DAMAGED_SUFFIX",
    "NoIntactCheckpoint",
    "checksum_file",
    "damage",
    "record_checksum",
    "resume_from",
    "sha256_of",
]

log = logging.getLogger("gamut.checkpoints")

CHECKSUM_SUFFIX = ".sha256"  # <name>.ckpt.sha256: JSON {"bytes", "sha256", "previous"}
DAMAGED_SUFFIX = ".damaged"  # a damaged last.ckpt set aside by a resume that fell back


class NoIntactCheckpoint(ValueError):
    """A run has checkpoints, but none is intact; the message names each file and its damage."""


def checksum_file(ckpt: str | os.PathLike) -> Path:
    """The record beside ``ckpt``: ``<ckpt>.sha256``."""
    ckpt = Path(ckpt)
    return ckpt.with_name(ckpt.name + CHECKSUM_SUFFIX)


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_record(ckpt: Path) -> dict | None:
    try:
        record = json.loads(checksum_file(ckpt).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("sha256"), str) else None


def record_checksum(target: str | os.PathLike, written: str | os.PathLike) -> None:
    """Record ``written`` (the fsynced temporary file about to be renamed to ``target``) as ``target``'s
    content, keeping the current ``target``'s checksum as ``previous`` (atomically, fsynced)."""
    target = Path(target)
    old = _read_record(target)
    previous = old["sha256"] if old is not None else None
    record = {"bytes": os.path.getsize(written), "sha256": sha256_of(written), "previous": previous}
    atomic_write(checksum_file(target), lambda f: f.write(json.dumps(record)), mode="w")


def damage(ckpt: str | os.PathLike) -> str | None:
    """What is wrong with checkpoint ``ckpt`` (a short phrase), or None when it is intact."""
    ckpt = Path(ckpt)
    try:
        size = ckpt.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror or type(e).__name__})"
    if size == 0:
        return "empty (0 bytes)"
    record = _read_record(ckpt)
    try:
        if record is not None:
            digest = sha256_of(ckpt)
            if digest in (record["sha256"], record.get("previous")):
                return None
            if size != record.get("bytes"):
                return f"truncated or extended ({size} bytes, {record['bytes']} written)"
            return "its bytes changed after writing (SHA-256 differs from the one recorded)"
        torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    except OSError as e:
        return f"unreadable ({e.strerror or type(e).__name__})"
    except Exception as e:  # torch.load's errors on a broken zip or pickle are of many types
        first = str(e).splitlines()[0] if str(e) else ""
        return f"unreadable ({type(e).__name__}: {first[:120]})"
    return None


def _candidates(folder: Path) -> list[Path]:
    """The run's other checkpoints, newest first (by modification time; names break ties)."""
    files = [
        p for p in folder.glob("*.ckpt") if p.name != LAST_CHECKPOINT and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)


def resume_from(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint ``ckpt_path=last`` resumes in ``run_dir``; None when the run has no checkpoint.

    ``last.ckpt`` when intact; else the newest intact checkpoint in ``checkpoints/`` (one warning naming
    the damaged file, why, and the one used; the damaged file is renamed ``last.ckpt.damaged``). When
    no checkpoint is intact, :class:`NoIntactCheckpoint` lists every file and its damage.
    """
    folder = Path(run_dir) / CHECKPOINT_DIR
    last = folder / LAST_CHECKPOINT
    others = _candidates(folder) if folder.is_dir() else []
    if not last.exists() and not others:
        return None
    problem = damage(last) if last.exists() else None
    if last.exists() and problem is None:
        return last
    tried = [f"{last.name}: {problem or 'missing'}"]
    for candidate in others:
        why = damage(candidate)
        if why is None:
            if last.exists():
                aside = last.with_name(last.name + DAMAGED_SUFFIX)
                os.replace(last, aside)
                checksum_file(last).unlink(missing_ok=True)
                log.warning(
                    "%s is damaged (%s; kept as %s); resuming from %s, the newest intact checkpoint of the run",
                    last,
                    problem,
                    aside.name,
                    candidate,
                )
            else:
                log.warning("%s is missing; resuming from %s, the newest intact checkpoint of the run", last, candidate)
            return candidate
        tried.append(f"{candidate.name}: {why}")
    raise NoIntactCheckpoint(f"ckpt_path=last: no intact checkpoint in {folder} ({'; '.join(tried)})")
