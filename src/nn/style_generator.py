"""The bases of a style-based generator (StyleGAN2, SEGAN; StyleGAN3 next): what code outside its family reads.

A style-based generator maps ``z`` (and one-hot labels ``c``) to ``ws`` ``[N, num_ws, w_dim]`` with its
``mapping`` network and renders ``ws`` with its ``synthesis`` network (Karras et al. 2019, section 2).
The latent tools (projection, latent files, truncation, exports, the visual tools) need exactly these
sizes and the mapping's tracked ``w_avg``, whatever the family.

The classes declare those attributes (annotations only: no state, no behaviour) and a family's
networks subclass them, so a type checker knows them on any style-based generator, and a caller
holding a plain ``nn.Module`` (a loaded checkpoint's ``G_ema``) can check what it holds with
``isinstance`` instead of probing attributes. ``nn.Module.__getattr__`` types every submodule,
parameter and buffer as ``Tensor | Module``; these annotations are what makes them precise.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

__all__ = ["NoiseLayer", "StyleGenerator", "StyleMapping", "StyleSynthesis", "style_generator"]


class StyleMapping(nn.Module):
    """``mapping(z, c, psi=1, cutoff=None, update_w_avg=False)`` -> ``ws`` ``[N, num_ws, w_dim]``."""

    z_dim: int  # columns of z (0: labels only)
    c_dim: int  # columns of the one-hot labels c (0: unconditional)
    w_dim: int
    num_ws: int  # how many w the synthesis network reads (ws is w broadcast num_ws times)
    w_avg: Tensor  # [w_dim], the tracked mean of w: the centre of the truncation trick (a buffer)

    def track_w_avg(self, w: Tensor, world_size: int = 1) -> None:
        """Move ``w_avg`` toward the mean of mapped ``w`` ``[N, w_dim]`` over ``world_size`` processes."""
        raise NotImplementedError(f"{type(self).__name__} does not track w_avg")


class StyleSynthesis(nn.Module):
    """``synthesis(ws, noise_mode="random"|"const"|"none", ...)`` -> images ``[N, img_channels, H, W]``
    in the model's colour space."""

    w_dim: int
    num_ws: int
    img_channels: int


class NoiseLayer(nn.Module):
    """A synthesis layer that adds per-pixel noise (Karras et al. 2019, section 3.2). With ``use_noise``,
    ``noise_const`` ``[H, W]`` is its fixed map (noise mode ``const``), a buffer the latent tools swap
    for their own maps for a while (:func:`src.latents.files.noise_override`)."""

    use_noise: bool
    noise_const: Tensor


class StyleGenerator(nn.Module):
    """``G(z, c, psi, cutoff, **synthesis_options)`` = ``synthesis(mapping(z, c, psi, cutoff), **options)``.

    ``init_kwargs``: the constructor's arguments, which an export records to rebuild the generator.
    """

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    img_channels: int
    resolution: tuple[int, int]  # (height, width) of the images
    mapping: StyleMapping
    synthesis: StyleSynthesis
    init_kwargs: dict[str, Any]


def style_generator(module: nn.Module) -> StyleGenerator:
    """``module`` itself, checked to be a :class:`StyleGenerator` (a ``TypeError`` naming its class if not):
    for a caller that holds a generator typed as a plain ``nn.Module``."""
    if not isinstance(module, StyleGenerator):
        raise TypeError(f"{type(module).__qualname__} is not a style-based generator (src.nn.style_generator)")
    return module
