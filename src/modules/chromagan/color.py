"""ChromaGAN's tensor conventions (pvitoria/ChromaGAN, dataClass.py): L_in in [0, 1] and normalised ab.

The data side delivers gamut's ``lab`` model space, ``x = (L/50 - 1, a/110, b/110)``
(:func:`src.colorspaces.rgb_to_model_lab`, kornia in fp32). ChromaGAN works in its own
scaling, derived exactly (linear maps, no rounding) from that:

* ``L_in = L / 100`` in ``[0, 1]``, the generator's input, tiled to 3 channels for VGG;
* ``ab_n`` in ``[0, 1]`` (the sigmoid's range), with two normalisations (``model.ab_norm``):

  ========= ============================================== =======================================
  name      forward                                        source
  ========= ============================================== =======================================
  opencv    ``(ab + 128) / 255`` (gray -> 0.502)           official Keras code (8-bit OpenCV Lab)
  minmax    ``(a + 87) / 186``, ``(b + 108) / 203``         jeniasivets' TinyImageNet port
  ========= ============================================== =======================================

Each function has its inverse beside it; the pairs invert exactly up to float rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.colorspaces import LAB_AB_SCALE

__all__ = ["AB_NORMS", "ab_to_unit", "unit_to_ab", "split_lab", "join_lab"]

# (offset, scale) per channel: ab_n = (ab + offset) / scale.
AB_NORMS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "opencv": ((128.0, 255.0), (128.0, 255.0)),
    "minmax": ((87.0, 186.0), (108.0, 203.0)),
}


def _constants(norm: str, like: Tensor) -> tuple[Tensor, Tensor]:
    if norm not in AB_NORMS:
        raise ValueError(f"model.ab_norm={norm!r}: allowed values are {', '.join(AB_NORMS)}")
    (oa, sa), (ob, sb) = AB_NORMS[norm]
    offset = torch.tensor([oa, ob], dtype=like.dtype, device=like.device).view(2, 1, 1)
    scale = torch.tensor([sa, sb], dtype=like.dtype, device=like.device).view(2, 1, 1)
    return offset, scale


def ab_to_unit(ab: Tensor, norm: str = "opencv") -> Tensor:
    """CIE ``(a, b)`` ``[..., 2, H, W]`` -> ``ab_n`` (in ``[0, 1]`` over the sRGB gamut)."""
    offset, scale = _constants(norm, ab)
    return (ab + offset) / scale


def unit_to_ab(ab_n: Tensor, norm: str = "opencv") -> Tensor:
    """Inverse of :func:`ab_to_unit`: ``ab_n`` -> CIE ``(a, b)``."""
    offset, scale = _constants(norm, ab_n)
    return ab_n * scale - offset


def split_lab(x: Tensor, norm: str = "opencv") -> tuple[Tensor, Tensor]:
    """gamut ``lab`` model space ``[N, 3, H, W]`` -> ``(L_in [N, 1, H, W], ab_n [N, 2, H, W])``."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a lab batch [N, 3, H, W], got {list(x.shape)}")
    x = x.float()
    l_in = (x[:, :1] + 1.0) * 0.5
    return l_in, ab_to_unit(x[:, 1:] * LAB_AB_SCALE, norm)


def join_lab(l_in: Tensor, ab_n: Tensor, norm: str = "opencv") -> Tensor:
    """Inverse of :func:`split_lab`: ``(L_in, ab_n)`` -> gamut ``lab`` model space ``[N, 3, H, W]``.

    ``ab_n`` may have another size than ``L_in`` (colorizing at full resolution): it is resized
    bilinearly to ``L_in``'s size first.
    """
    if ab_n.shape[-2:] != l_in.shape[-2:]:
        ab_n = torch.nn.functional.interpolate(ab_n.float(), size=l_in.shape[-2:], mode="bilinear", align_corners=False)
    ab = unit_to_ab(ab_n.float(), norm) / LAB_AB_SCALE
    return torch.cat([l_in.float() * 2.0 - 1.0, ab], dim=1)
