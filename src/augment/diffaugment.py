"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training";
mit-han-lab/data-efficient-gans ``DiffAugment_pytorch.py``): the same random, differentiable
transforms on every image D sees, always on (no probability, no adaptation).

Policies, on centred RGB (``[-1, 1]``):

- ``color``: brightness ``+ U(-0.5, 0.5)``, saturation ``x 2 U(0, 1)`` about the pixel's channel
  mean, contrast ``x U(0.5, 1.5)`` about the image mean;
- ``translation``: an integer shift of up to 1/8 of each side (rounded), zero fill;
- ``cutout``: a zeroed square of half the side (rounded) at a random position.

Each sample draws its own values.
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.augment.ada import plain_draw

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO, CUTOUT_RATIO = 0.125, 0.5


def _uniform_int(draw, n: int, low: int, high: int, device) -> Tensor:
    """Integers in ``[low, high)``, shape ``[n, 1, 1]``."""
    return (torch.floor(draw(torch.rand, n, 1, 1, device=device) * (high - low)) + low).long()


def color(x: Tensor, draw=plain_draw) -> Tensor:
    n = x.shape[0]

    def rand() -> Tensor:
        return draw(torch.rand, n, 1, 1, 1, device=x.device).to(x.dtype)

    x = x + (rand() - 0.5)
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (rand() * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (rand() + 0.5) + mean


def translation(x: Tensor, draw=plain_draw) -> Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = _uniform_int(draw, n, -sy, sy + 1, x.device)
    dx = _uniform_int(draw, n, -sx, sx + 1, x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1) - dy  # output row i reads input row i - dy
    xs = torch.arange(w, device=x.device).view(1, 1, w) - dx
    inside = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).to(x.dtype)  # [n, h, w]
    index = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).flatten(1)  # [n, h*w]
    flat = x.flatten(2).gather(2, index[:, None, :].expand(-1, x.shape[1], -1))
    return flat.view_as(x) * inside[:, None]


def cutout(x: Tensor, draw=plain_draw) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    cy = _uniform_int(draw, n, 0, h + (1 - ch % 2), x.device) - ch // 2  # top-left corner
    cx = _uniform_int(draw, n, 0, w + (1 - cw % 2), x.device) - cw // 2
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    hole = (ys >= cy) & (ys < cy + ch) & (xs >= cx) & (xs < cx + cw)
    return x * (~hole).to(x.dtype)[:, None]


FUNCTIONS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: Tensor, policy: tuple[str, ...] | list[str] = POLICIES, draw=plain_draw) -> Tensor:
    """Apply the ``policy`` transforms in order (colour first, as the reference lists them).
    ``draw(fn, n, *shape, device)`` makes the random numbers (default: plain ``fn``)."""
    for name in policy:
        x = FUNCTIONS[name](x, draw)
    return x
