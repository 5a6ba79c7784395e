"""Training-progress video: a run's ``samples/fakes_kimg<K>.png`` grids in kimg order."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

_KIMG = re.compile(r"fakes_kimg([0-9.]+)\.png$")


def progress_grids(run_dir: str | Path) -> list[tuple[float, Path]]:
    """``(kimg, file)`` for every sample grid of a run (the run folder or its ``samples/``), by kimg."""
    root = Path(run_dir)
    samples = root / "samples" if (root / "samples").is_dir() else root
    if not samples.is_dir():
        raise FileNotFoundError(f"run={str(run_dir)!r}: no such run folder")
    found = sorted((float(m.group(1)), p) for p in samples.iterdir() if (m := _KIMG.search(p.name)))
    if not found:
        raise ValueError(f"run={str(run_dir)!r}: no samples/fakes_kimg*.png grids in {samples}")
    return found


def progress_frames(run_dir: str | Path, hold_last: int = 0) -> tuple[list[np.ndarray], list[float]]:
    """uint8 frames (RGB) and their kimg; grids of another size than the first are refused by name."""
    grids = progress_grids(run_dir)
    frames: list[np.ndarray] = []
    kimgs: list[float] = []
    for kimg, path in grids:
        with Image.open(path) as im:
            frame = np.asarray(im.convert("RGB"))
        if frames and frame.shape != frames[0].shape:
            raise ValueError(
                f"{path}: {frame.shape[1]}x{frame.shape[0]} grid, the first one is "
                f"{frames[0].shape[1]}x{frames[0].shape[0]} (samples from different runs?)"
            )
        frames.append(frame)
        kimgs.append(kimg)
    frames.extend([frames[-1]] * hold_last)
    return frames, kimgs
