"""The user's translate/rotate of a generated image, as the tools and views apply it to any style generator.

NVlabs/stylegan3 ``gen_images.py`` moves and turns an alias-free generator's image by sampling the
synthesis input (continuous Fourier features) through a 3x3 matrix: its ``make_transform(translate,
angle)`` builds ``[[c, s, tx], [-s, c, ty], [0, 0, 1]]`` (``c, s`` the cosine and sine of ``angle`` in
degrees) and the script stores that matrix's inverse in ``G.synthesis.input.transform``.
:func:`user_transform` computes the same inverse, and :func:`transformed` hands it to the synthesis through
the family-neutral contract of :class:`~src.nn.style_generator.StyleSynthesis` (``supports_input_transform``,
``input_transform(matrix)``), so no tool or view needs to know which family it holds.

``translate`` is in units of the synthesis's :meth:`~src.nn.style_generator.StyleSynthesis.input_transform_unit`
(one unit = the image width for square power-of-two models), ``rotate`` in degrees, the meanings of
``gen_images.py``'s ``--translate`` and ``--rotate``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor

from src.nn.style_generator import StyleSynthesis

__all__ = ["IDENTITY", "is_identity", "parse_rotate", "parse_translate", "transformed", "user_transform"]

IDENTITY: tuple[tuple[float, float], float] = ((0.0, 0.0), 0.0)  # (translate, rotate) that changes nothing


def parse_translate(value: object, key: str = "translate") -> tuple[float, float]:
    """``"X,Y"`` (``gen_images.py``'s ``--translate`` format) or ``[X, Y]`` -> ``(x, y)``; a ``ValueError``
    naming ``key`` otherwise."""
    parts: Sequence[object] = []
    if isinstance(value, str):
        parts = value.replace(" ", "").split(",")
    elif isinstance(value, Sequence):
        parts = value
    try:
        if len(parts) != 2:
            raise ValueError
        x, y = float(str(parts[0])), float(str(parts[1]))
    except ValueError:
        raise ValueError(f"{key}={value!r}: expected X,Y (e.g. 0.3,1)") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"{key}={value!r}: expected finite numbers")
    return x, y


def parse_rotate(value: object, key: str = "rotate") -> float:
    """An angle in degrees (``gen_images.py``'s ``--rotate``); a ``ValueError`` naming ``key`` otherwise."""
    try:
        angle = float(str(value))
    except ValueError:
        raise ValueError(f"{key}={value!r}: expected an angle in degrees (e.g. 45)") from None
    if not math.isfinite(angle):
        raise ValueError(f"{key}={value!r}: expected a finite angle")
    return angle


def is_identity(translate: Sequence[float], rotate: float) -> bool:
    """Whether ``(translate, rotate)`` leaves the image as it is (a whole turn counts as none)."""
    return float(translate[0]) == 0.0 and float(translate[1]) == 0.0 and float(rotate) % 360.0 == 0.0


def user_transform(translate: Sequence[float] = (0.0, 0.0), rotate: float = 0.0) -> Tensor:
    """float64 ``[3, 3]``: the inverse of ``make_transform(translate, rotate)`` (NVlabs/stylegan3
    ``gen_images.py``), the value that script copies into ``synthesis.input.transform``."""
    a = math.radians(float(rotate))
    c, s = math.cos(a), math.sin(a)
    forward = np.array([[c, s, float(translate[0])], [-s, c, float(translate[1])], [0.0, 0.0, 1.0]])
    return torch.from_numpy(np.linalg.inv(forward))


@contextmanager
def transformed(
    synthesis: StyleSynthesis, translate: Sequence[float] = (0.0, 0.0), rotate: float = 0.0
) -> Iterator[None]:
    """Within the block ``synthesis`` renders its images moved by ``translate`` and turned by ``rotate`` degrees.

    A synthesis network with an input transform always gets one (the identity for no move), as
    ``gen_images.py`` always sets it; one without (a learned constant input) runs unchanged for the
    identity and refuses anything else with a ``ValueError`` naming the keys."""
    if not synthesis.supports_input_transform:
        if not is_identity(translate, rotate):
            raise ValueError(
                f"translate={float(translate[0]):g},{float(translate[1]):g} rotate={float(rotate):g}: this "
                f"generator's synthesis ({type(synthesis).__name__}) starts from a learned constant and takes no "
                "input transform; translate/rotate need a generator with a continuous input (Fourier features)"
            )
        yield
        return
    with synthesis.input_transform(user_transform(translate, rotate)):
        yield
