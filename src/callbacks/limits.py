"""Training length in iterations (one G and one D update on one minibatch)."""

from __future__ import annotations

from pytorch_lightning.callbacks import Callback


class StopAtIteration(Callback):
    """Stop after ``max_iterations`` iterations of the module's own counter.

    gamut's ``trainer.max_steps`` means iterations; Lightning's own ``max_steps`` would count
    optimizer steps, which a GAN takes 2 to 4 of per iteration (Lightning#17958).
    """

    def __init__(self, max_iterations: int) -> None:
        self.max_iterations = max_iterations

    def _check(self, trainer, pl_module) -> None:
        if self.max_iterations >= 0 and pl_module.iteration >= self.max_iterations:
            trainer.should_stop = True

    def on_train_start(self, trainer, pl_module) -> None:
        self._check(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._check(trainer, pl_module)
