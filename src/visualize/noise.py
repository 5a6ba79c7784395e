"""Noise view: the same w with one layer's noise resampled at a time (cf. stylegan3 visualizer.py).

Row k shows ``variants`` images in which only noise layer k gets fresh N(0, 1) maps (every other
layer keeps its stored 'const' map), followed by the per-pixel standard deviation over the variants
(normalised to its own max): where that layer's noise acts, and how strongly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.latents.files import noise_layers, noise_override


@torch.no_grad()
def noise_variants(model, ws: Tensor, variants: int = 4, seed: int = 0) -> dict[str, Tensor]:
    """``{layer name: [variants, C, H, W]}`` decoded RGB for one code ``ws`` ``[1, num_ws, w_dim]``."""
    if ws.shape[0] != 1:
        raise ValueError(f"the noise view takes one code, got {ws.shape[0]}")
    gen = torch.Generator().manual_seed(seed)
    layers = noise_layers(model.G)
    if not layers:
        raise ValueError(f"{type(model.G).__name__} has no noise inputs: the noise view has nothing to show")
    ws_v = ws.to(model.device).expand(variants, -1, -1)
    out = {}
    for name, layer in layers.items():
        maps = torch.randn(variants, *layer.noise_const.shape[-2:], generator=gen).to(model.device)
        with noise_override(model.G, {name: maps}):
            img = model.G.synthesis(ws_v, noise_mode="const").float()
        out[name] = model.colorspace.decode(img)[:, :3].cpu()
    return out


def noise_view_grid(variants: dict[str, Tensor]) -> tuple[Tensor, int]:
    """Rows = noise layers; columns = the variants then their std map. Returns images and columns."""
    rows = []
    for imgs in variants.values():
        std = imgs.std(dim=0, keepdim=True).mean(dim=1, keepdim=True)
        std = (std / std.amax().clamp_min(1e-8)).repeat(1, 3, 1, 1)
        rows.append(torch.cat([imgs, std]))
    cols = next(iter(variants.values())).shape[0] + 1
    return torch.cat(rows), cols
