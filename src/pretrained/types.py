"""What every importer returns: gamut's architecture arguments and state dicts under gamut's names."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


class UnsupportedNetworkError(ValueError):
    """The file holds a network that gamut's StyleGAN2 cannot represent exactly."""


@dataclass
class Imported:
    """A foreign checkpoint translated to gamut's ``StyleGAN2`` module.

    ``hparams`` are ``StyleGAN2`` constructor arguments (architecture only); ``G``/``D``/``G_ema``
    map gamut parameter names (without the ``G.`` prefix) to tensors. ``G`` None means "copy
    G_ema", ``D`` None means "keep the freshly initialised discriminator".
    """

    hparams: dict
    G_ema: dict[str, Tensor]
    G: dict[str, Tensor] | None = None
    D: dict[str, Tensor] | None = None
    notes: list[str] = field(default_factory=list)
    format: str = ""
