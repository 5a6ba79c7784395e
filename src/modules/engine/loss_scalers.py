"""One fp16 loss scaler per optimizer (``trainer.precision=16-mixed``).

Lightning's precision plugin holds one GradScaler for all optimizers, so an overflow in G's step
would shrink D's loss scale too. :class:`LossScalers` gives each optimizer its own scaler, built
from the plugin's settings the first time a step runs and swapped into the plugin for that phase's
backward and step (:meth:`LossScalers.use`); all of them travel in the checkpoint.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.core.optimizer import LightningOptimizer
from pytorch_lightning.plugins.precision import MixedPrecision

__all__ = ["LossScalers"]


def _unwrapped(optimizer: torch.optim.Optimizer | LightningOptimizer) -> torch.optim.Optimizer:
    return optimizer.optimizer if isinstance(optimizer, LightningOptimizer) else optimizer


class LossScalers:
    """The GradScaler of each optimizer, by its index in ``trainer.optimizers``; empty without fp16
    loss scaling. ``pending``: scaler states from a checkpoint, loaded when the scalers are built."""

    def __init__(self) -> None:
        self.scalers: dict[int, torch.amp.GradScaler] = {}
        self.pending: list[dict] | None = None

    def use(self, trainer: pl.Trainer, optimizer: torch.optim.Optimizer | LightningOptimizer, device_type: str) -> None:
        """Under fp16 loss scaling, put ``optimizer``'s own GradScaler into ``trainer``'s precision plugin."""
        plugin = trainer.precision_plugin
        if not isinstance(plugin, MixedPrecision) or plugin.scaler is None:
            return
        shared = plugin.scaler
        optimizers = [_unwrapped(o) for o in trainer.optimizers]
        index = optimizers.index(_unwrapped(optimizer))
        if not self.scalers:
            pending, self.pending = self.pending, None
            for i in range(len(optimizers)):
                scaler = torch.amp.GradScaler(
                    device_type,
                    init_scale=shared.get_scale(),
                    growth_factor=shared.get_growth_factor(),
                    backoff_factor=shared.get_backoff_factor(),
                    growth_interval=shared.get_growth_interval(),
                )
                if pending and i < len(pending):
                    scaler.load_state_dict(pending[i])
                self.scalers[i] = scaler
        plugin.scaler = self.scalers[index]

    def scales(self) -> list[float]:
        """The current loss scale of each optimizer (empty without loss scaling)."""
        return [self.scalers[i].get_scale() for i in sorted(self.scalers)]

    def state_dicts(self) -> list[dict]:
        """Every scaler's state, in optimizer order (what the checkpoint stores under ``gamut.grad_scalers``)."""
        return [self.scalers[i].state_dict() for i in sorted(self.scalers)]
