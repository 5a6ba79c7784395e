"""Interpolation videos: one latent walk, or a grid of independent walks (stylegan3 ``gen_video.py``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from src.latents.seeds import seed_latents
from src.visualize.latent_paths import keyframe_path
from src.visualize.render import render_rgb, to_frame


def interpolation_frames(
    model,
    seeds: list[int],
    frames_per_key: int = 30,
    space: str = "w",
    grid: tuple[int, int] = (1, 1),
    psi: float = 1.0,
    noise_mode: str = "const",
    loop: bool = True,
    class_idx: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    """Frames of a walk through ``seeds`` as keyframes, lerp in W or slerp in Z.

    With ``grid=(cols, rows)`` the seeds are dealt to the cells round-robin (each cell needs at least
    two), so every cell walks its own keyframes; all cells move in step. ``progress(done, total)``
    counts rendered images (frames times cells) after each batch; an exception it raises stops the work.
    """
    cols, rows = grid
    cells = cols * rows
    if len(seeds) < 2 * cells:
        raise ValueError(
            f"seeds: {len(seeds)} given, a {cols}x{rows} grid needs at least {2 * cells} (two keyframes per cell)"
        )
    per_cell = len(seeds) // cells
    c = model.labels_for(1, class_idx, seeds=seeds[:1])  # one class for the whole video
    paths = []
    for k in range(cells):
        cell_seeds = seeds[k::cells][:per_cell]
        z, _ = seed_latents(cell_seeds, model.G.z_dim)
        if space == "z":
            zp = keyframe_path(z, frames_per_key, "z", loop)
            with torch.no_grad():
                cc = None if c is None else c.expand(zp.shape[0], -1)
                ws = model.G.mapping(zp.to(model.device), cc, psi=psi)
        else:
            with torch.no_grad():
                cc = None if c is None else c.expand(z.shape[0], -1)
                keys = model.G.mapping(z.to(model.device), cc, psi=psi)
            ws = keyframe_path(keys.cpu(), frames_per_key, "w", loop)
        paths.append(ws.cpu())
    n = paths[0].shape[0]
    done = [0]

    def rendered(k: int) -> None:
        done[0] += k
        if progress is not None:  # always: rendered is passed only with a progress callback
            progress(done[0], n * cells)

    images = [render_rgb(model, p, noise_mode, progress=rendered if progress else None) for p in paths]  # [n, C, H, W]
    return [to_frame(torch.stack([img[i] for img in images]), nrow=cols) for i in range(n)]
