"""Sample grids from G_ema with fixed latents, decoded to RGB(A), to ``samples/`` and the loggers."""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning.callbacks import Callback

from src.callbacks.checkpoint import crossed
from src.loggers.images import log_image
from src.utils.io import image_grid, save_png


class SampleGrid(Callback):
    """Every ``every_kimg``: ``fakes_kimg{K}.png`` from fixed z (seeded), noise 'const', psi ``psi``.

    Also writes ``reals.png`` from the first training batch and a grid at the end of training.
    The latents come from their own generator, so writing grids never shifts the training RNG.
    """

    def __init__(self, dirpath: str, every_kimg: float = 4, num: int = 16, seed: int = 0, psi: float = 1.0,
                 noise_mode: str = "const") -> None:
        self.dirpath = Path(dirpath)
        self.every_kimg, self.num, self.seed, self.psi, self.noise_mode = every_kimg, num, seed, psi, noise_mode
        self._wrote_reals = False

    def latents(self, pl_module) -> tuple[torch.Tensor, torch.Tensor | None]:
        g = torch.Generator().manual_seed(self.seed)
        z = torch.randn(self.num, pl_module.G.z_dim, generator=g)
        labels = (torch.arange(self.num) % pl_module.num_classes) if pl_module.num_classes else None
        return z.to(pl_module.device), None if labels is None else labels.to(pl_module.device)

    def write(self, trainer, pl_module, images: torch.Tensor, name: str, key: str) -> None:
        if not trainer.is_global_zero:
            return
        grid = image_grid(pl_module.colorspace.decode(images.float()))
        save_png(grid, self.dirpath / name)
        log_image(trainer.loggers, key, grid, step=pl_module.cur_nimg)  # same x-axis as the metrics

    def write_fakes(self, trainer, pl_module) -> None:
        z, labels = self.latents(pl_module)
        images = pl_module.sample(z, labels, psi=self.psi, noise_mode=self.noise_mode)
        self.write(trainer, pl_module, images, f"fakes_kimg{pl_module.kimg:010.3f}.png", "samples/fakes")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._wrote_reals and not (self.dirpath / "reals.png").exists():
            self.write(trainer, pl_module, batch["image"][: self.num], "reals.png", "samples/reals")
        self._wrote_reals = True
        step = batch["image"].shape[0] * trainer.world_size
        if crossed(pl_module.cur_nimg, step, self.every_kimg * 1000) or pl_module.iteration == 1:
            self.write_fakes(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.write_fakes(trainer, pl_module)
