"""The faults that stop a run on purpose, each with one line for the user (docs/reliability.md).

``src.train`` prints a :class:`RunStopped` as ``gamut: run stopped: <message>`` and exits with status 1
(a sweep job records it in ``<job>/failed`` and the sweep goes on), never with a traceback: the message
names the file, the phase or the process, and what is still safe on disk.
"""

from __future__ import annotations

__all__ = ["CheckpointWriteFailed", "NonFiniteState", "RunStopped"]


class RunStopped(Exception):
    """A fault that stops the run; its message is the whole report."""


class CheckpointWriteFailed(RunStopped, OSError):
    """A checkpoint could not be written (a full disk, a quota, an I/O error); the previous one is intact."""


class NonFiniteState(RunStopped, FloatingPointError):
    """A loss or a weight became NaN/Inf; nothing non-finite was saved."""
