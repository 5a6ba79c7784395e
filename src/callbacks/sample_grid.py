"""Sample grids, decoded to RGB(A), to ``samples/`` and the loggers: the one grid writer.

Generators (StyleGAN2, SEGAN): ``fakes_kimg{K}.png`` from G_ema with fixed latents. Colorizers
(modules with ``colorizes`` set, i.e. ChromaGAN): ``colorized_kimg{K}.png`` with gray input | prediction |
ground truth side by side for a fixed set of images (the first ``num`` of the val set, else of the
first training batch), also after every validation epoch.
"""

from __future__ import annotations

import torch

from src.callbacks.checkpoint import crossed
from src.callbacks.preview import FixedLatentsCallback
from src.datamodules.image_datamodule import ImageDataModule
from src.loggers.images import log_image
from src.utils.io import image_grid, save_png


class SampleGrid(FixedLatentsCallback):
    """Every ``every_kimg``: ``fakes_kimg{K}.png`` from fixed z (seeded), noise 'const', psi ``psi``.

    Also writes ``reals.png`` from the first training batch and a grid at the end of training.
    The latents come from their own generator, so writing grids never shifts the training RNG.
    """

    def __init__(self, *, psi: float = 1.0, **options) -> None:
        """``psi``: truncation of the fakes; ``options``: :class:`FixedLatentsCallback`'s."""
        super().__init__(**options)
        self.psi = psi
        self._wrote_reals = False
        self._fixed: torch.Tensor | None = None

    def write(self, trainer, pl_module, images: torch.Tensor, name: str, key: str) -> None:
        if not trainer.is_global_zero:
            return
        grid = image_grid(pl_module.colorspace.decode(images.float()))
        save_png(grid, self.dirpath / name)
        log_image(trainer.loggers, key, grid, step=pl_module.cur_nimg)  # same x-axis as the metrics

    def write_fakes(self, trainer, pl_module) -> None:
        if pl_module.colorizes:
            self.write_colorized(trainer, pl_module)
            return
        z, labels = self.latents(pl_module)
        images = pl_module.sample(z, labels, psi=self.psi, noise_mode=self.noise_mode)
        self.write(trainer, pl_module, images, f"fakes_kimg{pl_module.kimg:010.3f}.png", "samples/fakes")

    def fixed_images(self, trainer, pl_module, batch: dict | None) -> torch.Tensor | None:
        """The colorizer's fixed inputs (model space, CPU): the val set's first ``num``, else the first batch's."""
        if self._fixed is None:
            datamodule = trainer.datamodule
            val = datamodule.val_dataset if isinstance(datamodule, ImageDataModule) else None
            if val is not None and len(val) > 0:
                images = torch.stack([val[i]["image"] for i in range(min(self.num, len(val)))])
                x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
                self._fixed = pl_module.colorspace.encode(x)
            elif batch is not None:
                self._fixed = batch["image"][: self.num].detach().float().cpu()
        return self._fixed

    def write_colorized(self, trainer, pl_module, batch: dict | None = None) -> None:
        lab = self.fixed_images(trainer, pl_module, batch)
        if lab is None or not trainer.is_global_zero:
            return
        lab = lab.to(pl_module.device)
        triplets = torch.stack([pl_module.gray_baseline(lab), pl_module.colorize(lab), lab], dim=1)
        n = lab.shape[0]
        images = triplets.flatten(0, 1)  # gray_0, pred_0, true_0, gray_1, ...
        per_row = 2 if n >= 4 and n % 2 == 0 else 1
        grid = image_grid(pl_module.colorspace.decode(images.float()), nrow=3 * per_row)
        save_png(grid, self.dirpath / f"colorized_kimg{pl_module.kimg:010.3f}.png")
        log_image(trainer.loggers, "samples/colorized", grid, step=pl_module.cur_nimg)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if pl_module.colorizes and not trainer.sanity_checking:
            self.write_colorized(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._fixed is None and pl_module.colorizes:
            self.fixed_images(trainer, pl_module, batch)
        if not self._wrote_reals and not (self.dirpath / "reals.png").exists():
            self.write(trainer, pl_module, batch["image"][: self.num], "reals.png", "samples/reals")
        self._wrote_reals = True
        step = batch["image"].shape[0] * trainer.world_size
        if crossed(pl_module.cur_nimg, step, self.every_kimg * 1000) or pl_module.iteration == 1:
            self.write_fakes(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.write_fakes(trainer, pl_module)
