"""Send one image to every logger that can show images (one mechanism for all of them)."""

from __future__ import annotations

import numpy as np


def log_image(loggers, key: str, image: np.ndarray, step: int) -> None:
    """``image`` is uint8 ``[H, W, C]``. Loggers without image support (CSV) are skipped."""
    for logger in loggers or []:
        fn = getattr(logger, "log_image", None)
        if callable(fn):
            fn(key, image, step)
            continue
        exp = getattr(logger, "experiment", None)
        if hasattr(exp, "add_image"):  # TensorBoard
            exp.add_image(key, image, int(step), dataformats="HWC")
