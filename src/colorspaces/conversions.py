"""The one color-space registry: RGB in [0, 1] <-> the space a model trains in.

Every model in gamut can train in any of these spaces (docs/architecture.md). The conversion runs on
the device, batched, after the batch is transferred (``ImageDataModule.on_after_batch_transfer``);
``decode`` turns model output back into display RGB before sample grids, VGG and Inception
(every color space needs a differentiable ``to_rgb()``).

Model space is always scaled to roughly ``[-1, 1]`` per channel, like RGB in StyleGAN2. The pairs
below follow kornia's style: a function and its inverse side by side, value ranges in the docstring.
The underlying conversions are kornia's (``kornia.color``):

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

All conversions run in float32 with autocast disabled whatever the input dtype: hue gradients
reach ~5e5 near grey pixels (kornia 0.9.0, measured), beyond fp16's range.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import kornia.color as KC
import torch
from torch import Tensor

__all__ = [
    "COLORSPACE_NAMES",
    "ColorSpace",
    "get_colorspace",
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
    h = torch.atan2(
        torch.where(nonzero, cy, torch.zeros_like(cy)), torch.where(nonzero, cx, torch.ones_like(cx))
    )
    h = torch.remainder(h, _TWO_PI)
    s = s.clamp(0.0, 1.0)
    v = ((v + 1.0) * 0.5).clamp(0.0, 1.0)
    return KC.hsv_to_rgb(torch.stack([h, s, v], dim=-3)).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------
# lab: CIE L*a*b* (D65, 2 deg)
# --------------------------------------------------------------------------------------------

_LAB_AB_SCALE = 110.0


def rgb_to_model_lab(rgb: Tensor) -> Tensor:
    """sRGB in ``[0, 1]`` -> ``(L/50 - 1, a/110, b/110)``.

    L in ``[0, 100]`` maps to ``[-1, 1]``; over the sRGB cube a is in ``[-86.2, 98.2]`` and b in
    ``[-107.9, 94.5]`` (kornia 0.9.0, measured), so a/110 and b/110 stay inside ``[-0.99, 0.9]``.
    """
    lab = KC.rgb_to_lab(rgb)
    lum, a, b = lab.unbind(dim=-3)
    return torch.stack([lum / 50.0 - 1.0, a / _LAB_AB_SCALE, b / _LAB_AB_SCALE], dim=-3)


def model_lab_to_rgb(x: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_model_lab` via kornia ``lab_to_rgb(clip=True)``; RGB in ``[0, 1]``.

    L is clamped to ``[0, 100]`` first; out-of-gamut colors are clipped (zero gradient there).
    """
    lum, a, b = x.unbind(dim=-3)
    lum = ((lum + 1.0) * 50.0).clamp(0.0, 100.0)
    lab = torch.stack([lum, a * _LAB_AB_SCALE, b * _LAB_AB_SCALE], dim=-3)
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


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _fp32_region(device: torch.device) -> Iterator[None]:
    """Disable autocast for ``device``'s type (and CPU's, which autocast also covers)."""
    with contextlib.ExitStack() as stack:
        for device_type in {device.type, "cpu"}:
            try:
                stack.enter_context(torch.autocast(device_type=device_type, enabled=False))
            except RuntimeError:  # a device type autocast does not know: nothing to disable
                pass
        yield


@dataclass(frozen=True)
class ColorSpace:
    """A color space a model trains in.

    Args:
        name: registry name (the ``colorspace`` config group's ``name``).
        channels: channels the model sees (``model.img_channels``).
        input_channels: channels of the uint8 image the reader must deliver (4 for rgba, else 3).
        to_model: RGB(A) ``[0, 1]`` -> model space (raw function; use :meth:`encode`).
        to_rgb: model space -> display RGB(A) ``[0, 1]`` (raw function; use :meth:`decode`).
    """

    name: str
    channels: int
    input_channels: int
    to_model: Callable[[Tensor], Tensor] = field(repr=False, compare=False)
    to_rgb: Callable[[Tensor], Tensor] = field(repr=False, compare=False)

    @property
    def output_channels(self) -> int:
        """Channels of :meth:`decode`'s output: 4 for rgba, else 3."""
        return 4 if self.input_channels == 4 else 3

    def encode(self, rgb: Tensor) -> Tensor:
        """``[N, input_channels, H, W]`` float in ``[0, 1]`` -> ``[N, channels, H, W]`` float32, ~``[-1, 1]``.

        Differentiable; computed in float32 with autocast disabled whatever ``rgb``'s dtype.
        """
        self._check(rgb, self.input_channels, "encode")
        with _fp32_region(rgb.device):
            return self.to_model(rgb.float())

    def decode(self, x: Tensor) -> Tensor:
        """``[N, channels, H, W]`` model space -> display RGB ``[N, 3, H, W]`` (RGBA for rgba) in ``[0, 1]``.

        Differentiable (zero gradient where clamped); float32 with autocast disabled.
        """
        self._check(x, self.channels, "decode")
        with _fp32_region(x.device):
            return self.to_rgb(x.float())

    def _check(self, x: Tensor, channels: int, what: str) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"colorspace {self.name!r}: {what} expects a Tensor, got {type(x).__name__}")
        if x.dim() < 3 or x.shape[-3] != channels:
            raise ValueError(
                f"colorspace {self.name!r}: {what} expects [N, {channels}, H, W], got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(
                f"colorspace {self.name!r}: {what} expects a floating-point tensor, got {x.dtype}"
                " (convert uint8 images with x.float() / 255 first)"
            )


_REGISTRY: dict[str, ColorSpace] = {
    cs.name: cs
    for cs in (
        ColorSpace("rgb", 3, 3, rgb_to_model_rgb, model_rgb_to_rgb),
        ColorSpace("gray", 1, 3, rgb_to_model_gray, model_gray_to_rgb),
        ColorSpace("rgba", 4, 4, rgb_to_model_rgb, model_rgb_to_rgb),
        ColorSpace("hsv", 3, 3, rgb_to_model_hsv, model_hsv_to_rgb),
        ColorSpace("hsv_polar", 3, 3, rgb_to_hsv_polar, hsv_polar_to_rgb),
        ColorSpace("lab", 3, 3, rgb_to_model_lab, model_lab_to_rgb),
        ColorSpace("ycbcr", 3, 3, rgb_to_model_ycbcr, model_ycbcr_to_rgb),
    )
}

COLORSPACE_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get_colorspace(name: str | ColorSpace, key: str = "colorspace.name") -> ColorSpace:
    """Look up a color space by name (a :class:`ColorSpace` is returned as is).

    Raises ``ValueError`` naming ``key``, the bad value and the allowed names.
    """
    if isinstance(name, ColorSpace):
        return name
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    raise ValueError(f"{key}={name!r}: unknown color space; choose one of {', '.join(COLORSPACE_NAMES)}")
