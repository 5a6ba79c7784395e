"""The bases of a style-based generator (StyleGAN2, SEGAN; StyleGAN3 next): what code outside its family reads.

A style-based generator maps ``z`` (and one-hot labels ``c``) to ``ws`` ``[N, num_ws, w_dim]`` with its
``mapping`` network and renders ``ws`` with its ``synthesis`` network (Karras et al. 2019, section 2).
The latent tools (projection, latent files, truncation, exports, the visual tools) need exactly these
sizes and the mapping's tracked ``w_avg``, whatever the family.

The classes declare those attributes (annotations only: no state; the one behaviour is the synthesis's
optional user input transform, which refuses by default and StyleGAN3 implements) and a family's
networks subclass them, so a type checker knows them on any style-based generator, and a caller
holding a plain ``nn.Module`` (a loaded checkpoint's ``G_ema``) can check what it holds with
``isinstance`` instead of probing attributes. ``nn.Module.__getattr__`` types every submodule,
parameter and buffer as ``Tensor | Module``; these annotations are what makes them precise.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, ClassVar

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

    #: whether :meth:`input_transform` works: the synthesis samples a continuous input (StyleGAN3's Fourier
    #: features) through a user-set 3x3 transform. False for a learned constant input (StyleGAN2, SEGAN).
    supports_input_transform: ClassVar[bool] = False

    def input_transform(self, matrix: Tensor) -> AbstractContextManager[None]:
        """Within the ``with`` block the synthesis samples its input at ``matrix @ (x, y, 1)``: ``matrix`` is
        the *inverse* of the affine transform applied to the image (NVlabs/stylegan3's ``input.transform``;
        ``[[cos a, sin a, -tx], [-sin a, cos a, -ty], [0, 0, 1]]`` rotates the image by ``a`` and moves it
        by ``(tx, ty)`` units of :meth:`input_transform_unit` pixels). The previous transform is restored on
        exit. The equivariance metrics (:mod:`src.metrics.equivariance`) use it."""
        raise NotImplementedError(f"{type(self).__name__} takes no input transform (its input is not continuous)")

    def input_transform_unit(self) -> int:
        """Output pixels per unit of :meth:`input_transform`'s translation (the same on both axes)."""
        raise NotImplementedError(f"{type(self).__name__} takes no input transform (its input is not continuous)")

    def skip_blocks(self) -> nn.ModuleList | None:
        """The blocks of a skip network (each returns ``(x, img)``; the image is the sum of their upsampled
        ToRGB outputs: StyleGAN2, SEGAN), which the layer view shows block by block; None for a network
        whose image comes from its last layer only (StyleGAN3), shown as per-layer activations."""
        return None


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
