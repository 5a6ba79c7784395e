"""Latent paths for interpolation videos: lerp in W, slerp in Z, looping keyframes (stylegan3 gen_video.py).

A path is a list of keyframe latents; :func:`keyframe_path` returns ``frames`` latents per keyframe
transition, looping back to the first keyframe (stylegan3 ``gen_video.py``'s ``--num-keyframes``,
``--w-frames``), so the video plays seamlessly on repeat.
"""

from __future__ import annotations

import torch
from torch import Tensor

SPACES = ("w", "z")


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Linear interpolation along the first axis of ``t`` (``t`` ``[T]`` -> ``[T, *a.shape]``)."""
    t = t.view(-1, *([1] * a.ndim)).to(a)
    return a + (b - a) * t


def slerp(a: Tensor, b: Tensor, t: Tensor, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation of the last axis of ``a`` and ``b`` (Gaussian z keep their norm)."""
    t = t.view(-1, *([1] * a.ndim)).to(a)
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + eps, 1 - eps))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def keyframe_path(keys: Tensor, frames: int, space: str = "w", loop: bool = True) -> Tensor:
    """``keys`` ``[K, ...]`` -> ``[K * frames, ...]`` (``loop``) or ``[(K - 1) * frames + 1, ...]``.

    ``space='w'`` interpolates linearly, ``'z'`` spherically.
    """
    if space not in SPACES:
        raise ValueError(f"space={space!r}: choose one of {', '.join(SPACES)}")
    if keys.shape[0] < 2:
        raise ValueError("an interpolation needs at least two keyframes (seeds)")
    if frames < 1:
        raise ValueError(f"frames={frames}: must be at least 1")
    fn = lerp if space == "w" else slerp
    t = torch.arange(frames, dtype=torch.float32) / frames
    pairs = keys.shape[0] if loop else keys.shape[0] - 1
    parts = [fn(keys[i], keys[(i + 1) % keys.shape[0]], t) for i in range(pairs)]
    if not loop:
        parts.append(keys[-1:])
    return torch.cat(parts)
