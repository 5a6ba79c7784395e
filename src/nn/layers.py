"""Equalized-learning-rate layers and FIR resampling in plain PyTorch, after stylegan2-ada-pytorch.

No custom CUDA kernels: every op here is a stock PyTorch op, so it runs on CPU, compiles with
``torch.compile`` and needs no build step. Weights are stored ~N(0, 1) and scaled at run time by
``1/sqrt(fan_in)`` ("equalized learning rate"); leaky ReLU uses slope 0.2 and gain sqrt(2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def bias_act(
    x: Tensor,
    bias: Tensor | None,
    act: str = "linear",
    gain: float = 1.0,
    clamp: float | None = None,
    dim: int = 1,
    inplace: bool = False,
) -> Tensor:
    """Add a bias along ``dim``, apply ``act`` ('linear' | 'lrelu'), scale by its gain, clamp.

    ``inplace=True`` overwrites ``x`` (only for tensors nothing else needs, outside autograd): the
    gain goes first, since ``lrelu(x + b) * g == lrelu(x * g + b * g)`` for ``g > 0``, then the bias,
    the activation and the clamp, each one pass over ``x`` with no new memory.
    """
    if inplace:
        g = gain * (LRELU_GAIN if act == "lrelu" else 1.0)
        if act not in ("linear", "lrelu"):
            raise ValueError(f"activation {act!r}: expected 'linear' or 'lrelu'")
        if g != 1:
            x.mul_(g)
        if bias is not None:
            shape = [1] * x.ndim
            shape[dim] = -1
            x.add_(bias.to(x.dtype).reshape(shape), alpha=g)
        if act == "lrelu":
            F.leaky_relu_(x, LRELU_SLOPE)
        if clamp is not None:
            x.clamp_(-clamp, clamp)
        return x
    if bias is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + bias.to(x.dtype).reshape(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
        gain = gain * LRELU_GAIN
    elif act != "linear":
        raise ValueError(f"activation {act!r}: expected 'linear' or 'lrelu'")
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Scale ``x`` to unit root-mean-square along ``dim`` (the mapping network's input norm)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# ----------------------------------------------------------------------------------------------
# FIR filtering (upfirdn2d) with the separable [1, 3, 3, 1] kernel.


def make_fir(taps=(1, 3, 3, 1)) -> Tensor:
    """1-D FIR kernel normalised to sum 1; applied along both axes it is StyleGAN2's 2-D blur."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    return f / f.sum()


def upfirdn2d(
    x: Tensor,
    f: Tensor,
    up: int = 1,
    down: int = 1,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> Tensor:
    """Upsample by zero insertion, pad, convolve with the separable FIR ``f``, downsample.

    ``padding`` is ``(left, right, top, bottom)``; negative values crop. ``gain`` multiplies the
    2-D kernel (``up**2`` keeps the mean when upsampling).

    One depthwise convolution with the k x k outer product of the taps, its padding and its stride:
    on CPU (oneDNN) a single pass beats two 1-D passes and a separate pad, and the stride computes
    only the kept pixels (``benchmark.py`` figures in docs/benchmarks.md). The result keeps the
    input's memory format (channels-last stays channels-last).
    """
    n, c, h, w = x.shape
    if up > 1:  # zero insertion, in the input's memory format
        fmt = (
            torch.channels_last
            if x.is_contiguous(memory_format=torch.channels_last) and c > 1
            else torch.contiguous_format
        )
        z = x.new_zeros((n, c, h * up, w * up)).contiguous(memory_format=fmt)
        z[:, :, ::up, ::up] = x
        x = z
    px0, px1, py0, py1 = padding
    conv_pad = 0
    if px0 == px1 == py0 == py1 >= 0:
        conv_pad = px0
    else:
        x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
        if min(padding) < 0:
            x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    taps = f.to(x.dtype).flip(0)  # true convolution, as upfirdn2d defines it
    k = taps.numel()
    kernel = (torch.outer(taps, taps) * gain).reshape(1, 1, k, k).expand(c, 1, k, k)
    return F.conv2d(x, kernel, stride=down, padding=conv_pad, groups=c)


def upsample2d(x: Tensor, f: Tensor, up: int = 2) -> Tensor:
    """2x FIR upsampling that keeps the image aligned (the skip generator's image path)."""
    k = f.numel()
    p0, p1 = (k + up - 1) // 2, (k - up) // 2
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up**2)


def downsample2d(x: Tensor, f: Tensor, down: int = 2) -> Tensor:
    """2x FIR downsampling (blur, then keep every second pixel)."""
    k = f.numel()
    p0, p1 = (k - down + 1) // 2, (k - down) // 2
    return upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))


# ----------------------------------------------------------------------------------------------
# Layers.


