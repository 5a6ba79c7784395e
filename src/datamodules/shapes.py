"""The built-in procedural dataset: colored geometric shapes, no download needed.

Every image is a pure function of ``(seed, index)``: a per-index ``numpy.random.Generator`` seeded
with ``[seed, index]`` draws the layout (never the global RNG), and the image is rendered with
vectorised signed distances on broadcast coordinate grids, anti-aliased as
``alpha = clip(0.5 - d, 0, 1)`` with ``d`` in pixels (negative inside). Any resolution
size works, square or not (``[height, width]``).

Each image shows ``1..max_shapes`` shapes (30-70% of the short side when alone) in saturated
colors over a solid or linear-gradient background whose luminance differs from the labelled
shape's by at least 0.25, so the images stay readable in gray too. The label is the kind of the largest shape,
which is drawn last (on top). With ``channels=4`` the background is transparent: alpha is the
shape coverage and RGB the (un-premultiplied) shape color, 0 where alpha is 0.

Options that make the data easier (all off by default, which gives the images above): ``kinds``
restricts the shapes drawn, ``size_range`` sets their extent, ``rotate=False`` keeps them upright,
``position_jitter`` pulls their centers toward the middle, ``palette`` draws their colors from a
fixed list and ``background`` paints one solid color behind them (experiment=quickstart uses these).
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from src.datamodules.dataset import BaseImageDataset
from src.utils.resolution import parse_size

__all__ = ["CLASSES", "Shape", "ShapesLayout", "ShapesDataset"]

CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "ring", "cross", "diamond")

# Rotation period per kind (radians): the angle is drawn uniformly in [0, period).
_ROTATION_PERIOD: dict[str, float] = {
    "circle": 0.0,
    "square": math.pi / 2,
    "triangle": 2 * math.pi / 3,
    "ring": 0.0,
    "cross": math.pi / 2,
    "diamond": math.pi,
}
_SIZE_RANGE_SINGLE = (0.3, 0.7)  # extent as a fraction of the short side, one shape per image
_SIZE_RANGE_MULTI = (0.25, 0.5)  # several shapes per image
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # BT.601, as kornia's rgb_to_grayscale


def _luma(rgb: Sequence[float]) -> float:
    return float(np.dot(_LUMA, np.asarray(rgb, dtype=np.float32)))


def _color(value, key: str) -> tuple[float, float, float]:
    try:
        rgb = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        rgb = ()
    if len(rgb) != 3 or not all(0.0 <= v <= 1.0 for v in rgb):
        raise ValueError(f"data.dataset.{key}: {value!r} is not an [r, g, b] color in [0, 1]")
    return rgb


@dataclass(frozen=True)
class Shape:
    """One shape: kind index into :data:`CLASSES`, center ``(cx, cy)`` and ``size`` (its extent,
    about twice its radius) in pixels, rotation in radians, RGB color in ``[0, 1]``, and for rings
    the inner radius as a fraction of the outer one."""

    kind: int
    cx: float
    cy: float
    size: float
    angle: float
    color: tuple[float, float, float]
    inner: float = 0.0


@dataclass(frozen=True)
class ShapesLayout:
    """What one image shows: shapes in drawing order (the last is the largest, the label) and the
    background, either solid (``color1 == color2``) or a linear gradient along ``gradient_angle``."""

    shapes: tuple[Shape, ...]
    color1: tuple[float, float, float]
    color2: tuple[float, float, float]
    gradient_angle: float

    @property
    def label(self) -> int:
        return self.shapes[-1].kind


class ShapesDataset(BaseImageDataset):
    """Procedural colored shapes; ``__getitem__`` returns ``{"image": uint8 [C, H, W], "label": int64 []}``.

    An :class:`~src.datamodules.dataset.ImageDataset` with ``channels``, ``resolution``,
    ``num_classes`` (6) and ``label_counts``; generated, so no ``root`` and no bad files.

    Args:
        size: number of images (indices ``0..size-1``).
        resolution: int or ``[height, width]``, any size (key ``data.resolution``).
        seed: dataset seed; images depend only on ``(seed, index)``.
        channels: 3 = RGB, 4 = RGBA (alpha = coverage, transparent background), 1 = luminance.
        max_shapes: up to this many shapes per image (1 by default); the label is the largest's kind.
        kinds: draw only these kinds (names from :data:`CLASSES`); labels stay indices into
            :data:`CLASSES`. ``None``: all six.
        size_range: ``[lo, hi]``, the extent as a fraction of the short side, for every shape.
            ``None``: 0.3-0.7 alone, 0.25-0.5 with others.
        rotate: ``False`` draws every shape upright (angle 0).
        position_jitter: in ``[0, 1]``; how far a center may stray from the image center, as a
            fraction of the room the shape leaves (1: anywhere the shape fits, 0: centered).
        palette: ``[[r, g, b], ...]`` in ``[0, 1]``; shape colors are drawn from it. ``None``:
            random saturated colors.
        background: ``[r, g, b]`` in ``[0, 1]``, one solid background color for every image
            (ignored with ``channels=4``). ``None``: solid or gradient, contrasting with the shape.
    """

    CLASSES: tuple[str, ...] = CLASSES
    num_classes = len(CLASSES)  # a class attribute, like the protocol's defaults (not in vars(), which the cache reads)
    channels: int
    resolution: tuple[int, int]

    def __init__(
        self,
        size: int = 10000,
        resolution: int | Sequence[int] = 32,
        seed: int = 0,
        channels: int = 3,
        max_shapes: int = 1,
        kinds: Sequence[str] | None = None,
        size_range: Sequence[float] | None = None,
        rotate: bool = True,
        position_jitter: float = 1.0,
        palette: Sequence[Sequence[float]] | None = None,
        background: Sequence[float] | None = None,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"data.dataset.size={size!r}: expected a positive integer")
        if channels not in (1, 3, 4):
            raise ValueError(f"data.dataset.channels={channels!r}: expected 1 (gray), 3 (RGB) or 4 (RGBA)")
        if isinstance(max_shapes, bool) or not isinstance(max_shapes, int) or max_shapes < 1:
            raise ValueError(f"data.dataset.max_shapes={max_shapes!r}: expected a positive integer")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"data.dataset.seed={seed!r}: expected an integer")
        self.kinds: tuple[int, ...] | None = None
        if kinds is not None:
            kinds = [kinds] if isinstance(kinds, str) else list(kinds)
            unknown = [k for k in kinds if k not in CLASSES]
            if not kinds or unknown:
                raise ValueError(f"data.dataset.kinds={kinds!r}: expected a non-empty list of {list(CLASSES)}")
            self.kinds = tuple(CLASSES.index(k) for k in kinds)
        self.size_range: tuple[float, float] | None = None
        if size_range is not None:
            lo, hi = (float(v) for v in size_range) if len(size_range) == 2 else (0.0, -1.0)
            if not 0.0 < lo <= hi <= 1.0:
                raise ValueError(f"data.dataset.size_range={list(size_range)!r}: expected [lo, hi], 0 < lo <= hi <= 1")
            self.size_range = (lo, hi)
        if not isinstance(rotate, bool):
            raise ValueError(f"data.dataset.rotate={rotate!r}: expected true or false")
        self.rotate = rotate
        if isinstance(position_jitter, bool) or not 0.0 <= float(position_jitter) <= 1.0:
            raise ValueError(f"data.dataset.position_jitter={position_jitter!r}: expected a number in [0, 1]")
        self.position_jitter = float(position_jitter)
        self.palette = None if palette is None else tuple(_color(c, "palette") for c in palette)
        if self.palette is not None and not self.palette:
            raise ValueError("data.dataset.palette=[]: expected at least one [r, g, b] color")
        self.background = None if background is None else _color(background, "background")
        self.size = size
        self.resolution: tuple[int, int] = parse_size(resolution, "data.resolution")
        self.seed = seed
        self.channels = channels
        self.max_shapes = max_shapes
        self._label_counts: torch.Tensor | None = None
        h, w = self.resolution
        # Pixel centers in pixel units, broadcast as [1, W] and [H, 1]: no full grids needed.
        self._xs = (np.arange(w, dtype=np.float32) + 0.5)[None, :]
        self._ys = (np.arange(h, dtype=np.float32) + 0.5)[:, None]

    def __len__(self) -> int:
        return self.size

    @property
    def label_counts(self) -> torch.Tensor:
        """Images per class, int64 ``[num_classes]``, counted from the layouts (no rendering; about
        0.1 ms an image, once)."""
        if self._label_counts is None:
            labels = torch.tensor([self.layout(i).label for i in range(self.size)], dtype=torch.int64)
            self._label_counts = torch.bincount(labels, minlength=self.num_classes)
        return self._label_counts

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = int(index)
        if not 0 <= index < self.size:
            raise IndexError(f"ShapesDataset index {index} out of range [0, {self.size})")
        layout = self.layout(index)
        image = self.render(layout)
        return {"image": torch.from_numpy(image), "label": torch.tensor(layout.label, dtype=torch.int64)}

    def extra_repr(self) -> str:
        text = (
            f"size={self.size}, resolution={list(self.resolution)}, seed={self.seed}, "
            f"channels={self.channels}, max_shapes={self.max_shapes}"
        )
        options = {
            "kinds": None if self.kinds is None else [CLASSES[k] for k in self.kinds],
            "size_range": None if self.size_range is None else list(self.size_range),
            "rotate": self.rotate,
            "position_jitter": self.position_jitter,
            "palette": None if self.palette is None else [list(c) for c in self.palette],
            "background": None if self.background is None else list(self.background),
        }
        defaults = {
            "kinds": None,
            "size_range": None,
            "rotate": True,
            "position_jitter": 1.0,
            "palette": None,
            "background": None,
        }
        return text + "".join(f", {k}={v}" for k, v in options.items() if v != defaults[k])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    # ----------------------------------------------------------------------------------------
    # layout: all randomness lives here
    # ----------------------------------------------------------------------------------------

    def layout(self, index: int) -> ShapesLayout:
        """Draw image ``index``'s layout from a generator seeded with ``[seed, index]``."""
        rng = np.random.default_rng([self.seed % 2**64, int(index)])
        h, w = self.resolution
        short = min(h, w)
        count = 1 if self.max_shapes == 1 else int(rng.integers(1, self.max_shapes + 1))
        lo, hi = _SIZE_RANGE_SINGLE if count == 1 else _SIZE_RANGE_MULTI
        if self.size_range is not None:
            lo, hi = self.size_range
        shapes = []
        for _ in range(count):
            if self.kinds is None:
                kind = int(rng.integers(len(CLASSES)))
            else:
                kind = self.kinds[int(rng.integers(len(self.kinds)))]
            size = float(rng.uniform(lo, hi)) * short
            radius = 0.5 * size
            angle = float(rng.uniform(0.0, 1.0)) * _ROTATION_PERIOD[CLASSES[kind]]
            if not self.rotate:
                angle = 0.0
            cx = float(rng.uniform(radius, w - radius))
            cy = float(rng.uniform(radius, h - radius))
            if self.position_jitter != 1.0:  # shrink the offset from the middle
                cx = 0.5 * w + (cx - 0.5 * w) * self.position_jitter
                cy = 0.5 * h + (cy - 0.5 * h) * self.position_jitter
            hue, sat, val = float(rng.random()), float(rng.uniform(0.75, 1.0)), float(rng.uniform(0.8, 1.0))
            color = colorsys.hsv_to_rgb(hue, sat, val)
            if self.palette is not None:
                color = self.palette[int(rng.integers(len(self.palette)))]
            inner = float(rng.uniform(0.45, 0.6))
            shapes.append(Shape(kind, cx, cy, size, angle, color, inner))
        shapes.sort(key=lambda s: s.size)  # largest last: drawn on top, gives the label

        # Background: a hue away from the labelled shape's, with a luminance at least 0.25 away from
        # it (luma of HSV is V * (1 - S * (1 - luma of the pure hue))), so gray images stay readable.
        top = shapes[-1]
        top_hue = colorsys.rgb_to_hsv(*top.color)[0]
        top_luma = _luma(top.color)
        dark = top_luma >= 0.5
        colors = []
        for _ in range(2):
            hue = (top_hue + float(rng.uniform(0.25, 0.75))) % 1.0
            pure = _luma(colorsys.hsv_to_rgb(hue, 1.0, 1.0))
            if dark:
                sat = float(rng.uniform(0.3, 0.9))
                val = min(float(rng.uniform(0.1, 0.45)), (top_luma - 0.25) / (1.0 - sat * (1.0 - pure)))
            else:
                val = float(rng.uniform(0.85, 1.0))
                sat_max = max(0.0, (1.0 - (top_luma + 0.25) / val) / (1.0 - pure))
                sat = min(float(rng.uniform(0.1, 0.5)), sat_max)
            colors.append(colorsys.hsv_to_rgb(hue, sat, val))
        gradient = bool(rng.random() < 0.5)
        gradient_angle = float(rng.uniform(0.0, 2 * math.pi))
        if self.background is not None:
            return ShapesLayout(tuple(shapes), self.background, self.background, 0.0)
        return ShapesLayout(tuple(shapes), colors[0], colors[1] if gradient else colors[0], gradient_angle)

    # ----------------------------------------------------------------------------------------
    # rendering: deterministic, vectorised
    # ----------------------------------------------------------------------------------------

    def signed_distance(self, shape: Shape) -> np.ndarray:
        """Signed distance in pixels (negative inside) from every pixel center to ``shape``, ``[H, W]``."""
        dx = self._xs - np.float32(shape.cx)  # [1, W]
        dy = self._ys - np.float32(shape.cy)  # [H, 1]
        r = np.float32(0.5 * shape.size)
        name = CLASSES[shape.kind]
        if name == "circle":
            return np.sqrt(dx * dx + dy * dy) - r
        if name == "ring":
            inner = r * np.float32(shape.inner)
            mid, half = 0.5 * (r + inner), 0.5 * (r - inner)
            return np.abs(np.sqrt(dx * dx + dy * dy) - mid) - half
        c, s = np.float32(math.cos(shape.angle)), np.float32(math.sin(shape.angle))
        if name == "triangle":
            # Equilateral with circumradius 1.1 r (about as wide as the other kinds): intersection
            # of three half-planes at the inradius, half the circumradius.
            angles = [shape.angle + k * 2 * math.pi / 3 for k in range(3)]
            d0, d1, d2 = (np.float32(math.cos(t)) * dx + np.float32(math.sin(t)) * dy for t in angles)
            return np.maximum(np.maximum(d0, d1), d2) - np.float32(0.55) * r
        qx = np.abs(c * dx + s * dy)  # [H, W], local frame
        qy = np.abs(c * dy - s * dx)
        if name == "square":
            b = np.float32(0.8) * r
            return np.maximum(qx, qy) - b
        if name == "cross":
            arm = np.float32(0.3) * r
            return np.minimum(np.maximum(qx - r, qy - arm), np.maximum(qx - arm, qy - r))
        if name == "diamond":
            a, b = r, np.float32(0.6) * r  # half-diagonals along local x and y
            return (qx * b + qy * a - a * b) / np.float32(math.hypot(a, b))
        raise AssertionError(f"unknown shape kind {shape.kind}")

    def render(self, layout: ShapesLayout) -> np.ndarray:
        """Render ``layout`` to a uint8 array ``[channels, H, W]``."""
        h, w = self.resolution
        # float32 throughout (numpy's stubs widen the blends below to float64; numpy itself does not)
        premult: np.ndarray = np.zeros((3, h, w), dtype=np.float32)  # premultiplied shape color
        cover: np.ndarray = np.zeros((h, w), dtype=np.float32)  # union coverage (alpha)
        for shape in layout.shapes:
            alpha = np.clip(0.5 - self.signed_distance(shape), 0.0, 1.0)
            color = np.asarray(shape.color, dtype=np.float32)[:, None, None]
            premult = alpha * color + (1.0 - alpha) * premult
            cover = alpha + (1.0 - alpha) * cover

        if self.channels == 4:
            visible = cover >= 0.5 / 255.0  # alpha that does not round to 0 in uint8
            rgb = np.where(visible, premult / np.maximum(cover, 1e-6), 0.0)
            out = np.concatenate([rgb, cover[None]], axis=0)
        else:
            c1 = np.asarray(layout.color1, dtype=np.float32)[:, None, None]
            c2 = np.asarray(layout.color2, dtype=np.float32)[:, None, None]
            if layout.color1 == layout.color2:
                background = np.broadcast_to(c1, (3, h, w))
            else:
                gc, gs = math.cos(layout.gradient_angle), math.sin(layout.gradient_angle)
                extent = abs(w * gc) + abs(h * gs)
                # position along the gradient direction, 0 at one side of the image and 1 at the other
                t = (self._xs - 0.5 * w) * np.float32(gc / extent) + (self._ys - 0.5 * h) * np.float32(gs / extent)
                t = t + np.float32(0.5)
                background = c1 + (c2 - c1) * t[None]
            out = premult + (1.0 - cover) * background
            if self.channels == 1:
                out = np.tensordot(_LUMA, out, axes=1)[None]
        return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
