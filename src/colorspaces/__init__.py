"""Color spaces as their own package (in the manner of kornia.color): RGB <-> the space a model trains in.

``conversions`` holds the function pairs (RGB in ``[0, 1]`` <-> model space, ~``[-1, 1]``);
``registry`` the :class:`ColorSpace` records, ``COLORSPACE_NAMES`` and :func:`get_colorspace`.
The names below are the package's public interface. It sits at the bottom of the layers
(docs/architecture.md): it imports nothing else from gamut.
"""

from src.colorspaces.conversions import (
    LAB_AB_SCALE,
    hsv_polar_to_rgb,
    model_gray_to_rgb,
    model_hsv_to_rgb,
    model_lab_to_rgb,
    model_rgb_to_rgb,
    model_ycbcr_to_rgb,
    rgb_to_hsv_polar,
    rgb_to_model_gray,
    rgb_to_model_hsv,
    rgb_to_model_lab,
    rgb_to_model_rgb,
    rgb_to_model_ycbcr,
)
from src.colorspaces.registry import COLORSPACE_NAMES, ColorSpace, get_colorspace

__all__ = [
    "LAB_AB_SCALE",
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
