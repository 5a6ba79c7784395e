"""Image sizes: an int (square) or ``[height, width]``; for StyleGAN models each side ``4 * 2**k``.

StyleGAN2's synthesis starts from a small constant and doubles it per block, so every side
must be a power of two times 4. For non-square images (stylegan2-ada-pytorch trains square ones only)
the constant becomes ``[C, h0, w0]`` and every block keeps the factor 2.
"""

from __future__ import annotations

from collections.abc import Sequence


def _is_valid_side(side: int) -> bool:
    return side >= 4 and side % 4 == 0 and ((side // 4) & (side // 4 - 1)) == 0


def parse_size(value, key: str = "data.resolution") -> tuple[int, int]:
    """Return ``(height, width)`` from an int or a two-element sequence of positive ints.

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
    """Return ``(height, width)`` for a StyleGAN-family model: every side ``4 * 2**k``.

    Raises ``ValueError`` naming ``key`` when a side is not ``4 * 2**k``.
    """
    h, w = parse_size(value, key)
    for side in (h, w):
        if not _is_valid_side(side):
            raise ValueError(f"{key}={value!r}: every side must be 4 * 2**k (4, 8, 16, 32, 64, 128, ...); got {side}")
    return h, w


def base_shape(height: int, width: int) -> tuple[int, int, int]:
    """Return ``(h0, w0, num_doublings)``: the constant input's size and how many 2x blocks follow.

    The smaller side starts at 4; the other at ``4 * aspect``. Example: 64x128 -> (4, 8, 4).
    """
    k = (min(height, width) // 4).bit_length() - 1
    return height >> k, width >> k, k
