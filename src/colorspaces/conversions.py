"""RGB in ``[0, 1]`` <-> model space, one pair of functions per color space (after kornia.color).

Each pair is a function and its inverse side by side, with the value ranges in the docstring;
:mod:`src.colorspaces.registry` wraps them with dtype and shape checks. Model space is always
scaled to roughly ``[-1, 1]`` per channel, like RGB in StyleGAN2. The underlying conversions are
kornia's (``kornia.color``):

========= ======== =============================================== ====================================
name      channels model space                                     notes
========= ======== =============================================== ====================================
rgb       3        ``2 rgb - 1``
gray      1        ``2 Y - 1``, Y = kornia ``rgb_to_grayscale``    reader gives RGB; decode repeats Y x3
rgba      4        ``2 rgba - 1``                                  decode keeps alpha (4 channels)
hsv       3        ``2 H/(2 pi) - 1, 2 S - 1, 2 V - 1``            hue wraps at +-1 (NVlabs/stylegan3 #210)
hsv_polar 3        ``S cos H, S sin H, 2 V - 1``                   decode with atan2
lab       3        ``L/50 - 1, a/110, b/110``                      decode with ``lab_to_rgb(clip=True)``
ycbcr     3        ``2 Y - 1, 2 Cb - 1, 2 Cr - 1`` (BT.601)
========= ======== =============================================== ====================================
"""

from __future__ import annotations

import math

import kornia.color as KC
import torch
from torch import Tensor

__all__ = [
    "LAB_AB_SCALE",
    "rgb_to_model_rgb",
    "model_rgb_to_rgb",
    "rgb_to_model_gray",
    "model_gray_to_rgb",
    "rgb_to_model_hsv",
    "model_hsv_to_rgb",
    "rgb_to_hsv_polar",
    "hsv_polar_to_rgb",
    "rgb_to_model_lab",
    "model_lab_to_rgb",
    "rgb_to_model_ycbcr",
    "model_ycbcr_to_rgb",
]

_TWO_PI = 2.0 * math.pi


# --------------------------------------------------------------------------------------------
# rgb / rgba: a linear map
# --------------------------------------------------------------------------------------------


def rgb_to_model_rgb(rgb: Tensor) -> Tensor:
    """RGB (or RGBA) in ``[0, 1]`` -> ``2 x - 1`` in ``[-1, 1]``; any channel count."""
    return rgb * 2.0 - 1.0


