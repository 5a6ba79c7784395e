"""Hue as an angle through ADA's pixel-mixing stages (``colorspace=hsv``).

In ``hsv`` model space one channel holds hue linearly, one turn over ``[-1, 1)`` (``-1`` and ``+1``
are the same red, :mod:`src.colorspaces.conversions`). The geometric warp and the image-space
filter take weighted sums of neighbouring pixels; on that channel as a plain number, the sum of a
red written ``-0.999`` and a red written ``+0.999`` is ``0``: cyan. :func:`circular_hue` runs such a
stage on the hue's unit vector ``(cos(pi h), sin(pi h))`` instead and reads the angle back with
``atan2``, so the result is the weighted circular mean of the hues the stage mixes, and a constant
hue stays exactly that hue (a positive multiple of a unit vector has the same angle).

The vector is the unit one, not scaled by saturation: the stage then treats every channel on its
own, as it does in RGB; a constant hue is kept whatever the saturation channel holds (a fake's
saturation may be zero or below, where a saturation-weighted vector would lose the hue or turn it
half a turn). The saturation-weighted form is the ``hsv_polar`` colour space, where every stage is
linear already.

The angle comes back written as the representative nearest the linear result of the same stage
(``linear + wrap(angle - linear)``): an image the stage leaves unchanged keeps its values (a red at
``-1`` does not come back as ``+1 - 1e-7``), and the gradient is the circular one (the linear part
cancels). Where the mixed vector is (near) zero the hue is undefined (opposite hues in equal
weight) and the linear result is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

# below this squared length the mixed hue vector has no direction worth taking (atan2's gradient ~ 1/r)
MIN_SQUARED_LENGTH = 1e-8


def wrap(h: Tensor) -> Tensor:
    """``h`` modulo one turn of the model's hue channel, into ``[-1, 1)``."""
    return torch.remainder(h + 1, 2) - 1


def hue_to_vector(x: Tensor, channel: int) -> Tensor:
    """``[N, C, H, W]`` -> ``[N, C + 2, H, W]``: the channels as they are, then ``cos(pi h)`` and
    ``sin(pi h)`` of the hue channel ``h = x[:, channel]``."""
    angle = x[:, channel : channel + 1] * math.pi
    return torch.cat([x, torch.cos(angle), torch.sin(angle)], dim=1)


def vector_to_hue(y: Tensor, channel: int) -> Tensor:
    """Inverse of :func:`hue_to_vector` after a stage: ``[N, C + 2, H, W]`` -> ``[N, C, H, W]`` with
    the hue channel the angle of the last two channels (see the module docstring)."""
    channels = y.shape[1] - 2
    linear, c, s = y[:, channel], y[:, channels], y[:, channels + 1]
    defined = c * c + s * s > MIN_SQUARED_LENGTH
    # feed atan2 harmless values where the vector vanishes, so its gradient stays finite there
    angle = torch.atan2(torch.where(defined, s, torch.zeros_like(s)), torch.where(defined, c, torch.ones_like(c)))
    hue = torch.where(defined, linear + wrap(angle / math.pi - linear), linear)
    return torch.cat([y[:, :channel], hue[:, None], y[:, channel + 1 : channels]], dim=1)


def circular_hue(stage: Callable[[Tensor], Tensor], x: Tensor, channel: int) -> Tensor:
    """``stage`` (a per-channel linear map of pixels: warp, filter) run with hue channel ``channel``
    treated as an angle."""
    return vector_to_hue(stage(hue_to_vector(x, channel)), channel)
