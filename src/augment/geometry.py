"""Batched 2-D homogeneous transforms and their anti-aliased execution (ADA's geometric stage).

Transforms are ``[N, 3, 3]`` matrices acting on pixel coordinates measured from the image centre
(x right, y down, in pixels). The augmentation builds the *inverse* map ``G_inv`` (output pixel ->
input pixel) by right-multiplying one inverse per transform, then :func:`warp` executes it once,
as Karras et al. 2020 (appendix B.1) and stylegan2-ada-pytorch ``training/augment.py`` do: reflect-pad
the image by what the transform can reach, upsample 2x with a wavelet low-pass filter, resample
bilinearly, filter and downsample 2x. Every step is differentiable with respect to the image, to
any order (R1 takes the gradient of D through it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from src.nn.layers import upfirdn2d, upsample2d

# Symlet-6 decomposition low-pass filter (PyWavelets' ``sym6`` dec_lo), the orthogonal low-pass
# filter ADA resamples with (Karras et al. 2020, appendix B.1).
SYM6 = (
    0.015404109327027373,
    0.0034907120842174702,
    -0.11799011114819057,
    -0.048311742585633,
    0.4910559419267466,
    0.787641141030194,
    0.3379294217276218,
    -0.07263752278646252,
    -0.021060292512300564,
    0.04472490177066578,
    0.0017677118642428036,
    -0.007800708325034148,
)


def _stack(rows: list[list[Tensor | float]], like: Tensor) -> Tensor:
    """A batch of matrices ``[N, rows, cols]`` from rows of per-sample tensors ``[N]`` and numbers."""
    n = like.shape[0]

    def column(e: Tensor | float) -> Tensor:
        if isinstance(e, Tensor):
            return e.to(like.dtype)
        return torch.full((n,), float(e), dtype=like.dtype, device=like.device)

    elems = [column(e) for row in rows for e in row]
    return torch.stack(elems, dim=-1).reshape(n, len(rows), len(rows[0]))


def translate(tx: Tensor, ty: Tensor) -> Tensor:
    return _stack([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def scale(sx: Tensor, sy: Tensor) -> Tensor:
    return _stack([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def rotate(theta: Tensor) -> Tensor:
    """Rotation by ``theta`` radians (x toward y: clockwise on screen, y pointing down)."""
    c, s = torch.cos(theta), torch.sin(theta)
    return _stack([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def constant(m: list[list[float]], n: int, device, dtype=torch.float32) -> Tensor:
    """The same matrix for every sample, ``[n, k, k]``."""
    return torch.tensor(m, dtype=dtype, device=device).expand(n, -1, -1)


def warp(images: Tensor, g_inv: Tensor, filt: Tensor) -> Tensor:
    """Resample ``images`` ``[N, C, H, W]`` so output pixel ``q`` takes input pixel ``g_inv @ q``.

    ``filt``: the 1-D low-pass filter (normalised to sum 1) used for the 2x up- and downsampling.
    Outside the image the content is the reflection of the image (padding by the extent the
    transforms reach, over the batch; one host sync).
    """
    n, c, h, w = images.shape
    device, dtype = images.device, g_inv.dtype
    fpad = filt.numel() // 4  # filter support at the 2x scale, in input pixels
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], dtype=dtype, device=device)
    reach = g_inv @ corners.t()  # [N, 3, 4]: where the output corners read from
    xy = reach[:, :2, :].permute(1, 0, 2).flatten(1)  # [2, N*4]
    margin = torch.cat([-xy, xy]).amax(dim=1)  # x0, y0, x1, y1 beyond the centre
    margin = margin + torch.tensor([fpad * 2 - cx, fpad * 2 - cy] * 2, dtype=dtype, device=device)
    upper = torch.tensor([w - 1, h - 1] * 2, dtype=dtype, device=device)
    mx0, my0, mx1, my1 = (int(v) for v in margin.clamp_min(0).minimum(upper).ceil().tolist())

    images = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
    g_inv = translate(*_pair((mx0 - mx1) / 2, (my0 - my1) / 2, g_inv)) @ g_inv

    images = upsample2d(images, filt, up=2)
    # the same map at twice the resolution (pixel centres move by half a pixel)
    g_inv = scale(*_pair(2, 2, g_inv)) @ g_inv @ scale(*_pair(0.5, 0.5, g_inv))
    g_inv = translate(*_pair(-0.5, -0.5, g_inv)) @ g_inv @ translate(*_pair(0.5, 0.5, g_inv))

    out_h, out_w = (h + fpad * 2) * 2, (w + fpad * 2) * 2
    # pixels -> affine_grid's normalised [-1, 1] coordinates, for the output and the input grid
    g_inv = (
        scale(*_pair(2 / images.shape[3], 2 / images.shape[2], g_inv))
        @ g_inv
        @ scale(*_pair(out_w / 2, out_h / 2, g_inv))
    )
    grid = F.affine_grid(g_inv[:, :2, :].to(images.dtype), [n, c, out_h, out_w], align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # filter (as a correlation) and keep every second pixel, cropping the margin added above
    k = filt.numel()
    p0, p1 = (k - 1) // 2 - fpad * 2, (k - 2) // 2 - fpad * 2
    return upfirdn2d(images, filt.flip(0), down=2, padding=(p0, p1, p0, p1))


def _pair(a: float, b: float, like: Tensor) -> tuple[Tensor, Tensor]:
    n = like.shape[0]
    return (
        torch.full((n,), float(a), dtype=like.dtype, device=like.device),
        torch.full((n,), float(b), dtype=like.dtype, device=like.device),
    )
