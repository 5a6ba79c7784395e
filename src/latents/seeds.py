"""Seeds -> latents: the one place that turns seed numbers into ``z`` (and SEGAN coordinates).

A seed ``s`` gives ``z = numpy.random.RandomState(s).randn(z_dim)``, the rule of NVIDIA's
``generate.py`` / ``gen_images.py`` (stylegan2-ada-pytorch, stylegan3), so a seed names the same
image here and there. Every tool, view and callback that draws latents from seeds goes through
:func:`seed_latents`; :func:`parse_seeds` reads the ``seeds=`` argument the tools share.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["parse_seeds", "seed_latents", "latents_from_seed"]


def parse_seeds(value) -> list[int]:
    """``'0-3,7'`` -> ``[0, 1, 2, 3, 7]``; an int or a list of ints passes through as a list.

    Ranges are inclusive; a leading ``-`` is a negative number, not a range. ValueError when nothing
    is left (``seeds=''``).
    """
    if isinstance(value, int):
        return [value]
    if not isinstance(value, str):
        return [int(v) for v in value]
    seeds: list[int] = []
    for part in value.split(","):
        part = part.strip()
        if "-" in part[1:]:
            lo, hi = part.split("-", 1) if not part.startswith("-") else (part, part)
            seeds.extend(range(int(lo), int(hi) + 1))
        elif part:
            seeds.append(int(part))
    if not seeds:
        raise ValueError(f"seeds={value!r}: expected e.g. 0-15 or 1,5,9")
    return seeds


def seed_latents(seeds: list[int], z_dim: int, num_layers: int = 0, q: int = 0) -> tuple[Tensor, Tensor | None]:
    """``z`` ``[len(seeds), z_dim]`` float32, one row per seed (``RandomState(seed).randn(z_dim)``).

    With ``num_layers * q > 0`` also SEGAN's sampled subspace coordinates ``[len(seeds), num_layers,
    q]``, drawn from the same stream right after ``z`` (so ``z`` is the same with or without them);
    otherwise ``None``.
    """
    extra = num_layers * q
    draws = [np.random.RandomState(s).randn(z_dim + extra) for s in seeds]
    z = torch.from_numpy(np.stack([d[:z_dim] for d in draws])).float()
    if extra == 0:
        return z, None
    coords = torch.from_numpy(np.stack([d[z_dim:] for d in draws])).float().reshape(len(seeds), num_layers, q)
    return z, coords


def latents_from_seed(seed: int, n: int, z_dim: int) -> Tensor:
    """``n`` latents ``[n, z_dim]`` float32 from one seed's stream (``RandomState(seed).randn(n, z_dim)``),
    as NVIDIA's projector draws its ``w_avg`` sample. Row 0 equals ``seed_latents([seed], z_dim)``."""
    return torch.from_numpy(np.random.RandomState(seed).randn(n, z_dim)).float()
