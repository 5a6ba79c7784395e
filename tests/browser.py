"""Helpers of the browser tests: the system's headless Chromium (installed by .ci/run; each test skips
without it), a free local port, and a server started as a subprocess and stopped with its children."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def chromium() -> str | None:
    """The Chromium binary (Debian's real one first: its /usr/bin/chromium is a wrapper script)."""
    for p in ("/usr/lib/chromium/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if p and Path(p).is_file():
            return p
    return None


needs_chromium = pytest.mark.skipif(
    chromium() is None, reason="headless Chromium not installed (Debian: apt-get install chromium)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(cmd: list[str], url: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> Iterator[str]:
    """Run ``cmd`` (a server) until ``url`` answers; yield its first line of output (the rest is read
    and dropped); stop it (and the processes it started: ``make`` runs the server as a child) after
    the block."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5):
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    out = proc.stdout.read() if proc.poll() is not None and proc.stdout else ""
                    raise AssertionError(f"{' '.join(cmd)} did not serve {url}: {out[-2000:]}") from None
                time.sleep(0.5)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        # keep reading what the server prints (a line per request): a full pipe would stall it
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield first
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
