"""Decoding: the bytes of one image file -> a uint8 tensor ``[C, H, W]`` at the target size.

:func:`decode_image` normalises every PIL mode to 1 (luminance), 3 (RGB) or 4 (RGBA) channels, then
center-crops to the target aspect ratio and resizes with a named filter. ``box`` is the default:
FFHQ-256 FIDs depend on the downscaling filter, and the StyleGAN2 paper numbers come from
box-filtered data (stylegan2-ada-pytorch ``dataset_tool.py --resize-filter=box``, issue #283). Images
smaller than the target are refused rather than silently upsampled, unless ``allow_upscale=True``.
Also here: which file names count as images (:func:`is_image_name`) and the errors a bad file raises.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import PIL.Image
import torch

__all__ = [
    "RESIZE_FILTERS",
    "IMAGE_EXTENSIONS",
    "BadImageError",
    "ImageTooSmallError",
    "decode_image",
    "convert_image",
    "is_image_name",
    "center_crop_box",
]

RESIZE_FILTERS: tuple[str, ...] = ("box", "lanczos", "bicubic", "bilinear", "nearest")
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")

_RESAMPLE = {
    "box": PIL.Image.Resampling.BOX,
    "lanczos": PIL.Image.Resampling.LANCZOS,
    "bicubic": PIL.Image.Resampling.BICUBIC,
    "bilinear": PIL.Image.Resampling.BILINEAR,
    "nearest": PIL.Image.Resampling.NEAREST,
}


class BadImageError(ValueError):
    """A file that cannot serve as a training image; the message names the file."""


class ImageTooSmallError(BadImageError):
    """An image smaller than the target resolution (after the aspect-ratio crop)."""


def is_image_name(name: str) -> bool:
    """True for a name with one of :data:`IMAGE_EXTENSIONS` (case-insensitive), not hidden."""
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def _to_8bit_gray(img: PIL.Image.Image, name: str) -> PIL.Image.Image:
    """High-bit-depth single-channel modes -> ``L``, scaled (not clipped) to 8 bit.

    ``I;16*`` and ``I`` are read as 16-bit data (0..65535 -> 0..255, rounded; ``I`` values outside
    that range are clipped), ``F`` as floats in ``[0, 1]``.
    """
    a = np.asarray(img)
    if img.mode == "F":
        a = np.nan_to_num(a.astype(np.float64), nan=0.0) * 255.0
    else:
        a = a.astype(np.float64) * (255.0 / 65535.0)
    return PIL.Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), mode="L")


def _normalise_mode(img: PIL.Image.Image, channels: int, name: str) -> PIL.Image.Image:
    """Any PIL mode -> ``L`` (channels 1), ``RGB`` (3) or ``RGBA`` (4), 8 bit per channel."""
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        img = _to_8bit_gray(img, name)
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("LA", "La"):
        img = img.convert("LA")
    elif mode in ("RGBA", "RGBa"):
        img = img.convert("RGBA")
    elif mode not in ("L", "RGB"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...
    mode = img.mode  # now one of L, LA, RGB, RGBA
    if channels == 1:
        # ITU-R 601-2 luma; alpha is dropped (no compositing), as dataset_tool's convert('L')
        return img if mode == "L" else img.convert("RGB").convert("L") if mode == "RGBA" else img.convert("L")
    if channels == 3:
        return img if mode == "RGB" else img.convert("RGB")  # alpha dropped, as dataset_tool
    return img if mode == "RGBA" else img.convert("RGBA")  # alpha 255 where the image has none


def _target_size(resolution: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(resolution, bool):  # an int to Python, but no size
        raise TypeError(f"resolution={resolution!r}: expected a side or [height, width]")
    if isinstance(resolution, int):
        h = w = resolution
    else:
        h, w = (int(s) for s in resolution)
    if h < 1 or w < 1:
        raise ValueError(f"resolution={resolution!r}: sides must be positive")
    return h, w


def center_crop_box(width: int, height: int, target_h: int, target_w: int) -> tuple[int, int, int, int]:
    """The largest centered ``(left, top, right, bottom)`` box of aspect ``target_w / target_h``."""
    if width * target_h > height * target_w:  # wider than the target: crop the sides
        cw, ch = max(1, round(height * target_w / target_h)), height
    else:  # taller (or equal): crop top and bottom
        cw, ch = width, max(1, round(width * target_h / target_w))
    left, top = (width - cw) // 2, (height - ch) // 2
    return left, top, left + cw, top + ch


def fit(img: PIL.Image.Image, height: int, width: int, resize_filter: str = "box") -> PIL.Image.Image:
    """Center-crop ``img`` to the aspect of ``height x width`` and resize it there with ``resize_filter``
    (a crop alone when the crop already has that size)."""
    box = center_crop_box(img.width, img.height, height, width)
    if (box[2] - box[0], box[3] - box[1]) == (width, height):
        return img.crop(box) if (width, height) != img.size else img
    return img.resize((width, height), resample=_RESAMPLE[resize_filter], box=box)


def _check_options(channels: int, resize_filter: str) -> None:
    if channels not in (1, 3, 4):
        raise ValueError(f"channels={channels!r}: expected 1, 3 or 4")
    if resize_filter not in _RESAMPLE:
        raise ValueError(f"resize_filter={resize_filter!r}: expected one of {', '.join(RESIZE_FILTERS)}")


def decode_image(
    data: bytes,
    channels: int,
    resolution: int | tuple[int, int] | None = None,
    resize_filter: str = "box",
    name: str = "<bytes>",
    *,
    crop: Sequence[int] | None = None,
    allow_upscale: bool = False,
) -> torch.Tensor:
    """Bytes of an image file -> uint8 tensor ``[channels, H, W]``.

    Args:
        data: the file's bytes (PNG, JPEG, BMP, WebP, TIFF, GIF (first frame), ...).
        channels: 1 (luminance, ITU-R 601-2), 3 (RGB) or 4 (RGBA; alpha 255 when the image has none).
            Alpha is dropped for 1 and 3 channels. ``P`` images with a transparent index give alpha 0
            there; ``I;16`` is scaled to 8 bit (65535 -> 255), ``F`` is read as ``[0, 1]``.
        resolution: ``(height, width)`` or an int; ``None`` keeps the decoded size. The image is
            center-cropped to the target aspect ratio, then resized with ``resize_filter``
            (alpha-premultiplied for RGBA, as Pillow does).
        resize_filter: one of :data:`RESIZE_FILTERS`; ``box`` (area averaging) by default.
        name: the file's name, used in error messages.
        crop: ``[x, y, width, height]``: cut this box out before the rest (see :func:`convert_image`).
        allow_upscale: resize images smaller than the target up instead of raising.

    Raises:
        BadImageError: zero-byte, truncated, corrupt or non-image data, or (as
            :class:`ImageTooSmallError`) an image smaller than the target.
    """
    _check_options(channels, resize_filter)
    if not data:
        raise BadImageError(f"{name}: empty file (0 bytes)")
    try:
        with PIL.Image.open(io.BytesIO(data)) as opened:
            opened.load()  # decodes fully; truncated data raises here (LOAD_TRUNCATED_IMAGES stays off)
            img = _normalise_mode(opened, channels, name)
    except BadImageError:
        raise
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, EOFError,
            PIL.Image.DecompressionBombError) as e:  # fmt: skip
        raise BadImageError(f"{name}: cannot decode image ({type(e).__name__}: {e})") from e
    return convert_image(img, channels, resolution, resize_filter, name, crop=crop, allow_upscale=allow_upscale)


def convert_image(
    img: PIL.Image.Image,
    channels: int,
    resolution: int | tuple[int, int] | None = None,
    resize_filter: str = "box",
    name: str = "<image>",
    *,
    crop: Sequence[int] | None = None,
    allow_upscale: bool = False,
) -> torch.Tensor:
    """A decoded PIL image (a file read by :func:`decode_image`, or a video frame) -> uint8 ``[channels, H, W]``.

    ``crop`` (``[x, y, width, height]`` in the image's pixels) cuts that box out first; the rest is
    :func:`decode_image`'s: the channel rule, the center crop to the target aspect, the resize, and
    the refusal to upsample. A box that does not lie inside the image raises :class:`BadImageError`.
    """
    _check_options(channels, resize_filter)
    img = _normalise_mode(img, channels, name)
    if crop is not None:
        x, y, cw, ch = (int(v) for v in crop)
        if x < 0 or y < 0 or cw < 1 or ch < 1 or x + cw > img.width or y + ch > img.height:
            raise BadImageError(
                f"{name}: crop=[{x}, {y}, {cw}, {ch}] (x, y, width, height) does not lie inside the "
                f"{img.width}x{img.height} (WxH) image"
            )
        img = img.crop((x, y, x + cw, y + ch))
    if resolution is not None:
        th, tw = _target_size(resolution)
        box = center_crop_box(img.width, img.height, th, tw)
        cw, ch = box[2] - box[0], box[3] - box[1]
        if (cw < tw or ch < th) and not allow_upscale:
            raise ImageTooSmallError(
                f"{name}: image {img.width}x{img.height} (WxH) is smaller than the target {tw}x{th} "
                f"(crop {cw}x{ch}); images are not upsampled (allow_upscale=True to do so)"
            )
        img = fit(img, th, tw, resize_filter)

    a = np.array(img, dtype=np.uint8)  # a writable copy
    if a.ndim == 2:
        return torch.from_numpy(a).unsqueeze(0)
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()
