"""Sliced Wasserstein distance (SWD) between two image sets, as Karras et al. 2018 ("Progressive Growing of
GANs for Improved Quality, Stability, and Variation", section 5.1 and appendix D; tkarras/progressive_growing_of_gans
``metrics/sliced_wasserstein.py``) compute it: no feature network, so it runs anywhere with nothing to download.

Each image (uint8 RGB, [N, 3, H, W]) is split into a Laplacian pyramid (OpenCV's ``pyrDown``/``pyrUp``: the
5x5 binomial filter, mirrored borders) down to 16 px; from every level, ``per_image`` 7x7 neighbourhoods at
random positions are kept as descriptors of 3 x 7 x 7 values. Each set's descriptors of one level are
normalised per colour channel (their own mean and standard deviation), then the two sets' distributions are
compared by the sliced Wasserstein distance: project on ``dirs`` random unit directions, sort, take the mean
absolute difference of the sorted projections; averaged over ``repeats`` draws of directions. The result is
reported per level times 1e3, and their mean (``SWDx1e3_<res>``, ``SWDx1e3_avg`` in the paper's tables).

The paper's protocol is 16384 images per set, 128 descriptors per image and level, 4 repeats of 128
directions; lower is better. Non-square images work: a level is kept while its shorter side is at least 16.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

#: OpenCV's pyramid filter: the 5-tap binomial [1, 4, 6, 4, 1] / 16, as an outer product
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16

NHOOD = 7  # descriptor side (pixels)
PER_IMAGE = 128  # descriptors per image and level
REPEATS = 4  # draws of directions
DIRS = 128  # directions per draw
MIN_RES = 16  # the smallest level


def _blur(x: Tensor, gain: float) -> Tensor:
    """``x`` [N, C, H, W] convolved with the 5x5 binomial filter times ``gain``, mirrored borders
    (``d c b | a b c d | c b a``, scipy's ``mirror`` and OpenCV's ``BORDER_REFLECT_101``)."""
    k = (_BINOMIAL[:, None] * _BINOMIAL[None, :] * gain).to(x.dtype)
    c = x.shape[1]
    return F.conv2d(F.pad(x, [2, 2, 2, 2], mode="reflect"), k.expand(c, 1, 5, 5), groups=c)


def pyr_down(x: Tensor) -> Tensor:
    """Blur, then keep every other row and column (OpenCV's ``pyrDown``)."""
    return _blur(x, 1.0)[:, :, ::2, ::2]


def pyr_up(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Insert zeros between samples, blur with gain 4 (OpenCV's ``pyrUp``) and crop to ``size``."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return _blur(up, 4.0)[:, :, : size[0], : size[1]]


def num_levels(size: tuple[int, int]) -> int:
    """How many pyramid levels an image of ``size`` (H, W) has: halvings while the shorter side is >= 16."""
    side, levels = min(size), 0
    while side >= MIN_RES:
        levels, side = levels + 1, side // 2
    if levels == 0:
        raise ValueError(f"SWD needs images of at least {MIN_RES} px on the shorter side, got {size[0]}x{size[1]}")
    return levels


def laplacian_pyramid(images: Tensor, levels: int) -> list[Tensor]:
    """Float images [N, C, H, W] -> ``levels`` band-pass images, the last one the low-pass residual;
    their sum after upsampling each back (``reconstruct``) is the input."""
    pyramid = [images.float()]
    for _ in range(1, levels):
        low = pyr_down(pyramid[-1])
        pyramid[-1] = pyramid[-1] - pyr_up(low, (pyramid[-1].shape[2], pyramid[-1].shape[3]))
        pyramid.append(low)
    return pyramid


def reconstruct(pyramid: list[Tensor]) -> Tensor:
    """The inverse of :func:`laplacian_pyramid`."""
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = pyr_up(image, (band.shape[2], band.shape[3])) + band
    return image


def descriptors(level: Tensor, per_image: int, generator: torch.Generator, size: int = NHOOD) -> Tensor:
    """``per_image`` ``size`` x ``size`` neighbourhoods of each image of ``level`` [N, C, H, W] at uniform
    random centres at least ``size // 2`` from the border: [N * per_image, C, size, size], image-major."""
    n, _, h, w = level.shape
    r = size // 2
    cy = torch.randint(r, h - r, (n, per_image), generator=generator)
    cx = torch.randint(r, w - r, (n, per_image), generator=generator)
    offsets = torch.arange(-r, r + 1)
    rows = (cy[..., None] + offsets)[..., :, None]  # [n, per_image, size, 1]
    cols = (cx[..., None] + offsets)[..., None, :]  # [n, per_image, 1, size]
    img = torch.arange(n)[:, None, None, None]
    patches = level.permute(0, 2, 3, 1)[img, rows.to(level.device), cols.to(level.device)]  # [n, k, s, s, C]
    return patches.permute(0, 1, 4, 2, 3).reshape(n * per_image, level.shape[1], size, size)


def normalize(desc: Tensor) -> Tensor:
    """Descriptors [M, C, s, s] -> [M, C * s * s], each channel shifted and scaled to mean 0 and standard
    deviation 1 over the whole set (population standard deviation, as numpy's ``std``)."""
    mean = desc.mean(dim=(0, 2, 3), keepdim=True)
    std = desc.std(dim=(0, 2, 3), keepdim=True, correction=0)
    return ((desc - mean) / std).reshape(desc.shape[0], -1)


def sliced_wasserstein(a: Tensor, b: Tensor, repeats: int, dirs: int, generator: torch.Generator) -> float:
    """Mean over ``repeats`` draws of ``dirs`` random unit directions of the mean absolute difference of the
    sorted projections of ``a`` and ``b`` [M, D] (the 1-D Wasserstein-1 distance per direction)."""
    if a.shape != b.shape:
        raise ValueError(f"SWD compares sets of equal size, got {tuple(a.shape)} and {tuple(b.shape)}")
    total = 0.0
    for _ in range(repeats):
        d = torch.randn(a.shape[1], dirs, generator=generator, dtype=torch.float64).to(a.device)
        d = (d / d.square().sum(dim=0, keepdim=True).sqrt()).to(a.dtype)
        pa, _ = torch.sort(a @ d, dim=0)
        pb, _ = torch.sort(b @ d, dim=0)
        total += float((pa - pb).abs().mean(dtype=torch.float64))
    return total / repeats


@dataclass
class DescriptorSet:
    """The descriptors of one image set, level by level, gathered batch by batch (:meth:`add`)."""

    per_image: int = PER_IMAGE
    seed: int = 0
    levels: list[list[Tensor]] = field(default_factory=list)
    size: tuple[int, int] | None = None
    count: int = 0

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def add(self, images: Tensor) -> None:
        """A batch of uint8 (or float 0..255) images [N, C, H, W]; every batch must have the same size."""
        size = (int(images.shape[2]), int(images.shape[3]))
        if self.size is None:
            self.size = size
            self.levels = [[] for _ in range(num_levels(size))]
        elif size != self.size:
            raise ValueError(f"SWD: images of {size[0]}x{size[1]} after {self.size[0]}x{self.size[1]}")
        for store, band in zip(self.levels, laplacian_pyramid(images.cpu(), len(self.levels))):
            store.append(descriptors(band, self.per_image, self.generator))
        self.count += int(images.shape[0])

    def normalized(self) -> list[Tensor]:
        return [normalize(torch.cat(store)) for store in self.levels]


def swd(
    real: Iterable[Tensor],
    fake: Iterable[Tensor],
    per_image: int = PER_IMAGE,
    repeats: int = REPEATS,
    dirs: int = DIRS,
    seed: int = 0,
) -> dict[str, float]:
    """SWD x 1e3 between two sets of uint8 images given as batches [N, C, H, W] of one size (and the same
    count): ``{"SWDx1e3_<res>": ..., "SWDx1e3_avg": ...}``, one key per pyramid level, named by its
    shorter side (``<h>x<w>`` for non-square images)."""
    sets = [DescriptorSet(per_image, seed + i) for i in range(2)]
    for store, batches in zip(sets, (real, fake)):
        for images in batches:
            store.add(images)
    a, b = sets
    if a.size != b.size or a.count != b.count:
        raise ValueError(f"SWD compares equal sets: {a.count} images of {a.size} against {b.count} of {b.size}")
    assert a.size is not None
    generator = torch.Generator().manual_seed(seed + 2)
    out: dict[str, float] = {}
    h, w = a.size
    for da, db in zip(a.normalized(), b.normalized()):
        name = f"SWDx1e3_{h}" if h == w else f"SWDx1e3_{h}x{w}"
        out[name] = 1e3 * sliced_wasserstein(da, db, repeats, dirs, generator)
        h, w = (h + 1) // 2, (w + 1) // 2
    out["SWDx1e3_avg"] = sum(out.values()) / len(out)
    return out
