"""Discriminator view during training: D's logits on fixed reals and fixed fakes (issue 7).

Every ``every_kimg`` (and after the first iteration and at the end), D scores the first ``num``
images of the training set (read once, unflipped, encoded to the model's color space) and ``num``
G_ema images of fixed seeded z. The rows go to ``d_scores.csv`` and ``d_scores.png`` in
``dirpath`` (the run folder) and ``D_view/real_mean``, ``D_view/fake_mean`` to the loggers. On
resume the table continues (rows past the resumed kimg are dropped).
"""

from __future__ import annotations

from pathlib import Path

import torch

from src.callbacks.checkpoint import crossed
from src.callbacks.preview import FixedLatentsCallback
from src.modules.base import GANModule
from src.visualize.d_scores import plot_d_scores, read_table, write_table


class DScores(FixedLatentsCallback):
    def __init__(self, *, plot: bool = True, **options) -> None:
        """``plot``: also draw ``d_scores.png``; ``options``: :class:`FixedLatentsCallback`'s."""
        super().__init__(**options)
        self.plot = plot
        self.rows: list[dict] = []
        self._reals: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None

    @property
    def csv_path(self) -> Path:
        return self.dirpath / "d_scores.csv"

    def fixed_reals(self, trainer, pl_module: GANModule) -> tuple[torch.Tensor, torch.Tensor | None]:
        dataset = trainer.datamodule.dataset
        n = min(self.num, len(dataset))
        items = [dataset[i] for i in range(n)]
        x = torch.stack([torch.as_tensor(it["image"]) for it in items]).to(pl_module.device)
        x = pl_module.colorspace.encode(x.float() / 255.0 if x.dtype == torch.uint8 else x.float())
        labels = None
        if pl_module.num_classes:
            labels = torch.stack([torch.as_tensor(it["label"]) for it in items]).to(pl_module.device)
        return x, labels

    def on_fit_start(self, trainer, pl_module) -> None:
        if self.csv_path.is_file():  # resume: keep the history up to this point
            self.rows = [r for r in read_table(self.csv_path) if r["kimg"] <= pl_module.kimg + 1e-9]

    @torch.no_grad()
    def score(self, trainer, pl_module: GANModule) -> dict:
        if self._reals is None:
            self._reals, self._labels = self.fixed_reals(trainer, pl_module)
        n = self._reals.shape[0]
        z, fake_labels = self.latents(pl_module, n)
        was_training = pl_module.D.training
        pl_module.D.eval()
        try:
            real = pl_module.D(self._reals, pl_module.labels_to_onehot(self._labels)).float().flatten().cpu()
            fakes = pl_module.sample(z, fake_labels, noise_mode=self.noise_mode)
            fake = pl_module.D(fakes, pl_module.labels_to_onehot(fake_labels)).float().flatten().cpu()
        finally:
            pl_module.D.train(was_training)
        row = {
            "kimg": round(pl_module.kimg, 6),
            "real_mean": float(real.mean()),
            "real_std": float(real.std()) if n > 1 else 0.0,
            "fake_mean": float(fake.mean()),
            "fake_std": float(fake.std()) if n > 1 else 0.0,
        }
        row |= {f"real_{i}": float(v) for i, v in enumerate(real)}
        return row

    def record(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        row = self.score(trainer, pl_module)
        self.rows = [r for r in self.rows if abs(r["kimg"] - row["kimg"]) > 1e-9] + [row]
        write_table(self.csv_path, self.rows)
        if self.plot:
            plot_d_scores(self.rows, self.dirpath / "d_scores.png")
        for logger in trainer.loggers:
            logger.log_metrics(
                {"D_view/real_mean": row["real_mean"], "D_view/fake_mean": row["fake_mean"]}, step=pl_module.cur_nimg
            )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = batch["image"].shape[0] * trainer.world_size
        if crossed(pl_module.cur_nimg, step, self.every_kimg * 1000) or pl_module.iteration == 1:
            self.record(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.record(trainer, pl_module)
