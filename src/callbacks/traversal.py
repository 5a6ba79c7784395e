"""Traversal grids of SEGAN subspaces during training, like EigenGAN's periodic traversals."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from pytorch_lightning.callbacks import Callback

from src.callbacks.checkpoint import crossed
from src.datamodules.labels import seed_labels
from src.latents.seeds import seed_latents
from src.loggers.images import log_image
from src.modules.segan.editing import traversal
from src.modules.segan.generator import SEGANGenerator
from src.modules.segan.module import SEGAN
from src.utils.io import image_grid, save_png


class TraversalGrid(Callback):
    """Every ``every_kimg``: ``traverse_L{L}N{N}_kimg{K}.png`` per subspace in ``samples/``.

    Each grid has one row per (dim, seed) and one column per value; values are in ``units``
    (``sigma``: per-coordinate std from ``G_ema.coord_stats(stats_n)``) applied with ``op``.

    Args:
        subspaces: ``[[L, N], ...]``; null = every subspace of the model.
        dims: coordinate indices; null = the ``num_dims`` dims with the largest |L| (EigenGAN order).
    """

    def __init__(
        self,
        dirpath: str,
        every_kimg: float = 100,
        subspaces: list | None = None,
        dims: list[int] | None = None,
        num_dims: int = 4,
        values: Sequence[float] = (-3, -1.5, 0, 1.5, 3),
        seeds: Sequence[int] = (0, 1, 2),
        op: str = "add",
        units: str = "sigma",
        stats_n: int = 2000,
        noise_mode: str = "const",
    ) -> None:
        self.dirpath = Path(dirpath)
        self.every_kimg, self.subspaces, self.dims, self.num_dims = every_kimg, subspaces, dims, num_dims
        self.values, self.seeds, self.op, self.units = list(values), list(seeds), op, units
        self.stats_n, self.noise_mode = stats_n, noise_mode

    def _pairs(self, g) -> list[tuple[int, int]]:
        if self.subspaces is None:
            return [(r["layer"], r["subspace"]) for r in g.subspaces()]
        return [(int(l), int(n)) for l, n in self.subspaces]

    def on_fit_start(self, trainer, pl_module) -> None:
        if not isinstance(pl_module, SEGAN):
            raise ValueError("callbacks.traversal needs a SEGAN model (model=segan)")
        g = pl_module.G_ema
        assert isinstance(g, SEGANGenerator), "SEGAN's G_ema is a SEGANGenerator"
        layout = g.synthesis.layout
        for l, n in self._pairs(g):  # fail at start, not after hours of training
            if not 0 <= l < len(layout) or not 0 <= n < len(layout[l]):
                raise ValueError(
                    f"callbacks.traversal.subspaces: [{l}, {n}] does not exist; valid layers "
                    f"0..{len(layout) - 1}, subspaces per layer {[len(x) for x in layout]}"
                )
        for d in self.dims or []:
            if not 0 <= d < g.synthesis.q:
                raise ValueError(f"callbacks.traversal.dims: {d} does not exist; valid dims 0..{g.synthesis.q - 1}")

    def write(self, trainer, pl_module) -> list[Path]:
        if not trainer.is_global_zero:
            return []
        g = pl_module.G_ema
        syn = g.synthesis
        frequencies, classes = pl_module.label_frequencies(), pl_module.num_classes
        c = None
        if self.units == "sigma" and classes:  # the statistics over the data's classes
            c = pl_module.labels_to_onehot(seed_labels(frequencies, classes, range(self.stats_n)))
        stats = g.coord_stats(n=self.stats_n, c=c) if self.units == "sigma" else None
        sampled = syn.coords == "sampled"
        z, coords = seed_latents(self.seeds, g.z_dim, syn.num_layers if sampled else 0, syn.q if sampled else 0)
        z = z.to(pl_module.device)
        coords = None if coords is None else coords.to(pl_module.device)
        labels = None  # each seed's class drawn from the data's frequencies, as the tools do
        if classes:
            labels = pl_module.labels_to_onehot(seed_labels(frequencies, classes, self.seeds)).to(pl_module.device)
        table = {(r["layer"], r["subspace"]): r for r in g.subspaces()}
        written = []
        for l, n in self._pairs(g):
            row = table[(l, n)]
            dims = self.dims if self.dims is not None else (row["rank"] or list(range(syn.q)))[: self.num_dims]
            images = torch.cat(
                [
                    traversal(g, z, l, n, d, self.values, self.op, self.units, stats, coords, self.noise_mode, labels)
                    for d in dims
                ]
            )
            grid = image_grid(pl_module.colorspace.decode(images), nrow=len(self.values))
            written.append(save_png(grid, self.dirpath / f"traverse_L{l}N{n}_kimg{pl_module.kimg:010.3f}.png"))
            log_image(trainer.loggers, f"traversal/L{l}N{n}", grid, step=pl_module.cur_nimg)
        return written

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = batch["image"].shape[0] * trainer.world_size
        if crossed(pl_module.cur_nimg, step, self.every_kimg * 1000):
            self.write(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.write(trainer, pl_module)
