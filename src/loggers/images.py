"""Send one image to every logger that can show images (one mechanism for all of them)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from src.loggers.extras import run_loggers


def log_image(loggers: Iterable[object] | None, key: str, image: np.ndarray, step: int) -> None:
    """``image`` is uint8 ``[H, W, C]``, sent to each :class:`~src.loggers.extras.RunLogger`'s
    ``log_image`` (a no-op for CSV); foreign loggers are skipped."""
    for logger in run_loggers(loggers):
        logger.log_image(key, image, step)