class FullyConnected(nn.Module):
    """Equalized linear layer: ``y = act(x @ (W * lr_mult / sqrt(in)).T + b * lr_mult)``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bias_init: float = 0.0,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.lr_multiplier = lr_multiplier
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}, lr_mult={self.lr_multiplier:g}"


class Conv2dLayer(nn.Module):
    """Equalized convolution with optional FIR 2x downsampling (the discriminator's layers).

    ``down=2`` blurs then strides, exactly as the reference resampling does for 3x3 and 1x1 kernels.
    """

    fir: Tensor  # buffer (register_buffer in __init__)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        down: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.register_buffer("fir", make_fir(), persistent=False)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        if self.down > 1:
            k = self.fir.numel()
            p0 = self.padding + (k - self.down + 1) // 2
            p1 = self.padding + (k - self.down) // 2
            if self.kernel_size == 1:  # downsample first, then the 1x1 conv
                x = upfirdn2d(x, self.fir, down=self.down, padding=(p0, p1, p0, p1))
                x = F.conv2d(x, w)
            else:  # blur, then strided conv
                x = upfirdn2d(x, self.fir, padding=(p0, p1, p0, p1))
                x = F.conv2d(x, w, stride=self.down)
        else:
            x = F.conv2d(x, w, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, self.activation, gain=gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_channels}, out={self.out_channels}, k={self.kernel_size}, "
            f"act={self.activation}, down={self.down}"
        )


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    up: int = 1,
    demodulate: bool = True,
    fir: Tensor | None = None,
    fused: bool = False,
    prenormalize: bool = False,
) -> Tensor:
    """Modulated (and demodulated) convolution (Karras et al. 2020, §2.2, Eq. 1-3).

    ``x`` [N, I, H, W], ``weight`` [O, I, k, k] (already gain-scaled), ``styles`` [N, I].
    Demodulation coefficients ``1/sqrt(sum_{i,kh,kw} (w * s)^2 + 1e-8)`` are computed as a
    [N, I] x [I, O] product, never materialising per-sample weights unless ``fused``.
    ``fused=False`` scales activations around a shared convolution; ``fused=True`` runs one grouped
    convolution with per-sample weights. Both compute the same function.
    ``up=2`` is a stride-2 transposed convolution followed by the FIR blur (gain 4).

    ``prenormalize`` (an fp16 layer of NVIDIA's mixed-precision recipe, :mod:`src.nn.precision`): the
    weights are scaled per output channel to a largest magnitude of ``1 / sqrt(I * k * k)`` and the styles
    per sample to a largest magnitude of 1, as stylegan2-ada-pytorch's ``modulated_conv2d`` does for fp16
    inputs, and the demodulation coefficients are computed in float32; the convolution itself then runs in
    the autocast dtype without overflowing. With demodulation the result is the same function (both
    scalings cancel).
    """
    n, in_ch, h, w_ = x.shape
    out_ch, _, k, _ = weight.shape
    dcoefs = None
    if prenormalize:
        with torch.autocast(x.device.type, enabled=False):
            weight, styles = weight.float(), styles.float()
            if demodulate:
                weight = weight * (weight[0].numel() ** -0.5 / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
                styles = styles / styles.abs().amax(dim=1, keepdim=True)
                dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
    elif demodulate:
        wsq = weight.square().sum(dim=[2, 3])  # [O, I]
        dcoefs = (styles.square() @ wsq.t() + 1e-8).rsqrt()  # [N, O]

    if fused:
        wt = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)
        if dcoefs is not None:
            wt = wt * dcoefs.reshape(n, out_ch, 1, 1, 1)
        x = x.reshape(1, n * in_ch, h, w_)
        if up > 1:
            wt = wt.transpose(1, 2).reshape(n * in_ch, out_ch, k, k)
            x = F.conv_transpose2d(x, wt, stride=up, groups=n)
        else:
            x = F.conv2d(x, wt.reshape(n * out_ch, in_ch, k, k), padding=k // 2, groups=n)
        x = x.reshape(n, out_ch, *x.shape[2:])
    else:
        x = x * styles.to(x.dtype).reshape(n, in_ch, 1, 1)
        if up > 1:
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=up)
        else:
            x = F.conv2d(x, weight, padding=k // 2)
        if dcoefs is not None:
            d = dcoefs.to(x.dtype).reshape(n, out_ch, 1, 1)
            # outside autograd the conv output is ours to overwrite
            x = x * d if torch.is_grad_enabled() else x.mul_(d)
    if up > 1:
        assert fir is not None, "up > 1 needs the FIR filter"
        # transposed conv gives (H-1)*up + k; the blur with padding 1 (k=3, 4 taps) brings it to H*up.
        kf = fir.numel()
        p0 = (kf + up - 1) // 2 + k // 2 - (k - 1)
        p1 = (kf - up) // 2 + k // 2 - (k - up)
        x = upfirdn2d(x, fir, padding=(p0, p1, p0, p1), gain=up**2)
    return x
