"""Lightning checkpoint IO that writes atomically with a checksum and loads with ``torch.load(weights_only=True)``."""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from src.utils.integrity import record_checksum
from src.utils.io import atomic_write


class _WriteErrors:
    """A binary file that remembers the first ``OSError`` its writes raised.

    ``torch.save`` turns a failed write inside its zip writer into a ``RuntimeError`` ("unexpected
    pos ..."), hiding the cause; a full disk must reach the user as ``ENOSPC``, so the cause is kept.
    """

    def __init__(self, file: Any) -> None:
        self.file = file
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.file.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.file.flush()


def _save(checkpoint: dict[str, Any], file: Any) -> None:
    recording = _WriteErrors(file)
    try:
        torch.save(checkpoint, recording)  # type: ignore[arg-type]  # a binary file in all torch.save uses
    except Exception as e:
        if recording.error is not None and not isinstance(e, OSError):
            raise recording.error from e
        raise


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save to a temporary file in the target folder, fsync, then rename over the target.

    An interrupted or failed save (a kill, a full disk) never leaves a truncated ``last.ckpt``: the
    previous one stays intact. Each file gets its checksum record ``<name>.ckpt.sha256``
    (:mod:`src.utils.integrity`), so damage done after writing is found when a run resumes.
    Loading refuses pickled objects (``weights_only=True``), so checkpoints hold only tensors and
    plain containers.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        atomic_write(path, lambda f: _save(checkpoint, f), before_rename=lambda tmp: record_checksum(path, tmp))

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
