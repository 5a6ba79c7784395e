"""Equivariance of a generator to translation and rotation of its input: EQ-T, EQ-T_frac and EQ-R
(Karras et al. 2021, "Alias-Free Generative Adversarial Networks", appendix E; NVlabs/stylegan3
``metrics/equivariance.py``).

For ``ws = mapping(z, c)`` the generator draws the reference image ``orig`` with the identity input
transform and ``img`` with its input transformed by an operator ``T``; the image-space ``T`` applied to
``orig`` should give ``img``. The score is the PSNR in dB between the two over the pixels where both are
defined (the masks), with NVIDIA's normalisation: images in [-1, 1] (peak to peak 2), squared errors
and mask weights summed over every image, channel and pixel of the run, then
``20 log10(2) - 10 log10(sum err^2 / sum mask)``. Higher is more equivariant.

- **EQ-T** (integer translation, E.1): ``t ~ U[-0.125, 0.125]^2`` units rounded to whole pixels;
  ``orig`` shifted by whole pixels, zeros filling the uncovered border, which the mask leaves out.
- **EQ-T_frac** (fractional translation, E.2): ``t`` not rounded; ``orig`` shifted by a separable
  Lanczos-3 interpolator (six taps per axis, normalised to sum 1); the mask leaves out the ``a`` pixels
  whose taps reach past the image.
- **EQ-R** (rotation, E.3): angle ``~ U[-pi, pi]`` (``rotate_max`` 1 times pi); ``orig`` rotated by a
  band-limited resampling (:func:`bandlimit_filter`: the convolution of the input's and the rotated
  output's ideal lowpass filters, windowed by the convolution of the two Lanczos windows, applied while
  upsampling 4x, then bilinear sampling), and ``img`` passed through the same filter without rotating
  (the pseudo-rotation ``R*``), so both hold the same frequencies; masks of both multiplied.

The generator's translation units are its :meth:`~src.nn.style_generator.StyleSynthesis.input_transform_unit`
pixels (NVIDIA: the image width), the same on both axes, so for non-square images the shifts and rotations
are those of the pixel grid (NVIDIA's code is square only). Shifts here are given in pixels and the affine
matrices act on pixel coordinates centred on the image.

The functions take images ``[N, C, H, W]`` with any ``C``: they act on each channel alike. The metric
feeds them the generator's raw output (float32, unclamped), which for every gamut colour space lies in
about [-1, 1] (:meth:`src.colorspaces.ColorSpace.encode`), so the peak of 2 applies to any space; for RGB
it is NVIDIA's number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from src.metrics.generated import GeneratorModel, generated_labels
from src.nn.style_generator import StyleSynthesis, style_generator

__all__ = [
    "TRANSFORMS",
    "EquivarianceError",
    "affine_transformation",
    "bandlimit_filter",
    "check_transformable",
    "draw_transform",
    "equivariance_psnr",
    "fractional_pseudo_rotation",
    "fractional_rotation",
    "fractional_translation",
    "integer_translation",
    "lanczos_window",
    "psnr_db",
    "rotation_matrix",
    "sinc",
    "transformed_pair",
    "translation_matrix",
]

#: the metric's transforms: integer translation (EQ-T), fractional translation (EQ-T_frac), rotation (EQ-R)
TRANSFORMS = ("int", "frac", "rot")


def sinc(x: Tensor) -> Tensor:
    """The normalised sinc ``sin(pi x) / (pi x)``, 1 at 0."""
    px = x * math.pi
    safe = torch.where(px.abs() < 1e-30, torch.ones_like(px), px)
    return torch.where(px.abs() < 1e-30, torch.ones_like(x), torch.sin(safe) / safe)


def lanczos_window(x: Tensor, a: int) -> Tensor:
    """The Lanczos window of radius ``a``: ``sinc(x / a)`` inside ``|x| < a``, 0 outside."""
    return torch.where(x.abs() < a, sinc(x / a), torch.zeros_like(x))


def rotation_matrix(angle: float | Tensor) -> Tensor:
    """3x3 float32 ``[[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]]`` (NVIDIA's ``rotation_matrix``)."""
    a = torch.as_tensor(angle, dtype=torch.float32)
    c, s = a.cos(), a.sin()
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([torch.stack([c, s, zero]), torch.stack([-s, c, zero]), torch.stack([zero, zero, one])])


def translation_matrix(tx: float | Tensor, ty: float | Tensor) -> Tensor:
    """The input transform that moves the image by ``(tx, ty)`` units: identity with ``-t`` as translation."""
    m = torch.eye(3)
    m[0, 2], m[1, 2] = -torch.as_tensor(tx, dtype=torch.float32), -torch.as_tensor(ty, dtype=torch.float32)
    return m


def psnr_db(squared_error: float | Tensor, weight: float | Tensor) -> float:
    """PSNR in dB of images in [-1, 1]: ``20 log10(2) - 10 log10(squared_error / weight)`` (sums over pixels)."""
    mse = float(squared_error) / float(weight)
    return 20 * math.log10(2) - 10 * math.log10(mse) if mse > 0 else math.inf


# ----------------------------------------------------------------------------------------------
# Translation.


def _shifted(x: Tensor, shift: int, dim: int) -> Tensor:
    """``x`` moved by ``shift`` whole samples along ``dim`` (``out[i] = x[i - shift]``), zeros where uncovered."""
    n = x.shape[dim]
    out = torch.zeros_like(x)
    if abs(shift) < n:
        out.narrow(dim, max(shift, 0), n - abs(shift)).copy_(x.narrow(dim, max(-shift, 0), n - abs(shift)))
    return out


def integer_translation(x: Tensor, dx: int, dy: int) -> tuple[Tensor, Tensor]:
    """``x`` ``[N, C, H, W]`` moved right by ``dx`` and down by ``dy`` whole pixels (appendix E.1's ``T_x``),
    and the mask of the pixels it covers."""
    dx, dy = int(dx), int(dy)
    moved = _shifted(_shifted(x, dx, 3), dy, 2)
    return moved, _shifted(_shifted(torch.ones_like(x), dx, 3), dy, 2)


def _lanczos_taps(frac: float, a: int) -> tuple[list[int], Tensor]:
    """Offsets ``k`` = -(a-1)..a and their weights ``L(k - frac)`` (sum 1) of a Lanczos-``a`` interpolator."""
    offsets = list(range(-(a - 1), a + 1))
    u = torch.tensor(offsets, dtype=torch.float64) - frac
    w = sinc(u) * sinc(u / a)
    return offsets, (w / w.sum()).to(torch.float32)


def _fractional_shift(x: Tensor, shift: float, dim: int, a: int) -> Tensor:
    """``out[i] = sum_k w_k x[i - floor(shift) - k]``: ``x`` resampled at ``i - shift`` (zeros outside)."""
    whole = math.floor(shift)
    offsets, weights = _lanczos_taps(shift - whole, a)
    out = torch.zeros_like(x)
    for k, w in zip(offsets, weights.tolist()):
        out += w * _shifted(x, whole + k, dim)
    return out


def _band(n: int, lo: int, hi: int) -> slice:
    return slice(min(max(lo, 0), n), min(max(hi, 0), n))


def fractional_translation(x: Tensor, dx: float, dy: float, a: int = 3) -> tuple[Tensor, Tensor]:
    """``x`` ``[N, C, H, W]`` moved by ``(dx, dy)`` pixels with a separable Lanczos-``a`` interpolator
    (appendix E.2's ``T_x``), and the mask of the pixels whose taps all fall inside the image."""
    dx, dy = float(dx), float(dy)
    moved = _fractional_shift(_fractional_shift(x, dx, 3, a), dy, 2, a)
    h, w = x.shape[-2:]
    ix, iy = math.floor(dx), math.floor(dy)
    mask = torch.zeros_like(x)
    mask[:, :, _band(h, iy + a, h + iy - (a - 1)), _band(w, ix + a, w + ix - (a - 1))] = 1
    return moved, mask


# ----------------------------------------------------------------------------------------------
# Rotation.


def _circular_convolution(p: Tensor, q: Tensor) -> Tensor:
    """The circular convolution of two centred 2-D arrays of odd size, centred (by FFT)."""
    spectrum = torch.fft.fft2(torch.fft.ifftshift(p)) * torch.fft.fft2(torch.fft.ifftshift(q))
    return torch.fft.fftshift(torch.fft.ifft2(spectrum).real)


def bandlimit_filter(
    matrix: Tensor,
    a: int = 3,
    amax: int = 16,
    aflt: int = 64,
    up: int = 4,
    cutoff_in: float = 1.0,
    cutoff_out: float = 1.0,
) -> Tensor:
    """The 2-D lowpass filter that band-limits an image for resampling through ``matrix`` (its 2x2 linear
    part, on pixel coordinates), at ``up`` samples per pixel: ``[2 amax up - 1]^2``, odd, centred.

    The ideal filters of the input (``sinc(cutoff_in x) sinc(cutoff_in y)``) and of the output grid
    mapped back through ``matrix`` are convolved, and so are their Lanczos-``a`` windows; the product is
    evaluated on ``[-aflt, aflt]`` pixels (convolved circularly there, by FFT), cropped to ``amax`` pixels
    around the centre, and each of the ``up x up`` polyphase components normalised to sum ``1 / up^2``
    (so upsampling with gain ``up^2`` keeps every phase's DC gain 1). NVIDIA's
    ``construct_affine_bandlimit_filter``.
    """
    if not a <= amax < aflt:
        raise ValueError(f"need a <= amax < aflt, got a={a}, amax={amax}, aflt={aflt}")
    m = torch.as_tensor(matrix, dtype=torch.float32)[:2, :2].cpu()
    n = 2 * aflt * up - 1
    pos = (torch.arange(n, dtype=torch.float32) - (n - 1) // 2) / up
    yi, xi = torch.meshgrid(pos, pos, indexing="ij")
    xo = m[0, 0] * xi + m[0, 1] * yi
    yo = m[1, 0] * xi + m[1, 1] * yi
    ideal = _circular_convolution(
        sinc(xi * cutoff_in) * sinc(yi * cutoff_in), sinc(xo * cutoff_out) * sinc(yo * cutoff_out)
    )
    window = _circular_convolution(
        lanczos_window(xi, a) * lanczos_window(yi, a), lanczos_window(xo, a) * lanczos_window(yo, a)
    )
    keep = 2 * amax * up - 1
    start = (n - keep) // 2
    f = (ideal * window)[start : start + keep, start : start + keep].clone()
    for r in range(up):
        for s in range(up):
            f[r::up, s::up] /= f[r::up, s::up].sum() * up**2
    return f


def _convolve(x: Tensor, f: Tensor, pad: Sequence[int]) -> Tensor:
    """True 2-D convolution of every channel of ``x`` with ``f``, after zero padding ``(left, right, top, bottom)``."""
    n, c, h, w = x.shape
    kernel = f.flip(0, 1).to(x)[None, None]
    y = F.conv2d(F.pad(x.reshape(n * c, 1, h, w), list(pad)), kernel)
    return y.reshape(n, c, *y.shape[-2:])


def _upsample(x: Tensor, f: Tensor, up: int, margin: int) -> Tensor:
    """``x`` upsampled ``up`` times (zeros inserted, then ``f`` with gain ``up^2``) with ``margin`` more
    samples on each side: ``[N, C, H up + 2 margin, W up + 2 margin]``; pixel ``i``'s centre lands on
    sample ``up i + up / 2 + margin``."""
    if up % 2:
        raise ValueError(f"up={up}: the resampling grid assumes an even factor")
    n, c, h, w = x.shape
    z = x.new_zeros(n, c, h * up, w * up)
    z[:, :, ::up, ::up] = x
    k = f.shape[0] // 2
    lo, hi = margin + k + up // 2, margin + k - up // 2
    return _convolve(z, f * up**2, (lo, hi, lo, hi))


def _sampling_grid(linear: Tensor, shift: Tensor, h: int, w: int, up: int, margin: int) -> Tensor:
    """``grid_sample`` coordinates ``[1, H, W, 2]`` into the ``up``-times upsampled image with ``margin``:
    output pixel ``p`` (pixel coordinates centred on the image) reads input point ``linear @ p + shift``."""
    px = torch.arange(w, dtype=torch.float32) + (0.5 - w / 2)
    py = torch.arange(h, dtype=torch.float32) + (0.5 - h / 2)
    gy, gx = torch.meshgrid(py, px, indexing="ij")
    sx = linear[0, 0] * gx + linear[0, 1] * gy + shift[0]
    sy = linear[1, 0] * gx + linear[1, 1] * gy + shift[1]
    size_x, size_y = w * up + 2 * margin, h * up + 2 * margin
    ux = (2 * (up * (sx + w / 2) + margin) + 1) / size_x - 1  # sample index -> align_corners=False units
    uy = (2 * (up * (sy + h / 2) + margin) + 1) / size_y - 1
    return torch.stack([ux, uy], dim=-1)[None]


def affine_transformation(x: Tensor, matrix: Tensor, up: int = 4, **filter_options) -> tuple[Tensor, Tensor]:
    """``x`` ``[N, C, H, W]`` transformed by the affine ``matrix`` (3x3 on pixel coordinates centred on the
    image: output point ``matrix @ p`` shows input point ``p``), band-limited by :func:`bandlimit_filter`
    while upsampling ``up`` times, then sampled bilinearly; and the mask of the output pixels whose
    sample lies a whole filter length inside the upsampled image. NVIDIA's ``apply_affine_transformation``
    (written there in normalised coordinates, which agree with pixels for square images)."""
    m = torch.as_tensor(matrix, dtype=torch.float32).cpu()
    f = bandlimit_filter(m, up=up, **filter_options).to(x.device)
    margin = f.shape[0] // 2
    n, c, h, w = x.shape
    inverse = torch.linalg.inv(m.double()).float()
    grid = _sampling_grid(inverse[:2, :2], inverse[:2, 2], h, w, up, margin).to(x.device)
    upsampled = _upsample(x, f, up, margin)
    out = F.grid_sample(
        upsampled, grid.expand(n, -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=False
    )
    edge = 2 * margin + 1
    inside = torch.zeros(1, 1, *upsampled.shape[-2:], device=x.device, dtype=x.dtype)
    inside[:, :, edge:-edge, edge:-edge] = 1
    mask = F.grid_sample(inside, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out, mask.expand_as(out)


def fractional_rotation(x: Tensor, angle: float | Tensor, a: int = 3, **filter_options) -> tuple[Tensor, Tensor]:
    """``x`` rotated by ``angle`` radians (:func:`rotation_matrix`) with the band-limited resampling of
    :func:`affine_transformation` (appendix E.3's ``R_alpha``; filter radius ``amax = 2 a``), and its mask."""
    return affine_transformation(x, rotation_matrix(angle), a=a, amax=2 * a, **filter_options)


def fractional_pseudo_rotation(x: Tensor, angle: float | Tensor, a: int = 3, **filter_options) -> tuple[Tensor, Tensor]:
    """``x`` filtered as :func:`fractional_rotation` by ``angle`` would band-limit it, without rotating
    (appendix E.3's ``R*_alpha``): the filter of ``rotation_matrix(-angle)`` at one sample per pixel,
    same size out (zero padding), and the mask leaving out the filter's half width at each border."""
    f = bandlimit_filter(
        rotation_matrix(-torch.as_tensor(angle, dtype=torch.float32)), a=a, amax=2 * a, up=1, **filter_options
    )
    k = f.shape[0] // 2
    out = _convolve(x, f.to(x.device), (k, k, k, k))
    mask = torch.zeros_like(out)
    mask[:, :, k:-k, k:-k] = 1
    return out, mask


# ----------------------------------------------------------------------------------------------
# One batch and the running sums.


def transformed_pair(
    synthesize: Callable[[Tensor], Tensor],
    orig: Tensor,
    transform: str,
    value: Tensor,
    unit: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(reference, image, mask)`` for one batch: ``synthesize(matrix)`` draws the batch's ``ws`` with the
    input transform ``matrix``; ``orig`` is its image under the identity. ``value``: the drawn translation
    ``(tx, ty)`` in units (``int``: already whole pixels) or the angle in radians (``rot``); ``unit``:
    pixels per unit."""
    if transform in ("int", "frac"):
        tx, ty = (float(v) for v in value)
        img = synthesize(translation_matrix(tx, ty))
        if transform == "int":
            ref, mask = integer_translation(orig, round(tx * unit), round(ty * unit))
        else:
            ref, mask = fractional_translation(orig, tx * unit, ty * unit)
        return ref, img, mask
    if transform == "rot":
        angle = float(value)
        img = synthesize(rotation_matrix(-angle))
        ref, ref_mask = fractional_rotation(orig, angle)
        pseudo, pseudo_mask = fractional_pseudo_rotation(img, angle)
        return ref, pseudo, ref_mask * pseudo_mask
    raise ValueError(f"transform={transform!r}: expected one of {', '.join(TRANSFORMS)}")


def draw_transform(
    transform: str, generator: torch.Generator, unit: int, translate_max: float, rotate_max: float
) -> Tensor:
    """One batch's transform, as NVIDIA draws it: ``t ~ U[-translate_max, translate_max]^2`` units (``int``:
    rounded to whole pixels), or the angle ``~ U[-rotate_max pi, rotate_max pi]`` (``rot``)."""
    if transform == "rot":
        return (torch.rand([], generator=generator) * 2 - 1) * (rotate_max * math.pi)
    t = (torch.rand(2, generator=generator) * 2 - 1) * translate_max
    return (t * unit).round() / unit if transform == "int" else t


class EquivarianceError(Metric):
    """Sums ``(reference - image)^2 * mask`` and ``mask`` in float64 over every batch and process;
    ``compute`` is the PSNR in dB (:func:`psnr_db`)."""

    full_state_update = False
    higher_is_better = True
    squared_error: Tensor
    weight: Tensor

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("squared_error", default=torch.zeros([], dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("weight", default=torch.zeros([], dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, reference: Tensor, image: Tensor, mask: Tensor) -> None:
        self.squared_error += ((reference.float() - image.float()).square() * mask).double().sum()
        self.weight += mask.double().sum()

    def compute(self) -> Tensor:
        return torch.tensor(psnr_db(self.squared_error, self.weight), dtype=torch.float64)


# ----------------------------------------------------------------------------------------------
# The metric.


class TransformableModel(GeneratorModel, Protocol):
    """What the metric uses of a family (a ``GANModule``): :class:`GeneratorModel` and ``z_dim``."""

    @property
    def z_dim(self) -> int: ...


def check_transformable(module: TransformableModel, metric: str) -> StyleSynthesis:
    """``module.G_ema``'s synthesis network when it takes an input transform; else a ``ValueError`` of one
    line naming ``metric`` and why (NVIDIA's ``equivariance.py`` refuses a generator without
    ``synthesis.input.transform`` the same way: the paper's StyleGAN2 rows are its config B, StyleGAN2
    with a Fourier-feature input)."""
    family = type(module).__name__
    if module.z_dim == 0:
        raise ValueError(
            f"{metric}: {family} does not generate images from latents; the equivariance metrics need a "
            "generator whose input can be translated and rotated (StyleGAN3)"
        )
    synthesis = style_generator(module.G_ema).synthesis
    if not synthesis.supports_input_transform:
        raise ValueError(
            f"{metric}: {family}'s generator ({type(synthesis).__name__}) starts from a learned constant, "
            "which cannot be translated or rotated; the equivariance metrics need an input transform "
            "(StyleGAN3's Fourier features)"
        )
    return synthesis


@torch.no_grad()
def equivariance_psnr(
    module: TransformableModel,
    transform: str,
    num_samples: int,
    batch_size: int = 4,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    translate_max: float = 0.125,
    rotate_max: float = 1.0,
    metric: str = "equivariance",
    progress: Callable[[int], None] | None = None,
) -> tuple[float, int]:
    """EQ-T (``transform='int'``), EQ-T_frac (``frac``) or EQ-R (``rot``) of ``module.G_ema`` in dB, and the
    number of images it measured.

    As NVIDIA's ``compute_equivariance_metrics``: batches of ``batch_size`` images (4), each sharing one
    drawn transform, until ``num_samples`` are reached over all processes (the count rounds up to whole
    batches per process); ``z ~ N(0, I)``, labels of a conditional model from its data's class
    frequencies, psi 1, ``noise_mode='const'`` (a generator with input transforms has no noise inputs);
    float32 (autocast off). Latents, labels and transforms come from a CPU generator seeded with
    ``(seed, rank)``; the sums are added over the processes by torchmetrics. ``progress`` is called with
    the images of each batch over all processes.
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"transform={transform!r}: expected one of {', '.join(TRANSFORMS)}")
    synthesis = check_transformable(module, metric)
    G, device = module.G_ema, module.device
    unit = synthesis.input_transform_unit()
    generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + rank)
    meter = EquivarianceError().to(device)
    batches = -(-int(num_samples) // (batch_size * world_size))
    identity = torch.eye(3)

    def synthesize_with(ws: Tensor) -> Callable[[Tensor], Tensor]:
        def synthesize(matrix: Tensor) -> Tensor:
            with synthesis.input_transform(matrix):
                return synthesis(ws, noise_mode="const").float()

        return synthesize

    with torch.autocast(device.type, enabled=False):
        for _ in range(batches):
            z = torch.randn(batch_size, G.z_dim, generator=generator)
            labels = generated_labels(module, batch_size, generator)
            value = draw_transform(transform, generator, unit, translate_max, rotate_max)
            c = module.labels_to_onehot(None if labels is None else labels.to(device))
            ws = G.mapping(z.to(device), c, psi=1.0)
            synthesize = synthesize_with(ws)
            orig = synthesize(identity)
            meter.update(*transformed_pair(synthesize, orig, transform, value, unit))
            if progress is not None:
                progress(batch_size * world_size)
    return float(meter.compute()), batches * batch_size * world_size
