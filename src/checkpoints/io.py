"""Lightning checkpoint IO that writes atomically and loads with ``torch.load(weights_only=True)``."""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from src.utils.io import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save to a temporary file in the target folder, fsync, then rename over the target.

    An interrupted save never leaves a truncated ``last.ckpt``: the previous one stays intact.
    Loading refuses pickled objects (``weights_only=True``), so checkpoints hold only tensors and
    plain containers.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        atomic_write(path, lambda f: torch.save(checkpoint, f))

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
