"""Rendering helpers shared by the views: seeds -> z / w, ws -> display RGB, tensors -> frames."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from src.latents.seeds import seed_latents
from src.utils.io import image_grid


def seeds_to_w(
    model, seeds: list[int], psi: float = 1.0, cutoff: int | None = None, class_idx: int | None = None
) -> Tensor:
    """ws ``[len(seeds), num_ws, w_dim]`` of the seeds' z (as generate.py), truncated by ``psi``."""
    z, _ = seed_latents(seeds, model.G.z_dim)
    c = model.labels_for(len(seeds), class_idx, seeds=seeds)
    with torch.no_grad():
        return model.G.mapping(z.to(model.device), c, psi=psi, cutoff=cutoff)


@torch.no_grad()
def render_rgb(
    model, ws: Tensor, noise_mode: str = "const", batch: int = 16, progress: Callable[[int], None] | None = None
) -> Tensor:
    """ws -> display RGB(A) ``[N, C, H, W]`` in [0, 1] (decoded from the model's color space).

    ``progress(n)`` runs after each batch with the number of images it rendered; an exception it raises
    stops the rendering (a cancelled video)."""
    out = []
    for i in range(0, ws.shape[0], batch):
        out.append(model.colorspace.decode(model.synthesize(ws[i : i + batch].to(model.device), noise_mode)).cpu())
        if progress is not None:
            progress(out[-1].shape[0])
    return torch.cat(out)


def to_frame(images: Tensor, nrow: int | None = None) -> np.ndarray:
    """``[N, C, H, W]`` in [0, 1] -> uint8 grid ``[H', W', C]`` (one video frame)."""
    return image_grid(images, nrow=nrow)
