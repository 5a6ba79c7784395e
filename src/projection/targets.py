"""Projection targets: image files -> RGB tensors at the generator's size, with notes on conversions.

stylegan2-ada-pytorch's projector.py target handling (center crop to the generator's aspect ratio, Lanczos
resize), done by the training data's decoder, generalised to non-square generators and to every color
space: the target goes through the model's color space and back (``decode(encode(rgb))``), so a gray
model is compared with the target's luma and an RGBA model with an opaque target.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from src.datamodules.readers import IMAGE_EXTENSIONS, center_crop_box, decode_image

IMAGE_SUFFIXES = IMAGE_EXTENSIONS  # the training data's image files


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


def load_target(path: Path, resolution: tuple[int, int], colorspace, key: str = "target") -> Target:
    """Read ``path`` with the training data's decoder (:func:`src.datamodules.readers.decode_image`: any
    mode -> RGB, center crop to the generator's aspect ratio, Lanczos resize, small images enlarged),
    then pass it through ``colorspace``. ValueError naming ``key`` and the file when it is not an image."""
    h, w = resolution
    notes = []
    try:
        data = Path(path).read_bytes()
        with Image.open(io.BytesIO(data)) as im:  # the header only: mode and size for the notes
            mode, size = im.mode, im.size
        pixels = decode_image(data, 3, (h, w), "lanczos", path.name, allow_upscale=True)
    except (OSError, ValueError) as e:  # unreadable, not an image, truncated (BadImageError is a ValueError)
        raise ValueError(f"{key}={str(path)!r} is not a readable image ({type(e).__name__}: {e})") from None
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}.get(mode)
    if channels != colorspace.channels or mode not in ("RGB", "L", "RGBA"):
        notes.append(
            f"{path.name}: {mode} image ({channels or '?'} channels) converted for the "
            f"{colorspace.name} generator ({colorspace.channels} channel(s))"
        )
    if size != (w, h):
        box = center_crop_box(*size, h, w)
        if (box[2] - box[0], box[3] - box[1]) != size:
            notes.append(f"{path.name}: {size[0]}x{size[1]} center-cropped to {box[2] - box[0]}x{box[3] - box[1]}")
        notes.append(f"{path.name}: resized to {w}x{h} (the generator's size)")
    rgb = pixels.float() / 255.0
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