def model_rgb_to_rgb(x: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_model_rgb`, clamped to ``[0, 1]``; any channel count."""
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------
# gray: BT.601 luma, one channel
# --------------------------------------------------------------------------------------------


def rgb_to_model_gray(rgb: Tensor) -> Tensor:
    """RGB ``[*, 3, H, W]`` in ``[0, 1]`` -> luma ``[*, 1, H, W]`` as ``2 Y - 1`` in ``[-1, 1]``.

    ``Y = 0.299 R + 0.587 G + 0.114 B`` (kornia ``rgb_to_grayscale``).
    """
    return KC.rgb_to_grayscale(rgb) * 2.0 - 1.0


def model_gray_to_rgb(x: Tensor) -> Tensor:
    """Luma ``[*, 1, H, W]`` in ``[-1, 1]`` -> display RGB ``[*, 3, H, W]`` in ``[0, 1]`` (Y repeated)."""
    y = ((x + 1.0) * 0.5).clamp(0.0, 1.0)
    return torch.cat([y, y, y], dim=-3)


# --------------------------------------------------------------------------------------------
# hsv: linear channels (hue wraps around at +-1)
# --------------------------------------------------------------------------------------------


def rgb_to_model_hsv(rgb: Tensor) -> Tensor:
    """RGB in ``[0, 1]`` -> ``(2 H/(2 pi) - 1, 2 S - 1, 2 V - 1)``, each in ``[-1, 1]``.

    kornia's ``rgb_to_hsv`` gives H in radians ``[0, 2 pi)``, S and V in ``[0, 1]``. Hue is circular:
    ``-1`` and ``+1`` are the same red; prefer ``hsv_polar`` for training.
    """
    hsv = KC.rgb_to_hsv(rgb)
    h, s, v = hsv.unbind(dim=-3)
    return torch.stack([h / _TWO_PI * 2.0 - 1.0, s * 2.0 - 1.0, v * 2.0 - 1.0], dim=-3)


def model_hsv_to_rgb(x: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_model_hsv`: hue is wrapped modulo one turn, S and V clamped to ``[0, 1]``.

    Returns RGB in ``[0, 1]``.
    """
    h, s, v = x.unbind(dim=-3)
    h = torch.remainder((h + 1.0) * 0.5, 1.0) * _TWO_PI
    s = ((s + 1.0) * 0.5).clamp(0.0, 1.0)
    v = ((v + 1.0) * 0.5).clamp(0.0, 1.0)
    return KC.hsv_to_rgb(torch.stack([h, s, v], dim=-3)).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------
# hsv_polar: the HSV cylinder in Cartesian form (no wrap-around, grey has no hue)
# --------------------------------------------------------------------------------------------


def rgb_to_hsv_polar(rgb: Tensor) -> Tensor:
    """RGB in ``[0, 1]`` -> ``(S cos H, S sin H, 2 V - 1)``, each in ``[-1, 1]``.

    H in radians. No wrap-around (hue 0.999 and 0.001 turns land next to each other) and grey
    pixels (S = 0) sit at the origin, so their undefined hue does not matter.
    """
    hsv = KC.rgb_to_hsv(rgb)
    h, s, v = hsv.unbind(dim=-3)
    return torch.stack([s * torch.cos(h), s * torch.sin(h), v * 2.0 - 1.0], dim=-3)


def hsv_polar_to_rgb(x: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv_polar`: ``H = atan2(y, x)``, ``S = |(x, y)|`` clamped to ``[0, 1]``.

    Returns RGB in ``[0, 1]``. At the origin (grey) the radius and angle are defined as 0 with zero
    gradient, so ``sqrt``/``atan2`` never produce NaN gradients.
    """
    cx, cy, v = x.unbind(dim=-3)
    r2 = cx * cx + cy * cy
    nonzero = r2 > 0
    # Double-where: feed harmless values to sqrt/atan2 where r2 == 0 so their backward stays finite.
    s = torch.where(nonzero, torch.sqrt(torch.where(nonzero, r2, torch.ones_like(r2))), torch.zeros_like(r2))
    h = torch.atan2(torch.where(nonzero, cy, torch.zeros_like(cy)), torch.where(nonzero, cx, torch.ones_like(cx)))
    h = torch.remainder(h, _TWO_PI)
    s = s.clamp(0.0, 1.0)
    v = ((v + 1.0) * 0.5).clamp(0.0, 1.0)
    return KC.hsv_to_rgb(torch.stack([h, s, v], dim=-3)).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------
# lab: CIE L*a*b* (D65, 2 deg)
# --------------------------------------------------------------------------------------------

#: the ``lab`` model space stores ``a / LAB_AB_SCALE`` and ``b / LAB_AB_SCALE``
LAB_AB_SCALE = 110.0


def rgb_to_model_lab(rgb: Tensor) -> Tensor:
    """sRGB in ``[0, 1]`` -> ``(L/50 - 1, a/110, b/110)``.

    L in ``[0, 100]`` maps to ``[-1, 1]``; over the sRGB cube a is in ``[-86.2, 98.2]`` and b in
    ``[-107.9, 94.5]`` (kornia 0.9.0, measured), so a/110 and b/110 stay inside ``[-0.99, 0.9]``.
    """
    lab = KC.rgb_to_lab(rgb)
    lum, a, b = lab.unbind(dim=-3)
    return torch.stack([lum / 50.0 - 1.0, a / LAB_AB_SCALE, b / LAB_AB_SCALE], dim=-3)


def model_lab_to_rgb(x: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_model_lab` via kornia ``lab_to_rgb(clip=True)``; RGB in ``[0, 1]``.

    L is clamped to ``[0, 100]`` first; out-of-gamut colors are clipped (zero gradient there).
    """
    lum, a, b = x.unbind(dim=-3)
    lum = ((lum + 1.0) * 50.0).clamp(0.0, 100.0)
    lab = torch.stack([lum, a * LAB_AB_SCALE, b * LAB_AB_SCALE], dim=-3)
    return KC.lab_to_rgb(lab, clip=True)


# --------------------------------------------------------------------------------------------
# ycbcr: BT.601, full range
# --------------------------------------------------------------------------------------------


def rgb_to_model_ycbcr(rgb: Tensor) -> Tensor:
    """RGB in ``[0, 1]`` -> ``2 (Y, Cb, Cr) - 1`` in ``[-1, 1]`` (kornia BT.601, Cb/Cr offset 0.5)."""
    return KC.rgb_to_ycbcr(rgb) * 2.0 - 1.0


def model_ycbcr_to_rgb(x: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_model_ycbcr`; RGB clamped to ``[0, 1]``."""
    return KC.ycbcr_to_rgb((x + 1.0) * 0.5).clamp(0.0, 1.0)
