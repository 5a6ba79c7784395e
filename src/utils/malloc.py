"""Keep freed CPU memory in the process for reuse (glibc), instead of returning it to the system.

PyTorch's CPU allocator is plain ``malloc``. glibc serves every block above its mmap threshold (at
most 32 MiB) with a fresh ``mmap`` and unmaps it on ``free``, so each large activation of a
training step is new memory the kernel must fault in and zero page by page. At 256 px a StyleGAN2
activation is hundreds of MB, and an out-of-place elementwise op then costs several times its
in-place twin. :func:`keep_freed_cpu_memory` turns mmap off for ``malloc`` (every block comes from
the heap) and stops heap trimming, so freed activations are reused without page faults, as the CUDA
caching allocator does on a GPU. The cost: the process keeps its peak heap size until it exits.
Measured in docs/benchmarks.md; on by default in training (``cpu_malloc_cache`` in src/conf/train.yaml).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_applied = False


def keep_freed_cpu_memory() -> bool:
    """Apply the setting once per process; True where it took effect (Linux with glibc)."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _applied
