"""Rotation and translation videos: fixed latents rendered while the input transform sweeps.

An alias-free generator (Karras et al. 2021) turns and moves its image through the transform of its
continuous input (NVlabs/stylegan3 ``gen_images.py``'s ``--rotate`` / ``--translate``, applied here by
:func:`src.nn.input_transform.transformed`); sweeping it for fixed latents shows how equivariant the
network is: textures that should travel with the content but stay glued to the screen are the
"texture sticking" the paper's videos show. Frame ``i`` of ``frames`` renders ``rotate`` and
``translate`` interpolated linearly from their start to their end values at ``t = i / frames``
(``loop``: the end equals the next loop's start, e.g. 0 to 360 degrees) or ``i / (frames - 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from src.nn.input_transform import transformed
from src.visualize.render import render_rgb, to_frame

Vec2 = tuple[float, float]


def sweep_steps(
    frames: int, rotate: Vec2 = (0.0, 360.0), translate: tuple[Vec2, Vec2] = ((0.0, 0.0), (0.0, 0.0)), loop: bool = True
) -> list[tuple[Vec2, float]]:
    """``frames`` ``(translate, rotate)`` pairs from the start values to the end values (linear)."""
    if frames < 1 or (not loop and frames < 2):
        raise ValueError(f"frames={frames}: a sweep needs at least {1 if loop else 2}")
    (x0, y0), (x1, y1) = translate
    steps = []
    for i in range(frames):
        t = i / frames if loop else i / (frames - 1)
        steps.append(((x0 + (x1 - x0) * t, y0 + (y1 - y0) * t), rotate[0] + (rotate[1] - rotate[0]) * t))
    return steps


def transform_frames(
    model,
    ws: Tensor,
    steps: Sequence[tuple[Vec2, float]],
    noise_mode: str = "const",
    nrow: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    """One uint8 frame per step: the codes ``ws`` ``[N, num_ws, w_dim]`` rendered under the step's
    ``(translate, rotate)`` in a grid of ``nrow`` columns (default near-square). ``progress(done, total)``
    counts rendered images; an exception it raises stops the work. A generator without an input
    transform refuses any step that is not the identity (``ValueError``)."""
    synthesis = model.G.synthesis
    cols = nrow or math.ceil(math.sqrt(ws.shape[0]))
    out = []
    with torch.no_grad():
        for k, (translate, rotate) in enumerate(steps):
            with transformed(synthesis, translate, rotate):
                images = render_rgb(model, ws, noise_mode)
            out.append(to_frame(images, nrow=cols))
            if progress is not None:
                progress((k + 1) * ws.shape[0], len(steps) * ws.shape[0])
    return out
