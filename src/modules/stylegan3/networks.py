"""StyleGAN3's generator, configs T and R (Karras et al. 2021, "Alias-Free Generative Adversarial Networks";
NVlabs/stylegan3 ``training/networks_stylegan3.py``), in plain PyTorch, for any colour space and any size.

``StyleGAN3Generator`` = gamut's mapping network (depth 2, ``w_avg`` decay 0.998) + a synthesis network
of Fourier features and ``num_layers`` (14) alias-free layers plus ToRGB:

- :class:`SynthesisInput`: ``C0`` sinusoids of fixed random frequencies (uniform on the disc of radius
  ``f_c[0]``) and phases, rotated and translated by a transform learned from ``ws[0]`` and by the user's
  ``transform`` buffer (translate/rotate), then mixed by a learned ``C0 x C0`` matrix (paper section 3.1).
- :class:`SynthesisLayer`: a modulated convolution (3x3 for T, 1x1 for R; weights and styles
  pre-normalised, demodulated, and scaled by the input magnitude EMA) followed by the filtered leaky
  ReLU (:func:`src.modules.stylegan3.filtered_lrelu.filtered_lrelu`: bias, upsampling with a lowpass
  filter, leaky ReLU at the higher rate, lowpass and downsampling), with the filters and the schedule
  of :mod:`src.modules.stylegan3.filters`. The last layer is ToRGB generalised to ``img_channels``
  (1 gray, 3 RGB/HSV/Lab/..., 4 RGBA): a 1x1 modulated convolution without demodulation, bias and clamp.
  The image is the ToRGB output times ``output_scale`` (0.25).

Config T: ``channel_base`` 32768, ``channel_max`` 512, 3x3 convolutions, separable Kaiser filters.
Config R: both doubled (65536, 1024), 1x1 convolutions, radially symmetric (jinc) downsampling filters in
the non-critical layers (:data:`STYLEGAN3_CONFIGS`). Non-square and non-power-of-two sizes follow the
per-axis generalisation described in :mod:`src.modules.stylegan3.filters`. StyleGAN3 has no noise inputs:
``noise_mode`` is accepted (so gamut's tools and metrics can pass it) and ignored.

State-dict names map one to one onto NVIDIA's (``Generator`` of networks_stylegan3.py), via
:func:`gamut_name`:

=============================================  =============================================
NVIDIA                                          gamut
=============================================  =============================================
``mapping.fc{i}.weight`` / ``.bias``            ``mapping.layers.{i}.weight`` / ``.bias``
``mapping.embed.weight`` / ``.bias``            ``mapping.embed.weight`` / ``.bias``
``mapping.w_avg``                               ``mapping.w_avg``
``synthesis.input.weight``                      ``synthesis.input.weight``
``synthesis.input.affine.weight`` / ``.bias``   ``synthesis.input.affine.weight`` / ``.bias``
``synthesis.input.transform``                   ``synthesis.input.transform``
``synthesis.input.freqs`` / ``.phases``         ``synthesis.input.freqs`` / ``.phases``
``synthesis.L{i}_{size}_{ch}.affine.weight``    ``synthesis.layers.{i}.affine.weight``
``synthesis.L{i}_{size}_{ch}.affine.bias``      ``synthesis.layers.{i}.affine.bias``
``synthesis.L{i}_{size}_{ch}.weight`` / bias    ``synthesis.layers.{i}.weight`` / ``.bias``
``synthesis.L{i}_{size}_{ch}.magnitude_ema``    ``synthesis.layers.{i}.magnitude_ema``
``synthesis.L{i}_{size}_{ch}.up_filter``        ``synthesis.layers.{i}.up_filter`` (absent if None)
``synthesis.L{i}_{size}_{ch}.down_filter``      ``synthesis.layers.{i}.down_filter`` (absent if None)
=============================================  =============================================

NVIDIA's constructor arguments map as ``img_resolution`` -> ``resolution``, ``c_dim`` -> ``num_classes``,
``mapping_kwargs.num_layers`` -> ``map_depth``, ``mapping_kwargs.w_avg_beta`` -> ``w_avg_beta``; the
synthesis keywords keep their names. NVIDIA's ``update_emas`` is ``update_emas`` here too (the mapping's
part is gamut's ``update_w_avg``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.modules.stylegan2.generator import NOISE_MODES, MappingNetwork
from src.modules.stylegan3.filtered_lrelu import filtered_lrelu
from src.modules.stylegan3.filters import LayerSpec, Schedule, design_lowpass_filter, synthesis_schedule
from src.nn.layers import LRELU_GAIN, LRELU_SLOPE, FullyConnected, bias_act
from src.nn.precision import float32, fp16_autocast
from src.nn.style_generator import StyleGenerator, StyleSynthesis

__all__ = [
    "STYLEGAN3_CONFIGS",
    "StyleGAN3Generator",
    "SynthesisInput",
    "SynthesisLayer",
    "SynthesisNetwork",
    "gamut_name",
    "modulated_conv",
]

# The generator keywords of NVIDIA's train.py --cfg=stylegan3-t / stylegan3-r (R doubles G's widths).
STYLEGAN3_CONFIGS: dict[str, dict[str, Any]] = {
    "t": dict(channel_base=32768, channel_max=512, conv_kernel=3, use_radial_filters=False),
    "r": dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True),
}


def gamut_name(nvidia_name: str) -> str:
    """A tensor name of NVIDIA's StyleGAN3 ``Generator`` state dict as gamut names it (module docstring)."""
    name = re.sub(r"^mapping\.fc(\d+)\.", r"mapping.layers.\1.", nvidia_name)
    return re.sub(r"^synthesis\.L(\d+)_[0-9x]+_\d+\.", r"synthesis.layers.\1.", name)


