"""The one color-space registry: a :class:`ColorSpace` per name, looked up with :func:`get_colorspace`.

Every model in gamut can train in any of these spaces (docs/architecture.md). The conversion runs on
the device, batched, after the batch is transferred (``ImageDataModule.on_after_batch_transfer``);
``decode`` turns model output back into display RGB before sample grids, VGG and Inception
(every color space needs a differentiable ``to_rgb()``). The conversions themselves are in
:mod:`src.colorspaces.conversions`.

All conversions run in float32 with autocast disabled whatever the input dtype: hue gradients
reach ~5e5 near grey pixels (kornia 0.9.0, measured), beyond fp16's range.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from src.colorspaces import conversions as cv

__all__ = ["COLORSPACE_NAMES", "ColorSpace", "get_colorspace"]


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
        channels: channels the model sees (its networks' ``img_channels``).
        input_channels: channels of the uint8 image the reader must deliver (4 for rgba, else 3).
        to_model: RGB(A) ``[0, 1]`` -> model space (raw function; use :meth:`encode`).
        to_rgb: model space -> display RGB(A) ``[0, 1]`` (raw function; use :meth:`decode`).
        hue_channel: the channel holding hue as an angle (``[-1, 1)`` is one turn), or None; the
            augmentations mix it as an angle (:mod:`src.augment.hue`).
        affine_decode: decoding is ``(x + 1) / 2`` per channel, then a clamp to ``[0, 1]`` (gray
            repeated, alpha kept): NVIDIA's PPL reads such a model's raw output unclamped.
    """

    name: str
    channels: int
    input_channels: int
    to_model: Callable[[Tensor], Tensor] = field(repr=False, compare=False)
    to_rgb: Callable[[Tensor], Tensor] = field(repr=False, compare=False)
    hue_channel: int | None = None
    affine_decode: bool = False

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
            raise ValueError(f"colorspace {self.name!r}: {what} expects [N, {channels}, H, W], got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(
                f"colorspace {self.name!r}: {what} expects a floating-point tensor, got {x.dtype}"
                " (convert uint8 images with x.float() / 255 first)"
            )


_REGISTRY: dict[str, ColorSpace] = {
    cs.name: cs
    for cs in (
        ColorSpace("rgb", 3, 3, cv.rgb_to_model_rgb, cv.model_rgb_to_rgb, affine_decode=True),
        ColorSpace("gray", 1, 3, cv.rgb_to_model_gray, cv.model_gray_to_rgb, affine_decode=True),
        ColorSpace("rgba", 4, 4, cv.rgb_to_model_rgb, cv.model_rgb_to_rgb, affine_decode=True),
        ColorSpace("hsv", 3, 3, cv.rgb_to_model_hsv, cv.model_hsv_to_rgb, hue_channel=0),
        ColorSpace("hsv_polar", 3, 3, cv.rgb_to_hsv_polar, cv.hsv_polar_to_rgb),
        ColorSpace("lab", 3, 3, cv.rgb_to_model_lab, cv.model_lab_to_rgb),
        ColorSpace("ycbcr", 3, 3, cv.rgb_to_model_ycbcr, cv.model_ycbcr_to_rgb),
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
