"""Projection targets: image files -> RGB tensors at the generator's size, with notes on conversions.

stylegan2-ada-pytorch's projector.py target handling (center crop to the generator's aspect ratio, Lanczos
resize) generalised to non-square generators and to every color space: the target goes through the model's
color space and back (``decode(encode(rgb))``), so a gray model is compared with the target's luma
and an RGBA model with an opaque target.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")


@dataclass
class Target:
    """One target: its name (file stem), RGB ``[3, H, W]`` in [0, 1] at the generator's size, notes."""

    name: str
    rgb: Tensor
    notes: list[str]


def list_targets(path: str | Path, key: str = "target") -> list[Path]:
    """An image file, or every image in a folder (sorted, not recursive); errors name ``key``."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{key}={str(path)!r}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"{key}={str(path)!r}: no such file or folder")
    return [path]


def center_crop_box(width: int, height: int, aspect: float) -> tuple[int, int, int, int]:
    """Largest centered box of ``aspect`` = width / height inside a ``width`` x ``height`` image."""
    if width / height > aspect:
        w = round(height * aspect)
        left = (width - w) // 2
        return left, 0, left + w, height
    h = round(width / aspect)
    top = (height - h) // 2
    return 0, top, width, top + h


def load_target(path: Path, resolution: tuple[int, int], colorspace, key: str = "target") -> Target:
    """Read ``path``, crop to the generator's aspect ratio, resize (Lanczos), pass through ``colorspace``."""
    h, w = resolution
    notes = []
    try:
        with Image.open(path) as im:
            im.load()
            mode, size = im.mode, im.size
            rgb_im = im.convert("RGB")
    except Exception as e:  # not an image, truncated
        raise ValueError(f"{key}={str(path)!r} is not a readable image ({type(e).__name__}: {e})") from None
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}.get(mode)
    if channels != colorspace.channels or mode not in ("RGB", "L", "RGBA"):
        notes.append(
            f"{path.name}: {mode} image ({channels or '?'} channels) converted for the "
            f"{colorspace.name} generator ({colorspace.channels} channel(s))"
        )
    if size != (w, h):
        box = center_crop_box(*size, w / h)
        if (box[2] - box[0], box[3] - box[1]) != size:
            notes.append(f"{path.name}: {size[0]}x{size[1]} center-cropped to {box[2] - box[0]}x{box[3] - box[1]}")
        rgb_im = rgb_im.crop(box).resize((w, h), Image.LANCZOS)
        notes.append(f"{path.name}: resized to {w}x{h} (the generator's size)")
    rgb = torch.from_numpy(np.asarray(rgb_im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return Target(path.stem, to_model_rgb(rgb[None], colorspace)[0], notes)


def to_model_rgb(rgb: Tensor, colorspace) -> Tensor:
    """RGB ``[N, 3, H, W]`` -> what the model can show of it, as RGB: ``decode(encode(.))``, 3 channels."""
    x = rgb
    if colorspace.input_channels == 4:
        x = torch.cat([rgb, torch.ones_like(rgb[:, :1])], dim=1)
    return display_rgb(colorspace.decode(colorspace.encode(x)))


def display_rgb(decoded: Tensor) -> Tensor:
    """Decoded model output (RGB or RGBA, [0, 1]) -> RGB for VGG and PSNR (alpha dropped)."""
    return decoded[:, :3]
