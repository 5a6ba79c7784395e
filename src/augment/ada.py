"""ADA's augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data", appendix B; stylegan2-ada-pytorch ``training/augment.py``).

Each transform is applied to each image independently with probability ``p`` times its multiplier
(1 for every transform of the chosen pipeline), in the paper's order:

- pixel blitting: x-flip, 90° rotations, integer translation (up to 1/8 of the side);
- general geometry: isotropic scaling (log2 std 0.2), rotation (uniform over the full circle,
  applied before and after the anisotropic scaling, each with ``1 - sqrt(1 - p)`` so that
  either happens with ``p``), anisotropic scaling (log2 std 0.2), fractional translation (std 1/8);
- colour: brightness (+N(0, 0.2)), contrast (x 2^N(0, 0.5)), luma flip, hue rotation (uniform
  over the full circle, about the luma axis), saturation (x 2^N(0, 1) off the luma axis);
- image-space filtering (four frequency bands, each x 2^N(0, 1), power kept), additive noise
  (std |N(0, 0.1)|), cutout (a zeroed rectangle of half the side).

The geometric transforms are one combined matrix executed once (:func:`src.augment.geometry.warp`),
the colour transforms one 4x4 matrix on centred RGB (``[-1, 1]``). Everything is differentiable
with respect to the images, so G trains through the augmented fakes and R1 through the reals.
At ``p = 0`` (or with nothing drawn) the images come back untouched.

A channel that holds hue as an angle (``hue_channel``, set for ``hsv`` by
:class:`~src.augment.pipeline.Augmentation`) goes through the warp and the filter as a unit vector
(:mod:`src.augment.hue`), and cutout paints ``cutout_fill`` (there: the space's mid-gray) instead
of zeros. Without them the pipeline computes exactly what it always has.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.augment.geometry import SYM6, rotate, scale, translate, warp
from src.augment.hue import circular_hue
from src.nn.layers import make_fir

BLIT = ("xflip", "rotate90", "xint")
GEOM = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
TRANSFORMS = (*BLIT, *GEOM, *COLOR, "imgfilter", "noise", "cutout")
COLOR_SET = frozenset(COLOR)

# stylegan2-ada-pytorch's named pipelines (train.py --augpipe)
PIPELINES: dict[str, tuple[str, ...]] = {
    "blit": BLIT,
    "geom": GEOM,
    "color": COLOR,
    "filter": ("imgfilter",),
    "noise": ("noise",),
    "cutout": ("cutout",),
    "bg": (*BLIT, *GEOM),
    "bgc": (*BLIT, *GEOM, *COLOR),
    "bgcf": (*BLIT, *GEOM, *COLOR, "imgfilter"),
    "bgcfn": (*BLIT, *GEOM, *COLOR, "imgfilter", "noise"),
    "bgcfnc": (*BLIT, *GEOM, *COLOR, "imgfilter", "noise", "cutout"),
}

# Strengths (the paper's appendix B): translations relative to the side, scalings as log2 std.
XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0
IMGFILTER_STD, NOISE_STD, CUTOUT_SIZE = 1.0, 0.1, 0.5
# Symlet-2 low-pass filter, the basis of the image-space filter bank
SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)


def filter_bank(lowpass=SYM2, bands: int = 4) -> Tensor:
    """``[bands, taps]`` band-pass filters splitting the spectrum into octaves (ADA's image-space
    filtering): band 0 the lowest. Built by repeated 2x dilation of the bank and convolution with
    the half-band low-pass ``H(z) H(1/z) / 2``, adding the matching high-pass to each new band."""
    lo = torch.tensor(lowpass, dtype=torch.float64)
    hi = lo * torch.tensor([(-1.0) ** i for i in range(lo.numel())], dtype=torch.float64)
    lo2 = _conv1d_full(lo, lo.flip(0)) / 2
    hi2 = _conv1d_full(hi, hi.flip(0)) / 2
    bank = torch.zeros(bands, 1, dtype=torch.float64)
    bank[0, 0] = 1
    for i in range(1, bands):
        dilated = torch.zeros(bands, bank.shape[1] * 2 - 1, dtype=torch.float64)
        dilated[:, ::2] = bank
        bank = torch.stack([_conv1d_full(row, lo2) for row in dilated])
        start = (bank.shape[1] - hi2.numel()) // 2
        bank[i, start : start + hi2.numel()] += hi2
    return bank.float()


def _conv1d_full(a: Tensor, b: Tensor) -> Tensor:
    """Full 1-D convolution of two vectors (length ``len(a) + len(b) - 1``)."""
    out = torch.zeros(a.numel() + b.numel() - 1, dtype=a.dtype)
    for i, v in enumerate(a):
        out[i : i + b.numel()] += v * b
    return out


def plain_draw(fn, n: int, *shape: int, device=None) -> Tensor:
    """``fn(n, *shape)``: the default way the pipeline draws (a GAN family passes its own, which
    draws for the global batch and keeps this rank's rows)."""
    return fn(n, *shape, device=device)


class AugmentPipe(nn.Module):
    """ADA's pipeline for images in centred RGB (``[-1, 1]``, 1, 3 or 4 channels).

    ``transforms``: the names to enable (see :data:`PIPELINES`). The overall probability ``p`` is
    a buffer (adjusted by :class:`~src.augment.adaptive.AdaptiveP`, saved in checkpoints). With 4
    channels (RGBA) the colour transforms act on RGB and every geometric transform on all four;
    with 1 (gray) hue and saturation do nothing and the colour matrix acts on luma.

    ``hue_channel``: the channel that holds hue as an angle (one turn over ``[-1, 1)``), which the
    warp and the filter then mix as an angle (:func:`~src.augment.hue.circular_hue`); ``cutout_fill``:
    the value per channel cutout paints (default zeros). Both come from the colour space
    (:class:`~src.augment.pipeline.Augmentation`); left out, the pipeline is the RGB one.
    """

    p: Tensor  # buffers (register_buffer in __init__)
    geom_filter: Tensor
    bank: Tensor
    fill: Tensor | None

    def __init__(
        self,
        transforms: tuple[str, ...] | list[str] = PIPELINES["bgc"],
        p: float = 0.0,
        hue_channel: int | None = None,
        cutout_fill: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        unknown = sorted(set(transforms) - set(TRANSFORMS))
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown}: choose from {', '.join(TRANSFORMS)}")
        self.transforms = tuple(t for t in TRANSFORMS if t in transforms)
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("geom_filter", make_fir(SYM6), persistent=False)
        self.register_buffer("bank", filter_bank(), persistent=False)
        self.hue_channel = hue_channel
        fill = None if cutout_fill is None else torch.tensor([float(v) for v in cutout_fill])
        self.register_buffer("fill", fill, persistent=False)
        self.draw = plain_draw  # how random numbers are drawn (a family passes its rank-consistent draw)

    @property
    def has_color(self) -> bool:
        return bool(COLOR_SET & set(self.transforms))

    def _on(self, name: str) -> bool:
        return name in self.transforms

    def _rand(self, n: int, *shape: int, device) -> Tensor:
        return self.draw(torch.rand, n, *shape, device=device)

    def _randn(self, n: int, *shape: int, device) -> Tensor:
        return self.draw(torch.randn, n, *shape, device=device)

    def _randint(self, n: int, high: int, device) -> Tensor:
        """Integers in ``[0, high)`` as floats, one per sample (from a uniform draw, like every draw here)."""
        return torch.floor(self._rand(n, device=device) * high)

    def _mixing(self, stage: Callable[[Tensor], Tensor], images: Tensor) -> Tensor:
        """Run a stage that mixes neighbouring pixels, with hue (if any) as an angle."""
        if self.hue_channel is None:
            return stage(images)
        return circular_hue(stage, images, self.hue_channel)

    def _chosen(self, n: int, device, shape=(), multiplier: float = 1.0) -> Tensor:
        """Which samples a transform applies to: ``rand < multiplier * p`` per sample."""
        return self._rand(n, *shape, device=device) < self.p * multiplier

    def forward(self, images: Tensor, draw=plain_draw, in_rgb=None) -> Tensor:
        """All enabled stages, in the paper's order. ``draw(fn, n, *shape, device)`` makes every random
        number; ``in_rgb(images, color)`` runs the colour stage (default: directly, on centred RGB;
        :class:`~src.augment.pipeline.Augmentation` passes one that goes through RGB in other spaces)."""
        if self.p.item() == 0 or not self.transforms:  # one host read; the identity costs nothing
            return images
        self.draw = draw
        try:
            images = self.geometric(images)
            if self.has_color:
                images = self.color(images) if in_rgb is None else in_rgb(images, self.color)
            if self._on("imgfilter"):
                images = self.image_filter(images)
            if self._on("noise"):
                images = self.additive_noise(images)
            if self._on("cutout"):
                images = self.cutout(images)
            return images
        finally:
            self.draw = plain_draw  # hold no reference to the caller

    # ------------------------------------------------------------------------------------------

    def geometric_matrix(self, n: int, size: tuple[int, int], device) -> Tensor | None:
        """The combined inverse map ``[n, 3, 3]`` (output pixel -> input pixel), or None if no
        geometric transform is enabled."""
        if not any(self._on(t) for t in (*BLIT, *GEOM)):
            return None
        h, w = size
        g = torch.eye(3, device=device).expand(n, 3, 3)
        zeros, ones = torch.zeros(n, device=device), torch.ones(n, device=device)

        def where(chosen: Tensor, value: Tensor, default: Tensor) -> Tensor:
            return torch.where(chosen, value, default)

        if self._on("xflip"):
            flip = where(self._chosen(n, device), self._randint(n, 2, device), zeros)
            g = g @ scale(1 - 2 * flip, ones)
        if self._on("rotate90"):
            quarter = where(self._chosen(n, device), self._randint(n, 4, device), zeros)
            g = g @ rotate(math.pi / 2 * quarter)  # inverse maps compose on the right, as in the reference
        if self._on("xint"):
            t = (self._rand(n, 2, device=device) * 2 - 1) * XINT_MAX
            t = torch.where(self._chosen(n, device, (1,)), t, torch.zeros_like(t))
            g = g @ translate(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))
        if self._on("scale"):
            s = where(self._chosen(n, device), torch.exp2(self._randn(n, device=device) * SCALE_STD), ones)
            g = g @ scale(1 / s, 1 / s)
        p_rot = 1 - torch.sqrt((1 - self.p).clamp(0, 1))  # pre OR post rotation happens with p
        if self._on("rotate"):
            theta = (self._rand(n, device=device) * 2 - 1) * math.pi * ROTATE_MAX
            theta = torch.where(self._rand(n, device=device) < p_rot, theta, zeros)
            g = g @ rotate(theta)
        if self._on("aniso"):
            s = where(self._chosen(n, device), torch.exp2(self._randn(n, device=device) * ANISO_STD), ones)
            g = g @ scale(1 / s, s)
        if self._on("rotate"):
            theta = (self._rand(n, device=device) * 2 - 1) * math.pi * ROTATE_MAX
            theta = torch.where(self._rand(n, device=device) < p_rot, theta, zeros)
            g = g @ rotate(theta)
        if self._on("xfrac"):
            t = self._randn(n, 2, device=device) * XFRAC_STD
            t = torch.where(self._chosen(n, device, (1,)), t, torch.zeros_like(t))
            g = g @ translate(-t[:, 0] * w, -t[:, 1] * h)
        return g

    def geometric(self, images: Tensor) -> Tensor:
        n, _, h, w = images.shape
        g_inv = self.geometric_matrix(n, (h, w), images.device)
        if g_inv is None:
            return images
        return self._mixing(lambda x: warp(x, g_inv, self.geom_filter.to(x.dtype)), images)

    def color_matrix(self, n: int, channels: int, device) -> Tensor | None:
        """The colour transform ``[n, 4, 4]`` on homogeneous centred RGB, or None if none is enabled."""
        if not self.has_color:
            return None
        eye = torch.eye(4, device=device)
        c = eye.expand(n, 4, 4)
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)
        luma_outer = torch.outer(luma, luma)
        ones = torch.ones(n, device=device)
        if self._on("brightness"):
            b = torch.where(self._chosen(n, device), self._randn(n, device=device) * BRIGHTNESS_STD, ones * 0)
            m = eye.repeat(n, 1, 1)
            m[:, :3, 3] = b[:, None]
            c = m @ c
        if self._on("contrast"):
            k = torch.where(self._chosen(n, device), torch.exp2(self._randn(n, device=device) * CONTRAST_STD), ones)
            m = eye.repeat(n, 1, 1)
            m[:, :3, :3] *= k[:, None, None]
            c = m @ c
        if self._on("lumaflip"):
            flip = torch.where(self._chosen(n, device), self._randint(n, 2, device), ones * 0)
            c = (eye - 2 * luma_outer * flip[:, None, None]) @ c  # Householder reflection of the luma axis
        if self._on("hue") and channels > 1:
            theta = (self._rand(n, device=device) * 2 - 1) * math.pi * HUE_MAX
            theta = torch.where(self._chosen(n, device), theta, ones * 0)
            c = _rotation_about(luma[:3], theta) @ c
        if self._on("saturation") and channels > 1:
            s = torch.where(self._chosen(n, device), torch.exp2(self._randn(n, device=device) * SATURATION_STD), ones)
            c = (luma_outer + (eye - luma_outer) * s[:, None, None]) @ c
        return c

    def color(self, images: Tensor) -> Tensor:
        n, channels, h, w = images.shape
        c = self.color_matrix(n, channels, images.device)
        if c is None:
            return images
        c = c.to(images.dtype)
        flat = images.reshape(n, channels, h * w)
        if channels == 1:  # gray: the mean of the RGB rows applied to Y = R = G = B
            row = c[:, :3, :].mean(dim=1, keepdim=True)
            out = flat * row[:, :, :3].sum(dim=2, keepdim=True) + row[:, :, 3:]
        else:
            rgb = c[:, :3, :3] @ flat[:, :3] + c[:, :3, 3:]
            out = torch.cat([rgb, flat[:, 3:]], dim=1)  # alpha (RGBA) passes through
        return out.reshape(n, channels, h, w)

    def image_filter(self, images: Tensor) -> Tensor:
        """Amplify each frequency band by 2^N(0, 1) with probability p, keeping the expected power
        (1/f spectrum: band powers 10:1:1:1). Hue (``hue_channel``) is filtered as an angle."""
        n = images.shape[0]
        bands = self.bank.shape[0]
        expected = torch.tensor([10.0, 1.0, 1.0, 1.0], device=images.device) / 13
        gain = torch.ones(n, bands, device=images.device)
        for i in range(bands):
            t_i = torch.exp2(self._randn(n, device=images.device) * IMGFILTER_STD)
            t_i = torch.where(self._chosen(n, images.device), t_i, torch.ones_like(t_i))
            t = torch.ones(n, bands, device=images.device)
            t[:, i] = t_i
            gain = gain * t / (expected * t.square()).sum(dim=-1, keepdim=True).sqrt()
        taps = (gain @ self.bank.to(images.device)).to(images.dtype)  # [n, k]
        return self._mixing(lambda x: _separable_filter(x, taps), images)

    def additive_noise(self, images: Tensor) -> Tensor:
        n = images.shape[0]
        sigma = self._randn(n, 1, 1, 1, device=images.device).abs() * NOISE_STD
        sigma = torch.where(self._chosen(n, images.device, (1, 1, 1)), sigma, torch.zeros_like(sigma))
        return images + self._randn(n, *images.shape[1:], device=images.device).to(images.dtype) * sigma.to(
            images.dtype
        )

    def cutout(self, images: Tensor) -> Tensor:
        """Paint a rectangle of half each side, centred anywhere, with zeros (``cutout_fill``)."""
        n, _, h, w = images.shape
        size = torch.where(self._chosen(n, images.device), torch.full((n,), CUTOUT_SIZE, device=images.device), 0.0)
        centre = self._rand(n, 2, device=images.device)
        xs = (torch.arange(w, device=images.device) + 0.5) / w
        ys = (torch.arange(h, device=images.device) + 0.5) / h
        out_x = (xs[None, :] - centre[:, :1]).abs() >= size[:, None] / 2  # [n, w]
        out_y = (ys[None, :] - centre[:, 1:]).abs() >= size[:, None] / 2  # [n, h]
        keep = (out_x[:, None, :] | out_y[:, :, None]).to(images.dtype)  # [n, h, w]
        if self.fill is None:
            return images * keep[:, None]
        fill = self.fill.to(images.device, images.dtype)[None, :, None, None]
        return images * keep[:, None] + fill * (1 - keep[:, None])