def modulated_conv(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    demodulate: bool = True,
    padding: int = 0,
    input_gain: Tensor | None = None,
    fused: bool = False,
) -> Tensor:
    """StyleGAN3's modulated convolution (NVlabs/stylegan3 ``networks_stylegan3.py:modulated_conv2d``).

    ``x`` [N, I, H, W], ``weight`` [O, I, k, k] (unscaled), ``styles`` [N, I]. With ``demodulate`` the
    weights are first scaled to unit RMS per output channel and the styles to unit RMS over the whole
    ``[N, I]`` tensor; the per-sample weights ``w * s`` are demodulated (``1/sqrt(sum_{i,kh,kw} + 1e-8)``)
    and then multiplied by ``input_gain`` (a scalar, the layer's ``magnitude_ema ** -0.5``). ``padding``
    is the convolution's zero padding (StyleGAN3 uses ``k - 1``: the output grows by ``k - 1``).

    ``fused=True`` runs NVIDIA's grouped convolution with per-sample weights; ``fused=False`` (default)
    scales the activations around one shared convolution and the outputs by the demodulation
    coefficients, the same function without materialising ``N`` weight tensors. The coefficients are
    computed in float32 (autocast off); the convolution runs in ``x``'s dtype or the active autocast's.
    """
    n, in_ch = styles.shape
    out_ch, _, kh, kw = weight.shape
    with torch.autocast(x.device.type, enabled=False):
        weight, styles = weight.float(), styles.float()
        if demodulate:
            weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
            styles = styles * styles.square().mean().rsqrt()
        if fused:
            wt = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)
            if demodulate:
                wt = wt * (wt.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
            if input_gain is not None:
                wt = wt * input_gain.float()
        else:
            scale: Tensor | None = None
            if demodulate:
                fan_in = in_ch * kh * kw  # the shared conv runs on weight / sqrt(fan_in): fp16-safe magnitudes
                dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
                scale = dcoefs * math.sqrt(fan_in)
                weight = weight * (1 / math.sqrt(fan_in))
            if input_gain is not None:
                gain = input_gain.float()
                scale = gain.expand(n, out_ch) if scale is None else scale * gain
    if fused:
        y = F.conv2d(
            x.reshape(1, n * in_ch, *x.shape[2:]),
            wt.reshape(n * out_ch, in_ch, kh, kw).to(x.dtype),
            padding=padding,
            groups=n,
        )
        return y.reshape(n, out_ch, *y.shape[2:])
    y = F.conv2d(x * styles.to(x.dtype).reshape(n, in_ch, 1, 1), weight.to(x.dtype), padding=padding)
    if scale is not None:
        y = y * scale.to(y.dtype).reshape(n, out_ch, 1, 1)
    return y


class SynthesisInput(nn.Module):
    """Fourier features (paper section 3.1, App. F; NVIDIA's ``SynthesisInput``): ``[N, C0, H0, W0]``.

    ``freqs`` [C0, 2] (x, y cycles per unit, uniform on the disc of radius ``bandwidth``) and ``phases``
    [C0] (U[-0.5, 0.5)) are drawn once and kept as buffers. ``affine`` maps ``w`` to (r_c, r_s, t_x, t_y)
    (initialised to the identity: weight 0, bias (1, 0, 0, 0)), normalised by ``|(r_c, r_s)|``; the
    features are sampled on a centred grid of ``size`` at ``sampling_rate`` after the inverse rotation,
    the inverse translation and the user's ``transform`` (3x3, itself an *inverse* transform of the
    image: :func:`src.nn.input_transform.user_transform`). Frequencies the user transform pushes past
    ``bandwidth`` fade linearly to 0 at half the sampling rate. Then the learned ``C0 x C0`` mix ``weight / sqrt(C0)``.
    """

    transform: Tensor
    freqs: Tensor
    phases: Tensor

    def __init__(
        self, w_dim: int, channels: int, size: tuple[int, int], sampling_rate: float, bandwidth: float
    ) -> None:
        super().__init__()
        self.w_dim, self.channels = w_dim, channels
        self.size = (int(size[0]), int(size[1]))  # (height, width)
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        g = torch.randn(channels, 2)
        radius = g.norm(dim=1, keepdim=True)
        freqs = g / radius * torch.exp(-radius.square() / 4) * bandwidth  # radius 2 sqrt(u): uniform disc
        phases = torch.rand(channels) - 0.5
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = FullyConnected(w_dim, 4)
        with torch.no_grad():
            self.affine.weight.zero_()
            assert self.affine.bias is not None
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: Tensor) -> Tensor:
        n = w.shape[0]
        t = self.affine(w)  # (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        zero, one = torch.zeros_like(t[:, 0]), torch.ones_like(t[:, 0])
        rotation = torch.stack([t[:, 0], -t[:, 1], zero, t[:, 1], t[:, 0], zero, zero, zero, one], 1)
        translation = torch.stack([one, zero, -t[:, 2], zero, one, -t[:, 3], zero, zero, one], 1)
        m = rotation.reshape(n, 3, 3) @ translation.reshape(n, 3, 3) @ self.transform.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ m[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = self.freqs.unsqueeze(0) @ m[:, :2, :2]  # [N, C, 2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        h, w_ = self.size
        gx = (torch.arange(w_, device=w.device, dtype=torch.float32) + (0.5 - w_ / 2)) / self.sampling_rate
        gy = (torch.arange(h, device=w.device, dtype=torch.float32) + (0.5 - h / 2)) / self.sampling_rate
        x = (
            gx.reshape(1, 1, w_, 1) * freqs[:, :, 0].reshape(n, 1, 1, -1)
            + gy.reshape(1, h, 1, 1) * freqs[:, :, 1].reshape(n, 1, 1, -1)
            + phases.reshape(n, 1, 1, -1)
        )  # [N, H, W, C]
        x = torch.sin(x * (2 * math.pi)) * amplitudes.reshape(n, 1, 1, -1)
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, channels={self.channels}, size={list(self.size)}, "
            f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}"
        )


