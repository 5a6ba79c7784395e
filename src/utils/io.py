"""Atomic file writes and image grids: one writer for every PNG and checkpoint the platform saves."""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[Any], None],
    mode: str = "wb",
    before_rename: Callable[[Path], None] | None = None,
) -> Path:
    """Call ``write(file)`` on a temporary file next to ``path``, fsync it, then rename over ``path``.

    A crash mid-write, or a write that fails (a full disk: ``ENOSPC``), leaves the previous file intact
    and no partial file under ``path`` or beside it; the error is raised as it came. ``before_rename(tmp)``
    runs on the complete, fsynced temporary file just before the rename (e.g. to record its checksum).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if sys.platform != "win32":  # Windows has no os.fchmod before Python 3.13 and no such modes
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if before_rename is not None:
            before_rename(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def image_grid(images: Tensor, nrow: int | None = None, padding: int = 0) -> np.ndarray:
    """``[N, C, H, W]`` floats in [0, 1] (C = 1, 3 or 4) -> uint8 grid ``[rows*H, cols*W, C]``."""
    if images.ndim != 4 or images.shape[1] not in (1, 3, 4):
        raise ValueError(f"image_grid expects [N, 1|3|4, H, W], got {list(images.shape)}")
    n, c, h, w = images.shape
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    x = (images.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu()
    grid = torch.zeros(c, rows * (h + padding) - padding, cols * (w + padding) - padding, dtype=torch.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[:, r * (h + padding) : r * (h + padding) + h, q * (w + padding) : q * (w + padding) + w] = x[i]
    return grid.permute(1, 2, 0).numpy()


def save_png(array: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 ``[H, W]`` / ``[H, W, 1|3|4]`` array as PNG, atomically."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    img = Image.fromarray(np.ascontiguousarray(array))
    return atomic_write(path, lambda f: img.save(f, format="PNG"))
