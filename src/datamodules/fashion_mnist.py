"""Fashion-MNIST (Xiao et al. 2017) in its published IDX files, train or test split.

Layout (as published by zalandoresearch/fashion-mnist; ``.gz`` or already unpacked)::

    <root>/train-images-idx3-ubyte.gz   60 000 images, 28x28 gray
    <root>/train-labels-idx1-ubyte.gz   their labels, 0..9
    <root>/t10k-images-idx3-ubyte.gz    10 000 test images
    <root>/t10k-labels-idx1-ubyte.gz

IDX (LeCun's MNIST format): a big-endian header ``0x00 0x00 <type> <ndim>`` (type ``0x08``:
unsigned bytes), one big-endian uint32 per dimension, then the values in C order. The images are
center-cropped to the target aspect and resized with ``resize_filter`` like every other reader
(``data.resolution=24``: box-filtered down, as StyleGAN2-in-a-Nutshell trained its Fashion-MNIST
model; 32: upsampled, ``allow_upscale``), and given 1, 3 (gray repeated) or 4 (opaque) channels.
``classes`` keeps the images of some classes only (the Nutshell's model saw one class, 6000 shoes);
labels keep their published indices 0..9.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from src.datamodules.dataset import BaseImageDataset
from src.datamodules.readers.decoding import RESIZE_FILTERS, fit
from src.utils.resolution import parse_size

__all__ = ["CLASSES", "FashionMNISTDataset", "class_indices", "read_idx"]

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (gzip-compressed or not) as a uint8 array of its shape; a bad file names itself."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: not a readable gzip file ({e})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{path}: not an IDX file (its first two bytes must be zero)")
    kind, ndim = raw[2], raw[3]
    if kind != 0x08:
        raise ValueError(f"{path}: IDX value type 0x{kind:02x}; only unsigned bytes (0x08) are supported")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: IDX header is cut short")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(shape)) if shape else 1
    if len(raw) - header != count:
        raise ValueError(f"{path}: IDX header says {list(shape)} ({count} bytes), the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def class_indices(classes: Sequence[int | str]) -> list[int]:
    """``data.classes`` (indices 0..9 or names from :data:`CLASSES`, any case) -> sorted unique indices."""
    if isinstance(classes, (str, int)):
        classes = [classes]
    out = set()
    lower = [c.lower() for c in CLASSES]
    for c in classes:
        if isinstance(c, str) and c.lower() in lower:
            out.add(lower.index(c.lower()))
        elif isinstance(c, int) and not isinstance(c, bool) and 0 <= c < len(CLASSES):
            out.add(c)
        else:
            names = ", ".join(f"{i} {n}" for i, n in enumerate(CLASSES))
            raise ValueError(f"Fashion-MNIST: data.classes: {c!r} is not a class; the classes are {names}")
    if not out:
        raise ValueError("Fashion-MNIST: data.classes=[] keeps no class; use null for all ten")
    return sorted(out)


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(
        f"Fashion-MNIST: missing {stem}.gz (or {stem}) in data.root={str(root)!r}; "
        "download the four files from https://github.com/zalandoresearch/fashion-mnist#get-the-data"
    )


class FashionMNISTDataset(BaseImageDataset):
    """One split as ``{"image": uint8 [C, H, W], "label": int64 []}``; labels are the 10 classes.

    An :class:`~src.datamodules.dataset.ImageDataset`: ``root`` is the folder of the IDX files;
    nothing is ignored or skipped (the IDX files are read whole when the data set is built).
    """

    channels: int
    resolution: tuple[int, int]
    root: Path

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        resolution: int | Sequence[int] = 28,
        channels: int = 1,
        resize_filter: str = "box",
        max_images: int | None = None,
        classes: Sequence[int | str] | None = None,
    ) -> None:
        if split not in FILES:
            raise ValueError(f"data.split={split!r}: allowed values are {', '.join(FILES)}")
        if channels not in (1, 3, 4):
            raise ValueError(f"channels={channels!r}: expected 1, 3 or 4")
        if resize_filter not in RESIZE_FILTERS:
            raise ValueError(f"data.resize_filter={resize_filter!r}: allowed values are {', '.join(RESIZE_FILTERS)}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"Fashion-MNIST: data.root={str(root)!r} is not a folder")
        self.split, self.channels, self.resize_filter = split, channels, resize_filter
        self.resolution = parse_size(resolution, "data.resolution")
        images_file, labels_file = (_find(self.root, stem) for stem in FILES[split])
        self._images = read_idx(images_file)
        self._labels = read_idx(labels_file)
        if self._images.ndim != 3 or self._labels.ndim != 1 or len(self._images) != len(self._labels):
            raise ValueError(
                f"Fashion-MNIST: {images_file.name} holds {list(self._images.shape)} and {labels_file.name} "
                f"{list(self._labels.shape)}; expected [N, 28, 28] images and [N] labels"
            )
        if int(self._labels.max(initial=0)) >= len(CLASSES):
            raise ValueError(f"Fashion-MNIST: {labels_file.name} has labels above {len(CLASSES) - 1}")
        self._keep = np.arange(len(self._labels))
        self.classes: list[int] | None = None
        if classes is not None:
            self.classes = class_indices(classes)
            self._keep = np.flatnonzero(np.isin(self._labels, self.classes))
            if len(self._keep) == 0:
                raise ValueError(f"Fashion-MNIST: data.classes={list(classes)}: no {split} images of these classes")
        self.size = len(self._keep) if max_images is None else min(int(max_images), len(self._keep))
        self.num_classes = len(CLASSES)

    def __len__(self) -> int:
        return self.size

    @property
    def label_counts(self) -> torch.Tensor:
        """Images per class, int64 ``[10]``, over the images used."""
        labels = self._labels[self._keep[: self.size]].astype(np.int64)
        return torch.bincount(torch.from_numpy(labels), minlength=self.num_classes)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.size:
            raise IndexError(index)
        index = int(self._keep[index])
        a = self._images[index]
        th, tw = self.resolution
        if a.shape != (th, tw):
            a = np.asarray(fit(PIL.Image.fromarray(a, mode="L"), th, tw, self.resize_filter))
        x = torch.from_numpy(np.array(a, dtype=np.uint8)).unsqueeze(0)
        if self.channels == 3:
            x = x.repeat(3, 1, 1)
        elif self.channels == 4:
            x = torch.cat([x.repeat(3, 1, 1), torch.full_like(x, 255)])
        return {"image": x, "label": torch.tensor(int(self._labels[index]), dtype=torch.int64)}

    def __repr__(self) -> str:
        return (
            f"FashionMNISTDataset(root={str(self.root)!r}, split={self.split!r}, resolution={list(self.resolution)}, "
            f"channels={self.channels}, images={len(self)})"
        )
