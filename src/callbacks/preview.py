"""The base of callbacks that look at the model at intervals through fixed seeded latents.

:class:`SampleGrid` (images) and :class:`~src.callbacks.d_scores.DScores` (D's scores) both render
``num`` generated images every ``every_kimg`` from the same latents each time, so their output is
comparable across the run, and both write into ``dirpath``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning.callbacks import Callback

from src.datamodules.labels import known_frequencies
from src.modules.base import GANModule


class FixedLatentsCallback(Callback):
    """``dirpath``: where files go; ``every_kimg``: the interval; ``num`` latents drawn from ``seed``
    with their own generator (the training RNG never moves); ``noise_mode`` for the generator."""

    def __init__(
        self, dirpath: str | Path, every_kimg: float = 4, num: int = 16, seed: int = 0, noise_mode: str = "const"
    ) -> None:
        self.dirpath = Path(dirpath)
        self.every_kimg, self.num, self.seed, self.noise_mode = every_kimg, num, seed, noise_mode

    def latents(self, pl_module: GANModule, num: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``num`` (default ``self.num``) fixed z on the module's device and, for a conditional model,
        labels cycling through the classes the data has (all classes when that is not known)."""
        num = self.num if num is None else num
        z = torch.randn(num, pl_module.z_dim, generator=torch.Generator().manual_seed(self.seed))
        labels = None
        if pl_module.num_classes:
            frequencies = known_frequencies(pl_module.label_frequencies())
            seen = torch.arange(pl_module.num_classes) if frequencies is None else frequencies.nonzero().flatten()
            labels = seen[torch.arange(num) % len(seen)].to(pl_module.device)
        return z.to(pl_module.device), labels
