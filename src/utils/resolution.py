"""Image sizes: an int (square) or ``[height, width]``; for StyleGAN models ``(b_h * 2**k, b_w * 2**k)``.

StyleGAN2's synthesis starts from a small learned constant and doubles it per block; the
discriminator ends at that size. NVIDIA's code only trains square powers of two (a 4x4 constant).
gamut starts from a ``b_h x b_w`` constant with the same number ``k`` of doublings on both axes:
``k`` is the largest with ``2**k`` dividing both sides and a short base side of at least
:data:`MIN_BASE`; the size is valid when that short base side is at most :data:`MAX_BASE`.

========  ==========  ====  ================================================
size      base        k     note
========  ==========  ====  ================================================
256x256   4x4         6     powers of two: exactly NVIDIA's architecture
64x128    4x8         4     any 4 * 2**k per side, as before
24x24     3x3         3     Fashion-MNIST as StyleGAN2-in-a-Nutshell trained it
48x80     3x5         4     stamps
96x160    3x5         5
28x28     7x7         2
========  ==========  ====  ================================================

The per-block channel counts follow the block's index, as at the power of two with the same ``k``
(a 24x24 model has a 32x32 model's channels).

Parsed once: :func:`parse_size` is the one parser of a size (an int, a list, an OmegaConf
``ListConfig``, or an ``(h, w)`` tuple, which it returns as it is). Whatever holds a size (a model, a
DataModule, a dataset) keeps its ``(h, w)`` tuple, so comparing two sizes is ``==`` and no caller
parses a size it was handed. A family whose generator grows from a small constant checks that an
already parsed size has that form with :func:`check_base_shape` (:func:`parse_resolution` does both).
"""

from __future__ import annotations

from collections.abc import Sequence

MIN_BASE = 3  # the short side of the constant input: at least 3 ...
MAX_BASE = 7  # ... and at most 7 (3, 4, 5, 6 or 7 px; the long side may be any multiple of 2**k)


def base_shape(height: int, width: int) -> tuple[int, int, int]:
    """Return ``(b_h, b_w, k)``: the constant input's size and how many 2x blocks follow.

    ``k`` is the largest number of doublings that divides both sides and leaves a short base side
    of at least :data:`MIN_BASE` (for powers of two the short side starts at 4, as in NVIDIA's
    code). Examples: 64x128 -> (4, 8, 4), 24x24 -> (3, 3, 3), 48x80 -> (3, 5, 4). Validity (the short
    base side at most :data:`MAX_BASE`) is :func:`parse_resolution`'s.
    """
    k = 0
    while height % (2 << k) == 0 and width % (2 << k) == 0 and min(height, width) >> (k + 1) >= MIN_BASE:
        k += 1
    return height >> k, width >> k, k


def _is_valid(height: int, width: int) -> bool:
    if min(height, width) < MIN_BASE:
        return False
    b_h, b_w, _ = base_shape(height, width)
    return min(b_h, b_w) <= MAX_BASE


def nearest_valid(height: int, width: int, count: int = 3) -> list[tuple[int, int]]:
    """Up to ``count`` valid sizes closest to ``(height, width)`` (by the sum of the side changes)."""
    reach = max(8, max(height, width) // 4)
    found = [
        (abs(h - height) + abs(w - width), h, w)
        for h in range(max(MIN_BASE, height - reach), height + reach + 1)
        for w in range(max(MIN_BASE, width - reach), width + reach + 1)
        if (height == width) == (h == w) and _is_valid(h, w)
    ]
    return [(h, w) for _, h, w in sorted(found)[:count]]


def parse_size(value, key: str = "data.resolution") -> tuple[int, int]:
    """Return ``(height, width)`` from an int or a two-element sequence of positive ints (a list, an
    OmegaConf ``ListConfig``, a tuple: no conversion needed first).

    Any size: what data readers accept. Models with constraints check them on top
    (:func:`parse_resolution`). Raises ``ValueError`` naming ``key``.
    """
    if isinstance(value, bool):
        raise ValueError(f"{key}={value!r}: expected an int or [height, width]")
    if isinstance(value, int):
        h = w = value
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        h, w = value
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in (h, w)):
            raise ValueError(f"{key}={list(value)!r}: both sides must be integers")
    else:
        raise ValueError(f"{key}={value!r}: expected an int or [height, width]")
    if h < 1 or w < 1:
        raise ValueError(f"{key}={value!r}: sides must be positive")
    return int(h), int(w)


def parse_resolution(value, key: str = "data.resolution") -> tuple[int, int]:
    """Return ``(height, width)`` for a StyleGAN-family model: ``(b_h * 2**k, b_w * 2**k)`` with a
    short base side of 3 to 7 px (module docstring).

    Raises ``ValueError`` naming ``key`` and the nearest valid sizes otherwise.
    """
    return check_base_shape(parse_size(value, key), key, value)


def check_base_shape(size: tuple[int, int], key: str = "data.resolution", value=None) -> tuple[int, int]:
    """Return ``size`` (a parsed ``(height, width)``) when a StyleGAN-family model can have it:
    ``(b_h * 2**k, b_w * 2**k)`` with a short base side of 3 to 7 px (module docstring).

    Raises ``ValueError`` naming ``key`` (with ``value``, the size as the user wrote it, when given)
    and the nearest valid sizes otherwise.
    """
    h, w = size
    if not _is_valid(h, w):
        given = ([h, w] if h != w else h) if value is None else value
        b_h, b_w, k = base_shape(h, w)
        near = ", ".join(str(a) if a == b and isinstance(given, int) else f"[{a}, {b}]" for a, b in nearest_valid(h, w))
        raise ValueError(
            f"{key}={given!r}: StyleGAN models need sides b_h * 2**k and b_w * 2**k with a short base side of "
            f"{MIN_BASE} to {MAX_BASE} px (e.g. 24 = 3 * 8, [48, 80] = [3, 5] * 16, 256 = 4 * 64); "
            f"{h}x{w} would start from {b_h}x{b_w}. Nearest valid: {near}"
        )
    return size


def fp16_first_block(doublings: int, num_fp16_res: int) -> int:
    """The index of the first generator block (short side ``4 * 2**i``) that runs in fp16: the highest
    ``num_fp16_res`` resolutions, never the 4x4 base (NVIDIA's ``fp16_resolution = max(2 ** (log2(res) + 1
    - num_fp16_res), 8)``). ``doublings + 1`` when no block does."""
    if isinstance(num_fp16_res, bool) or not isinstance(num_fp16_res, int) or num_fp16_res < 0:
        raise ValueError(f"model.num_fp16_res={num_fp16_res!r}: expected an integer >= 0")
    if num_fp16_res > doublings + 1:
        raise ValueError(
            f"model.num_fp16_res={num_fp16_res}: this model has only {doublings + 1} resolutions "
            f"(4 x 2**0 .. 4 x 2**{doublings} on the short side); use 0..{doublings + 1}"
        )
    return max(doublings + 1 - num_fp16_res, 1) if num_fp16_res > 0 else doublings + 1