def _separable_filter(images: Tensor, taps: Tensor) -> Tensor:
    """Filter each image ``[n, c, h, w]`` with its own separable kernel ``taps[i]`` (odd length),
    the same in x and y, every channel alike."""
    n, channels, h, w = images.shape
    k = taps.shape[1]
    kernel = taps.repeat_interleave(channels, dim=0)  # one filter per (sample, channel)
    # reflect as the reference does; images smaller than the filter (under 22 px) repeat the edge
    mode = "reflect" if k // 2 < min(h, w) else "replicate"
    x = F.pad(images.reshape(1, n * channels, h, w), [k // 2] * 4, mode=mode)
    x = F.conv2d(x, kernel[:, None, None, :], groups=n * channels)
    x = F.conv2d(x, kernel[:, None, :, None], groups=n * channels)
    return x.reshape(n, channels, h, w)


def _rotation_about(axis: Tensor, theta: Tensor) -> Tensor:
    """``[n, 4, 4]`` homogeneous rotation by ``theta`` about the unit 3-vector ``axis`` (Rodrigues)."""
    n = theta.shape[0]
    x, y, z = (float(v) for v in axis)
    k = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]], device=theta.device)
    s, c = torch.sin(theta)[:, None, None], torch.cos(theta)[:, None, None]
    r = torch.eye(3, device=theta.device) + s * k + (1 - c) * (k @ k)
    out = torch.eye(4, device=theta.device).repeat(n, 1, 1)
    out[:, :3, :3] = r
    return out
