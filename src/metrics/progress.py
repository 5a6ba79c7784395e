"""Progress of long metric work: images done, rate and time left.

On a terminal a tqdm bar redraws in place; otherwise (a log file, a SLURM output, a pipe) a tick line
is written every ``interval`` seconds and at the end, so a 50k-image evaluation is never silent.
Only the process that reports (rank 0) shows anything.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger("gamut.metrics")


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h04m``."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """Count ``total`` items of work named ``label``; ``update(n)`` after each batch, ``close()`` at the end.

    ``enabled=False`` (other ranks) makes every call a no-op. ``stream``: where a tqdm bar goes
    (default stderr); it is a bar only when the stream is a terminal, else tick lines go to the log.
    """

    def __init__(
        self,
        label: str,
        total: int,
        unit: str = "images",
        enabled: bool = True,
        interval: float = 30.0,
        stream: TextIO | None = None,
    ) -> None:
        self.label, self.total, self.unit = label, int(total), unit
        self.enabled, self.interval = enabled, float(interval)
        self.done = 0
        self.start = self.last = time.perf_counter()
        self.bar = None
        stream = stream if stream is not None else sys.stderr
        if enabled and getattr(stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=label, unit=" " + unit.rstrip("s"), file=stream, leave=True)

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = duration(left) if left == left else "?"
        return (
            f"{self.label}: {self.done}/{self.total} {self.unit} ({pct:.0f}%), {rate:.1f} {self.unit}/s, "
            f"{'took ' + duration(elapsed) if self.done >= self.total else 'ETA ' + eta}"
        )

    def update(self, n: int) -> None:
        if not self.enabled:
            return
        self.done += int(n)
        if self.bar is not None:
            self.bar.update(int(n))
            return
        now = time.perf_counter()
        if now - self.last >= self.interval and self.done < self.total:
            self.last = now
            log.info(self.line())

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        log.info(self.line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
