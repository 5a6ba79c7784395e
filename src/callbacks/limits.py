"""Training length in iterations (one G and one D update on one minibatch)."""

from __future__ import annotations

from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities.rank_zero import rank_zero_warn


class StopAtIteration(Callback):
    """Stop after ``max_iterations`` iterations of the module's own counter (-1: no limit).

    gamut's ``trainer.max_steps`` means iterations; Lightning's own ``max_steps`` would count
    optimizer steps, which a GAN takes 2 to 4 of per iteration (Lightning#17958).
    """

    def __init__(self, max_iterations: int) -> None:
        self.max_iterations = max_iterations

    def _reached(self, pl_module) -> bool:
        return self.max_iterations >= 0 and pl_module.iteration >= self.max_iterations

    def on_train_start(self, trainer, pl_module) -> None:
        if self._reached(pl_module):
            rank_zero_warn(f"this run is already at iteration {pl_module.iteration} "
                           f"(trainer.max_steps={self.max_iterations}): nothing to train. "
                           "Raise trainer.max_steps to continue it.")
            trainer.should_stop = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._reached(pl_module):
            trainer.should_stop = True
