"""What every importer returns: gamut's architecture arguments and state dicts under gamut's names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


class UnsupportedNetworkError(ValueError):
    """The file holds a network that gamut's families (StyleGAN2, StyleGAN3) cannot represent exactly."""


@dataclass
class Imported:
    """A foreign checkpoint translated to one of gamut's modules.

    ``family`` names the architecture (``stylegan2``: gamut's ``StyleGAN2``; ``stylegan3``: gamut's
    ``StyleGAN3``, configs T and R), ``hparams`` its module's constructor arguments (architecture
    only, plus ``img_channels``); ``G``/``D``/``G_ema`` map gamut parameter names (without the ``G.``
    prefix) to tensors. ``G`` None means "copy G_ema", ``D`` None means "keep the freshly initialised
    discriminator". ``source_names`` gives a tensor's name in the source file where it differs
    (for messages); ``layout`` holds what the source stored about its layers beyond tensors, for the
    family's own checks (StyleGAN3: each synthesis layer's sizes, rates, cutoffs and padding).
    """

    hparams: dict
    G_ema: dict[str, Tensor]
    G: dict[str, Tensor] | None = None
    D: dict[str, Tensor] | None = None
    notes: list[str] = field(default_factory=list)
    format: str = ""
    family: str = "stylegan2"
    source_names: dict[str, str] = field(default_factory=dict)
    layout: dict[str, dict[str, Any]] = field(default_factory=dict)
