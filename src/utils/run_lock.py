"""One run folder, one writer: a training process holds a lock on its run folder while it runs.

:class:`RunLock` takes an exclusive, non-blocking ``flock`` on the run folder itself (the directory's
file descriptor), so the kernel drops it whenever the process ends, however it ends: a run killed with
SIGKILL leaves no lock that could refuse its own ``ckpt_path=last``. The holder also writes
``<run>/lock`` (JSON: pid, host, start time) for the messages; a second launch into a folder whose lock
is held is refused naming that process, and a ``lock`` file whose lock nobody holds is reported as stale
(the process that wrote it ended without removing it) and taken over.

Only the launch's first process locks (global rank 0; the other DDP ranks are its own processes).
Where the filesystem has no locks (``ENOLCK``, some network mounts) or the platform no ``flock``
(Windows), the run goes on unlocked after one warning. A launch that stops with an error removes the
folders the lock created while they are still empty (a refused launch leaves nothing behind).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType

from src.utils.faults import RunStopped
from src.utils.io import atomic_write
from src.utils.run_folder import LOCK_FILE, remove_if_empty

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunFolderBusy", "RunLock", "folder_lock", "is_first_process"]

log = logging.getLogger("gamut.train")


class RunFolderBusy(RunStopped):
    """Another live process trains this run folder."""


def is_first_process() -> bool:
    """Whether this is the launch's global rank 0, as its launcher says (torchrun's ``RANK``, SLURM's
    ``SLURM_PROCID``, Lightning's children's ``LOCAL_RANK`` and ``NODE_RANK``); True for a plain launch."""
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key]) == 0
    return all(os.environ.get(key, "0") in ("", "0") for key in ("LOCAL_RANK", "NODE_RANK"))


#: what flock raises where the filesystem has no locks (some network mounts)
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


@contextmanager
def folder_lock(folder: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``folder`` (its directory descriptor) within the block; yields
    False where there is no lock to take (no ``flock``: Windows; a filesystem without locks). With
    ``wait=False``, a lock another process holds raises ``BlockingIOError`` at once."""
    if fcntl is None:
        yield False
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            locked = True
        except OSError as e:
            if isinstance(e, BlockingIOError) or e.errno not in NO_LOCKS:
                raise
            log.warning("%s: the filesystem has no locks (%s)", folder, e)
            locked = False
        yield locked
    finally:
        os.close(fd)  # releases the lock


def _owner(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that left no record"


class RunLock:
    """``with RunLock(run_dir):`` the body runs holding ``run_dir``'s lock (see the module's doc)."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.file = self.run_dir / LOCK_FILE
        self._held: ExitStack | None = None
        self._existed: Path | None = None  # the deepest folder on the path that existed before the lock

    def __enter__(self) -> RunLock:
        if not is_first_process():
            return self
        self._existed = next(p for p in (self.run_dir, *self.run_dir.parents) if p.exists())
        self.run_dir.mkdir(parents=True, exist_ok=True)
        held = ExitStack()
        try:
            locked = held.enter_context(folder_lock(self.run_dir, wait=False))
        except BlockingIOError:
            raise RunFolderBusy(
                f"{self.run_dir} is being trained by another process ({_owner(self.file)}); wait for it "
                "to end or stop it, or choose another run_name"
            ) from None
        if not locked:
            held.close()
            log.warning("%s is not locked against a second launch (no flock here)", self.run_dir)
            return self
        self._held = held
        if self.file.exists():
            log.warning(
                "%s: stale lock of %s (that process ended without releasing it, e.g. killed); taking it over",
                self.file,
                _owner(self.file),
            )
        record = dict(pid=os.getpid(), host=socket.gethostname(), started=time.strftime("%Y-%m-%d %H:%M:%S"))
        atomic_write(self.file, lambda f: f.write(json.dumps(record)), mode="w")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._held is not None:
            self.file.unlink(missing_ok=True)
            self._held.close()
            self._held = None
        if error is not None and self._existed is not None:  # a refused launch leaves no folder it made
            remove_if_empty(self.run_dir, self._existed)
