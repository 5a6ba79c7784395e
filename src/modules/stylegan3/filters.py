"""StyleGAN3's filter schedule and lowpass filter design (Karras et al. 2021, "Alias-Free Generative
Adversarial Networks", section 3 and appendices C and F; NVlabs/stylegan3 ``training/networks_stylegan3.py``,
``SynthesisNetwork.__init__`` and ``SynthesisLayer.design_lowpass_filter``).

Units: one unit is NVIDIA's output image width; a sampling rate ``s`` is samples per unit and a frequency
is cycles per unit. Over the ``N = num_layers`` synthesis layers (plus ToRGB, index ``N``) the cutoff
``f_c`` and the minimum stopband ``f_t`` ramp geometrically from the first layer to the last
critically-sampled ones (paper eq. 35-36), with ``e_i = min(i / (N - N_crit), 1)``::

    f_c[i] = f_c0 * (R/2 / f_c0) ** e_i
    f_t[i] = f_t0 * (R/2 * 2**0.3 / f_t0) ** e_i
    s[i]   = 2 ** ceil(log2(min(2 f_t[i], R)))       (a power of two)
    f_h[i] = max(f_t[i], s[i] / 2) - f_c[i]           (half width of the transition band)
    ch[i]  = rint(min(channel_base / 2 / f_c[i], channel_max)),  ch[N] = img_channels

Each layer upsamples to ``tmp = 2 * max(s_in, s_out)`` (ToRGB: ``1 *``), applies the leaky ReLU there and
downsamples to ``s_out``; its FIR filters have ``6 * factor`` taps when the factor exceeds 1 (else none).

**Any size, non-square included** (NVIDIA's code is square powers of two only). ``R``, the *reference
resolution*, is the smallest power of two at least the image's short side; the schedule is NVIDIA's for
``img_resolution = R`` (so for a square power of two nothing changes, ``R`` being the side), the sampling
rate is the same on both axes (frequencies stay isotropic, rotations stay rotations) and the last layers
are critically sampled at ``R`` pixels per unit, i.e. at the image's own pixel grid. The image spans
``H / R`` by ``W / R`` units (the short side between 1/2 and 1 unit), and every canvas is that extent at
the layer's rate plus ``margin_size`` samples on each side: ``H * s[i] / R + 2 * margin`` rows and
``W * s[i] / R + 2 * margin`` columns, the last two layers exactly ``H x W`` (NVIDIA's ``sizes[-2:]``). A
user translation of one unit moves the image by ``R`` pixels. Sizes for which a canvas would not be a
whole number of samples are refused (every size of the form ``b * 2**k`` with ``b <= 7`` on the short
side is fine: 24, 28, 48x80, 64x256, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.signal
import scipy.special
import torch
from torch import Tensor

__all__ = [
    "LayerSpec",
    "Schedule",
    "design_lowpass_filter",
    "kaiser_attenuation",
    "kaiser_beta",
    "reference_resolution",
    "synthesis_schedule",
]


def reference_resolution(height: int, width: int) -> int:
    """``R``: the smallest power of two at least ``min(height, width)`` (the side for square powers of two)."""
    short = min(height, width)
    if short < 1:
        raise ValueError(f"resolution {height}x{width}: sides must be positive")
    return 1 << (short - 1).bit_length()


def kaiser_attenuation(numtaps: int, width: float) -> float:
    """Kaiser's estimate of the stopband attenuation in dB of an ``numtaps``-tap filter whose transition
    band is ``width`` (a fraction of Nyquist): ``2.285 (numtaps - 1) pi width + 7.95``
    (``scipy.signal.kaiser_atten``)."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(attenuation: float) -> float:
    """Kaiser's window parameter for a stopband attenuation in dB (``scipy.signal.kaiser_beta``)."""
    a = attenuation
    if a > 50:
        return 0.1102 * (a - 8.7)
    if a > 21:
        return 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    return 0.0


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> Tensor | None:
    """A lowpass FIR filter, as NVlabs/stylegan3's ``SynthesisLayer.design_lowpass_filter`` designs it.

    ``numtaps`` 1: no filter (``None``, the identity). Otherwise ``cutoff`` and transition band ``width``
    (both in cycles per unit) at sampling rate ``fs``:

    - separable (config T, and R's upsampling and critical layers): ``scipy.signal.firwin``'s
      Kaiser-windowed sinc, ``[numtaps]``, applied along both axes (a square passband);
    - ``radial`` (config R's downsampling): the jinc ``J1(2 pi f_c r) / (pi r)`` on the ``numtaps x numtaps``
      grid times the separable Kaiser window of the same attenuation rule, ``[numtaps, numtaps]``
      (a disc-shaped passband, paper eq. 12).

    Both sum to 1. float32, designed in float64.
    """
    if numtaps < 1:
        raise ValueError(f"numtaps={numtaps}: expected at least 1")
    if numtaps == 1:
        return None
    if not radial:
        taps = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(taps, dtype=torch.float32)
    pos = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(pos, pos))
    safe_r = np.where(r > 0, r, 1.0)
    jinc = np.where(r > 0, scipy.special.j1(2 * math.pi * cutoff * safe_r) / (math.pi * safe_r), cutoff)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    taps2d = jinc * np.outer(window, window)
    return torch.as_tensor(taps2d / taps2d.sum(), dtype=torch.float32)