class SynthesisLayer(nn.Module):
    """One alias-free layer (or ToRGB) of the schedule: modulated conv, filtered leaky ReLU (NVIDIA's
    ``SynthesisLayer``). ``magnitude_ema`` (the mean of ``x**2`` seen in training, decay
    ``magnitude_ema_beta``) moves only when the forward pass is asked to (``update_emas``)."""

    magnitude_ema: Tensor
    up_filter: Tensor | None
    down_filter: Tensor | None

    def __init__(
        self, spec: LayerSpec, w_dim: int, conv_clamp: float | None = 256, magnitude_ema_beta: float = 0.999
    ) -> None:
        super().__init__()
        self.spec, self.w_dim = spec, w_dim
        self.name, self.is_torgb, self.use_fp16 = spec.name, spec.is_torgb, spec.use_fp16
        self.in_channels, self.out_channels = spec.in_channels, spec.out_channels
        self.in_size, self.out_size = spec.in_size, spec.out_size
        self.conv_kernel, self.up_factor, self.down_factor = spec.conv_kernel, spec.up_factor, spec.down_factor
        self.padding = list(spec.padding)
        self.conv_clamp, self.magnitude_ema_beta = conv_clamp, magnitude_ema_beta
        self.ema_world_size = 1  # processes whose inputs the magnitude EMA averages (configure_magnitude_ema)
        k = spec.conv_kernel
        self.affine = FullyConnected(w_dim, spec.in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(spec.out_channels, spec.in_channels, k, k))
        self.bias = nn.Parameter(torch.zeros(spec.out_channels))
        self.weight_gain = 1 / math.sqrt(spec.in_channels * k * k)  # ToRGB's style scale
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.register_buffer(
            "up_filter",
            design_lowpass_filter(
                spec.up_taps, spec.in_cutoff, spec.in_half_width * 2, spec.tmp_sampling_rate, radial=False
            ),
        )
        self.register_buffer(
            "down_filter",
            design_lowpass_filter(
                spec.down_taps,
                spec.out_cutoff,
                spec.out_half_width * 2,
                spec.tmp_sampling_rate,
                radial=spec.down_radial,
            ),
        )

    def forward(self, x: Tensor, w: Tensor, update_emas: bool = False, fused: bool = False) -> Tensor:
        """``x`` [N, in_channels, *in_size], ``w`` [N, w_dim] -> [N, out_channels, *out_size]. Under
        ``16-mixed`` a layer with ``use_fp16`` convolves and filters in fp16 (styles and coefficients in
        float32), every other layer in float32 (NVIDIA's recipe, :mod:`src.nn.precision`)."""
        device_type = x.device.type
        fp16 = fp16_autocast(device_type)
        if fp16 and not self.use_fp16:
            with float32(device_type):
                return self._run(x.float(), w.float(), update_emas, fused, False)
        return self._run(x, w, update_emas, fused, fp16)

    def _run(self, x: Tensor, w: Tensor, update_emas: bool, fused: bool, fp16: bool) -> Tensor:
        if update_emas:
            with torch.no_grad():
                current = x.detach().float().square().mean()
                if self.ema_world_size > 1:  # the mean over every process's rows (each holds as many)
                    torch.distributed.all_reduce(current)
                    current = current / self.ema_world_size
                self.magnitude_ema.copy_(current.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()
        if fp16:
            with float32(w.device.type):
                styles = self.affine(w.float())
        else:
            styles = self.affine(w)
        if self.is_torgb:
            styles = styles * self.weight_gain
        x = modulated_conv(
            x,
            self.weight,
            styles,
            demodulate=not self.is_torgb,
            padding=self.conv_kernel - 1,
            input_gain=input_gain,
            fused=fused,
        )
        if self.is_torgb:  # filtered_lrelu with no filters, gain 1 and slope 1: bias and clamp
            return bias_act(x, self.bias, clamp=self.conv_clamp)
        return filtered_lrelu(
            x,
            fu=self.up_filter,
            fd=self.down_filter,
            b=self.bias.to(x.dtype),
            up=self.up_factor,
            down=self.down_factor,
            padding=self.padding,
            gain=LRELU_GAIN,
            slope=LRELU_SLOPE,
            clamp=self.conv_clamp,
        )

    def extra_repr(self) -> str:
        s = self.spec
        return (
            f"{s.name}: in={s.in_channels}, out={s.out_channels}, size={list(s.in_size)}->{list(s.out_size)}, "
            f"rate={s.in_sampling_rate}->{s.out_sampling_rate} (tmp {s.tmp_sampling_rate}), "
            f"cutoff={s.in_cutoff:g}->{s.out_cutoff:g}, up={s.up_factor}, down={s.down_factor}, "
            f"taps={s.up_taps}/{s.down_taps}{' radial' if s.down_radial else ''}, torgb={s.is_torgb}"
        )


class SynthesisNetwork(StyleSynthesis):
    """ws ``[N, num_ws, w_dim]`` -> image ``[N, img_channels, H, W]`` (NVIDIA's ``SynthesisNetwork``).

    ``num_ws = num_layers + 2``: ``ws[:, 0]`` drives the input's transform, ``ws[:, 1 + i]`` layer ``i``
    (``layers[num_layers]`` is ToRGB). ``schedule`` holds the per-layer cutoffs, rates, sizes and
    channels (:func:`src.modules.stylegan3.filters.synthesis_schedule`); ``layer_names`` NVIDIA's names
    of the layers. It takes a user input transform (:meth:`input_transform`, the equivariance metrics').
    """

    supports_input_transform: ClassVar[bool] = True

    def __init__(
        self,
        w_dim: int = 512,
        resolution: tuple[int, int] = (256, 256),
        img_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_layers: int = 14,
        num_critical: int = 2,
        first_cutoff: float = 2.0,
        first_stopband: float = 2**2.1,
        last_stopband_rel: float = 2**0.3,
        margin_size: int = 10,
        output_scale: float = 0.25,
        num_fp16_res: int = 0,
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        use_radial_filters: bool = False,
        conv_clamp: float | None = 256,
        magnitude_ema_beta: float = 0.999,
    ) -> None:
        """``num_fp16_res``: under ``16-mixed``, the layers whose sampling rate times ``2**num_fp16_res``
        exceeds the reference resolution run in fp16 (NVIDIA's rule; its default is 4). No effect in
        ``32-true`` or ``bf16-mixed``."""
        super().__init__()
        self.w_dim, self.img_channels = w_dim, img_channels
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.num_layers, self.num_ws = num_layers, num_layers + 2
        self.output_scale, self.num_fp16_res = output_scale, num_fp16_res
        self.schedule: Schedule = synthesis_schedule(
            self.resolution,
            img_channels=img_channels,
            channel_base=channel_base,
            channel_max=channel_max,
            num_layers=num_layers,
            num_critical=num_critical,
            first_cutoff=first_cutoff,
            first_stopband=first_stopband,
            last_stopband_rel=last_stopband_rel,
            margin_size=margin_size,
            num_fp16_res=num_fp16_res,
            conv_kernel=conv_kernel,
            filter_size=filter_size,
            lrelu_upsampling=lrelu_upsampling,
            use_radial_filters=use_radial_filters,
        )
        sched = self.schedule
        self.reference_resolution = sched.reference_resolution  # pixels per unit of the user transform
        self.input = SynthesisInput(
            w_dim, sched.channels[0], sched.sizes[0], float(sched.sampling_rates[0]), float(sched.cutoffs[0])
        )
        self.layers = nn.ModuleList(
            SynthesisLayer(spec, w_dim, conv_clamp=conv_clamp, magnitude_ema_beta=magnitude_ema_beta)
            for spec in sched.layers
        )
        self.layer_names = [spec.name for spec in sched.layers]
        # The activations' layout between layers (every layer keeps its input's). oneDNN's backward of a
        # padded 3x3 convolution is slow in channels-last on the CPU (6.7 s against 1.9 s for a 512-channel
        # 148x148 map, docs/benchmarks.md); a 1x1 one is faster there (88 against 120 ms at 256 channels).
        self.layout = torch.channels_last if conv_kernel == 1 else torch.contiguous_format

    def configure_magnitude_ema(self, beta: float, world_size: int = 1) -> None:
        """Every layer's ``magnitude_ema`` decay per update (``update_emas``) and the processes whose
        inputs an update averages (one ``all_reduce`` per layer when ``world_size > 1``, so N processes
        track what one process with their rows would; NVIDIA's code tracks each process's own rows)."""
        for layer in self.typed_layers():
            layer.magnitude_ema_beta, layer.ema_world_size = float(beta), int(world_size)

    def typed_layers(self) -> Iterable[SynthesisLayer]:
        """``layers`` as what they are (an ``nn.ModuleList`` is typed as holding plain modules)."""
        return cast("Iterable[SynthesisLayer]", self.layers)

    @contextmanager
    def input_transform(self, matrix: Tensor) -> Iterator[None]:
        """Within: ``input.transform`` is ``matrix`` (3x3, the image's inverse transform; translation in units
        of :meth:`input_transform_unit` pixels; :func:`src.nn.input_transform.user_transform` builds one);
        restored on exit."""
        buffer = self.input.transform
        value = torch.as_tensor(matrix).to(dtype=buffer.dtype, device=buffer.device)
        if value.shape != (3, 3):
            raise ValueError(f"input transform must be 3x3, got {list(value.shape)}")
        previous = buffer.clone()
        with torch.no_grad():
            buffer.copy_(value)
        try:
            yield
        finally:
            with torch.no_grad():
                buffer.copy_(previous)

    def input_transform_unit(self) -> int:
        """The reference resolution: a translation of one unit moves the image by that many pixels."""
        return self.reference_resolution

    def forward(self, ws: Tensor, noise_mode: str = "random", update_emas: bool = False, fused: bool = False) -> Tensor:
        """``ws`` -> image in float32. ``noise_mode`` is checked and ignored (no noise inputs);
        ``update_emas`` moves every layer's ``magnitude_ema`` toward this batch's input magnitude;
        ``fused``: grouped per-sample convolutions (:func:`modulated_conv`)."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode={noise_mode!r}: expected one of {NOISE_MODES}")
        device_type = ws.device.type
        per_layer = ws.float().unbind(dim=1)
        if fp16_autocast(device_type):
            with float32(device_type):
                x = self.input(per_layer[0])
        else:
            x = self.input(per_layer[0])
        x = x.contiguous(memory_format=self.layout)  # the input's features come channels-last
        for layer, w in zip(self.typed_layers(), per_layer[1:]):
            x = layer(x, w, update_emas=update_emas, fused=fused)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.float()

    def extra_repr(self) -> str:
        h, w = self.resolution
        return f"resolution={h}x{w}, img_channels={self.img_channels}, num_ws={self.num_ws}"


class StyleGAN3Generator(StyleGenerator):
    """Mapping + alias-free synthesis: ``G(z, c, psi, cutoff, noise_mode=..., update_emas=False)`` -> image
    ``[N, img_channels, H, W]`` in the model's colour space (NVIDIA's StyleGAN3 ``Generator``).

    Defaults are config T at 256 px; ``**STYLEGAN3_CONFIGS["r"]`` gives R. ``init_kwargs`` holds the
    arguments it was built with (what an export records to rebuild it).
    """

    def __init__(
        self,
        z_dim: int = 512,
        w_dim: int = 512,
        num_classes: int = 0,
        resolution: int | Sequence[int] = (256, 256),
        img_channels: int = 3,
        map_depth: int = 2,
        map_lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.998,
        channel_base: int = 32768,
        channel_max: int = 512,
        conv_kernel: int = 3,
        use_radial_filters: bool = False,
        conv_clamp: float | None = 256,
        magnitude_ema_beta: float = 0.999,
        num_fp16_res: int = 0,
        num_layers: int = 14,
        num_critical: int = 2,
        first_cutoff: float = 2.0,
        first_stopband: float = 2**2.1,
        last_stopband_rel: float = 2**0.3,
        margin_size: int = 10,
        output_scale: float = 0.25,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
    ) -> None:
        init_kwargs = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__()
        self.init_kwargs = init_kwargs
        if isinstance(resolution, int):
            h, w = resolution, resolution
        else:
            h, w = int(resolution[0]), int(resolution[1])
        self.resolution = (h, w)
        self.z_dim, self.w_dim, self.c_dim, self.img_channels = z_dim, w_dim, num_classes, img_channels
        self.synthesis: SynthesisNetwork = SynthesisNetwork(
            w_dim=w_dim,
            resolution=self.resolution,
            img_channels=img_channels,
            channel_base=channel_base,
            channel_max=channel_max,
            num_layers=num_layers,
            num_critical=num_critical,
            first_cutoff=first_cutoff,
            first_stopband=first_stopband,
            last_stopband_rel=last_stopband_rel,
            margin_size=margin_size,
            output_scale=output_scale,
            num_fp16_res=num_fp16_res,
            conv_kernel=conv_kernel,
            filter_size=filter_size,
            lrelu_upsampling=lrelu_upsampling,
            use_radial_filters=use_radial_filters,
            conv_clamp=conv_clamp,
            magnitude_ema_beta=magnitude_ema_beta,
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, num_classes, w_dim, self.num_ws, map_depth, map_lr_multiplier, w_avg_beta)

    def forward(
        self,
        z: Tensor,
        c: Tensor | None = None,
        psi: float = 1.0,
        cutoff: int | None = None,
        update_emas: bool = False,
        **synthesis_options,
    ) -> Tensor:
        """Map ``z`` (and one-hot labels ``c``) to ws, truncated by ``psi``/``cutoff``, and synthesise.

        ``update_emas`` (training's generated-image pass for D, as NVIDIA's loss runs it): move
        ``mapping.w_avg`` and every layer's ``magnitude_ema``. ``synthesis_options``: ``noise_mode``
        (ignored) and ``fused``.
        """
        ws = self.mapping(z, c, psi=psi, cutoff=cutoff, update_w_avg=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_options)

    def extra_repr(self) -> str:
        h, w = self.resolution
        return f"resolution={h}x{w}, img_channels={self.img_channels}, num_ws={self.num_ws}"