@dataclass(frozen=True)
class LayerSpec:
    """One synthesis layer of the schedule (index ``num_layers`` is ToRGB). Sizes are ``(height, width)``;
    ``padding`` is ``filtered_lrelu``'s ``[x_lo, x_hi, y_lo, y_hi]`` on the upsampled canvas."""

    index: int
    name: str  # NVIDIA's L{i}_{size}_{channels} (L{i}_{h}x{w}_{channels} when not square)
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    in_sampling_rate: int
    out_sampling_rate: int
    tmp_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]


@dataclass(frozen=True)
class Schedule:
    """The whole network's schedule: per-layer arrays (index 0..num_layers) and the layer specs."""

    resolution: tuple[int, int]
    reference_resolution: int
    cutoffs: np.ndarray  # f_c
    stopbands: np.ndarray  # f_t
    sampling_rates: np.ndarray  # s
    half_widths: np.ndarray  # f_h
    sizes: list[tuple[int, int]]  # canvas (height, width) per layer
    channels: list[int]
    layers: list[LayerSpec]


def _canvas(side: int, rate: float, ref: int, margin: int, what: str) -> int:
    """The samples across ``side`` image pixels at ``rate`` (``ref`` pixels per unit) plus the margins."""
    extent = side * rate / ref
    if extent != int(extent):
        raise ValueError(
            f"{what}: {side} px at {int(rate)} samples per {ref} px is not a whole number of samples; "
            f"StyleGAN3 needs sides of the form b * 2**k with b <= 7 relative to the short side's power of two"
        )
    return int(extent) + 2 * margin


def synthesis_schedule(
    resolution: int | Sequence[int],
    img_channels: int = 3,
    channel_base: int = 32768,
    channel_max: int = 512,
    num_layers: int = 14,
    num_critical: int = 2,
    first_cutoff: float = 2.0,
    first_stopband: float = 2**2.1,
    last_stopband_rel: float = 2**0.3,
    margin_size: int = 10,
    num_fp16_res: int = 4,
    conv_kernel: int = 3,
    filter_size: int = 6,
    lrelu_upsampling: int = 2,
    use_radial_filters: bool = False,
) -> Schedule:
    """The schedule of NVIDIA's ``SynthesisNetwork`` and ``SynthesisLayer`` constructors, per axis for any
    ``(height, width)`` (module docstring). Arrays are float64 as NVIDIA computes them (numpy)."""
    h, w = (resolution, resolution) if isinstance(resolution, int) else (int(resolution[0]), int(resolution[1]))
    ref = reference_resolution(h, w)
    last_cutoff = ref / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, ref))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = [(_canvas(h, s, ref, margin_size, f"{h}x{w}"), _canvas(w, s, ref, margin_size, f"{h}x{w}")) for s in rates]
    sizes[-2:] = [(h, w), (h, w)]
    channels = [int(c) for c in np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))]
    if min(channels[:-1]) < 1:
        raise ValueError(f"channel_base={channel_base} gives layers without channels at {h}x{w}; raise it")
    channels[-1] = img_channels
    layers = []
    for i in range(num_layers + 1):
        prev = max(i - 1, 0)
        is_torgb = i == num_layers
        critical = i >= num_layers - num_critical
        s_in, s_out = int(rates[prev]), int(rates[i])
        tmp = max(s_in, s_out) * (1 if is_torgb else lrelu_upsampling)
        up, down = tmp // s_in, tmp // s_out
        assert up * s_in == tmp and down * s_out == tmp, "sampling rates are powers of two"
        up_taps = filter_size * up if up > 1 and not is_torgb else 1
        down_taps = filter_size * down if down > 1 and not is_torgb else 1
        kernel = 1 if is_torgb else conv_kernel
        pads = []
        for axis in (1, 0):  # x (width) first, as filtered_lrelu's padding lists it
            total = (sizes[i][axis] - 1) * down + 1 - (sizes[prev][axis] + kernel - 1) * up + up_taps + down_taps - 2
            lo = (total + up) // 2  # symmetric sample positions (paper App. C.3)
            pads += [lo, total - lo]
        oh, ow = sizes[i]
        name = f"L{i}_{ow}_{channels[i]}" if oh == ow else f"L{i}_{oh}x{ow}_{channels[i]}"
        layers.append(
            LayerSpec(
                index=i,
                name=name,
                is_torgb=is_torgb,
                is_critically_sampled=critical,
                use_fp16=bool(rates[i] * 2**num_fp16_res > ref),
                in_channels=channels[prev],
                out_channels=channels[i],
                in_size=sizes[prev],
                out_size=sizes[i],
                in_sampling_rate=s_in,
                out_sampling_rate=s_out,
                tmp_sampling_rate=tmp,
                in_cutoff=float(cutoffs[prev]),
                out_cutoff=float(cutoffs[i]),
                in_half_width=float(half_widths[prev]),
                out_half_width=float(half_widths[i]),
                conv_kernel=kernel,
                up_factor=up,
                down_factor=down,
                up_taps=up_taps,
                down_taps=down_taps,
                down_radial=use_radial_filters and not critical,
                padding=(pads[0], pads[1], pads[2], pads[3]),
            )
        )
    return Schedule(
        resolution=(h, w),
        reference_resolution=ref,
        cutoffs=cutoffs,
        stopbands=stopbands,
        sampling_rates=rates,
        half_widths=half_widths,
        sizes=sizes,
        channels=channels,
        layers=layers,
    )
