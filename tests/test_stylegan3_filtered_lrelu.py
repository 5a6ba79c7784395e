"""StyleGAN3's filtered leaky ReLU (src/modules/stylegan3/filtered_lrelu.py) against its definition.

The reference below is written from the definition, as NVlabs/stylegan3
``torch_utils/ops/filtered_lrelu.py:_filtered_lrelu_ref`` computes it: bias, zero insertion, padding,
a full-size 2-D convolution with the (outer-product) up filter, leaky ReLU times gain, clamp, a full-size
convolution with the down filter, decimation. The cases are every (up, down, taps, padding, separable or
radial) combination the generators of configs T and R use at 16..1024 px, derived from the filter
schedule of NVlabs/stylegan3 ``training/networks_stylegan3.py`` (``SynthesisNetwork.__init__`` and
``SynthesisLayer.__init__``; Karras et al. 2021, "Alias-Free Generative Adversarial Networks", App. C
and F), plus a non-square generator. Filters are random and asymmetric, so a flipped filter shows.
``tests/parity/filtered_lrelu.py`` runs the same cases against NVIDIA's own code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from src.modules.stylegan3.filtered_lrelu import filtered_lrelu

# ----------------------------------------------------------------------------------------------
# The configurations: StyleGAN3's per-layer resampling, from NVIDIA's schedule.


@dataclass(frozen=True)
class Geometry:
    """One synthesis layer's filtered_lrelu call: factors, taps, filter kind, padding and sizes."""

    up: int
    down: int
    taps_up: int  # 1 = no filter (None)
    taps_down: int
    radial: bool  # 2-D jinc down filter (config R, non-critical layers) instead of a separable one
    padding: tuple[int, int, int, int]  # x0, x1, y0, y1 on the upsampled image
    in_size: tuple[int, int]  # (height, width) entering filtered_lrelu (after the k x k conv's growth)
    out_size: tuple[int, int]
    torgb: bool

    @property
    def combo(self) -> tuple[int, int, int, int, bool, tuple[int, int, int, int]]:
        return self.up, self.down, self.taps_up, self.taps_down, self.radial, self.padding


def schedule(res: int, cfg: str, height: int | None = None, width: int | None = None) -> list[Geometry]:
    """The 15 layers of a ``cfg`` ('t' or 'r') generator for ``img_resolution = res``.

    ``height``/``width`` (default ``res``) give a non-square image at the same sampling rates: every
    canvas spans ``side / res`` units per axis plus the 10-sample margin, the last two exactly the image.
    """
    height, width = height or res, width or res
    n_layers, n_crit, margin = 14, 2, 10
    rates, cutoff_last, stop_first = [], res / 2, 2**2.1
    for i in range(n_layers + 1):
        e = min(i / (n_layers - n_crit), 1.0)
        stop = stop_first * (cutoff_last * 2**0.3 / stop_first) ** e
        rates.append(int(2 ** math.ceil(math.log2(min(stop * 2, res)))))

    def size(i: int, side: int) -> int:
        return side if i >= n_layers - 1 else side * rates[i] // res + 2 * margin

    layers = []
    for i in range(n_layers + 1):
        prev, torgb = max(i - 1, 0), i == n_layers
        k = 1 if torgb or cfg == "r" else 3
        tmp = max(rates[prev], rates[i]) * (1 if torgb else 2)
        up, down = tmp // rates[prev], tmp // rates[i]
        taps_up = 6 * up if up > 1 and not torgb else 1
        taps_down = 6 * down if down > 1 and not torgb else 1
        pads, ins, outs = [], [], []
        for side in (width, height):
            s_in, s_out = size(prev, side) + k - 1, size(i, side)
            total = (s_out - 1) * down + 1 - s_in * up + taps_up + taps_down - 2
            lo = (total + up) // 2
            pads += [lo, total - lo]
            ins.append(s_in)
            outs.append(s_out)
        radial = cfg == "r" and i < n_layers - n_crit and taps_down > 1
        layers.append(
            Geometry(up, down, taps_up, taps_down, radial, tuple(pads), (ins[1], ins[0]), (outs[1], outs[0]), torgb)  # type: ignore[arg-type]
        )
    return layers


def combinations(resolutions: tuple[int, ...]) -> dict[tuple, Geometry]:
    """Each distinct combination of configs T and R at these resolutions, with its smallest layer."""
    found: dict[tuple, Geometry] = {}
    for res in resolutions:
        for cfg in ("t", "r"):
            for g in schedule(res, cfg):
                if g.combo not in found or g.in_size < found[g.combo].in_size:
                    found[g.combo] = g
    return found


ALL_RES = (16, 32, 64, 128, 256, 512, 1024)
COMBOS = combinations(ALL_RES)


def layers_256() -> list:
    """The distinct layers of the 256-px T and R generators; those above 100 px are marked slow."""
    seen, params = set(), []
    for cfg in ("t", "r"):
        for i, g in enumerate(schedule(256, cfg)):
            if (g.combo, g.in_size) not in seen:
                seen.add((g.combo, g.in_size))
                marks = [pytest.mark.slow] if g.in_size[0] > 100 else []
                params.append(pytest.param(i, g, id=f"{cfg}256-L{i}", marks=marks))
    return params


def combo_id(c: tuple) -> str:
    up, down, tu, td, radial, pad = c
    return f"up{up}-down{down}-taps{tu}x{td}-{'radial' if radial else 'sep'}-pad{'_'.join(map(str, pad))}"


# ----------------------------------------------------------------------------------------------
# The reference, from the definition.


def reference(
    x: Tensor,
    fu: Tensor | None,
    fd: Tensor | None,
    b: Tensor | None,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
) -> Tensor:
    """Zero insertion and full-size 2-D convolutions (separable filters as their outer product)."""
    px0, px1, py0, py1 = padding
    c = x.shape[1]
    if b is not None:
        x = x + b.reshape(1, -1, 1, 1)
    z = x.new_zeros(x.shape[0], c, x.shape[2] * up, x.shape[3] * up)
    z[:, :, ::up, ::up] = x
    z = F.pad(z, [px0, px1, py0, py1])

    def conv(v: Tensor, f: Tensor | None, gain2d: float) -> Tensor:
        f2 = torch.ones(1, 1, dtype=v.dtype) if f is None else f.to(v.dtype)
        f2 = (torch.outer(f2, f2) if f2.ndim == 1 else f2) * gain2d
        if not flip_filter:
            f2 = f2.flip([0, 1])  # true convolution
        return F.conv2d(v, f2.expand(c, 1, *f2.shape), groups=c)

    v = conv(z, fu, float(up * up))
    v = torch.where(v >= 0, v, v * slope) * gain
    if clamp is not None:
        v = v.clamp(-clamp, clamp)
    return conv(v, fd, 1.0)[:, :, ::down, ::down]


def filters(g: Geometry, gen: torch.Generator) -> tuple[Tensor | None, Tensor | None]:
    """Random asymmetric lowpass-like filters of the layer's sizes, summing to 1 (DC gain 1)."""
    fu = None if g.taps_up == 1 else torch.rand(g.taps_up, generator=gen) + 0.1
    fd = None
    if g.taps_down > 1:
        shape = (g.taps_down, g.taps_down) if g.radial else (g.taps_down,)
        fd = torch.rand(shape, generator=gen) + 0.1
    return (None if fu is None else fu / fu.sum()), (None if fd is None else fd / fd.sum())


def compare(
    g: Geometry, dtype: torch.dtype, batch: int, channels: int, clamp: float | None, rtol: float, seed: int = 0
) -> float:
    """Values and gradients (x, b) of both; returns the fraction of clamped upsampled samples."""
    gen = torch.Generator().manual_seed(seed)
    fu, fd = filters(g, gen)
    x0 = torch.randn(batch, channels, *g.in_size, generator=gen, dtype=torch.float64)
    b0 = torch.randn(channels, generator=gen, dtype=torch.float64) * 0.5
    kw = dict(up=g.up, down=g.down, padding=g.padding, clamp=clamp)
    if g.torgb:
        kw.update(gain=1.0, slope=1.0)
    xs, bs = (
        (x0.clone().requires_grad_(), x0.to(dtype).requires_grad_()),
        (b0.clone().requires_grad_(), b0.to(dtype).requires_grad_()),
    )
    ref = reference(xs[0], fu, fd, bs[0], **kw)  # type: ignore[arg-type]
    out = filtered_lrelu(xs[1], fu, fd, bs[1], **kw)  # type: ignore[arg-type]
    assert out.shape == (batch, channels, *g.out_size) == ref.shape and out.dtype == dtype
    dy = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    ref.backward(dy)
    out.backward(dy.to(dtype))
    for mine, theirs in ((out, ref), (xs[1].grad, xs[0].grad), (bs[1].grad, bs[0].grad)):
        assert mine is not None and theirs is not None
        scale = theirs.abs().max().item()
        torch.testing.assert_close(mine.double(), theirs, rtol=rtol, atol=rtol * scale)
    if clamp is None:
        return 0.0
    with torch.no_grad():  # how much the clamp bit: its gradient path was exercised
        kw2 = dict(kw, clamp=None)
        big = reference(x0, fu, None, b0, **{**kw2, "down": 1})  # type: ignore[arg-type]
    return float((big.abs() > clamp).double().mean())


# ----------------------------------------------------------------------------------------------
# Tests.


def test_schedule_matches_nvidia_256_table() -> None:
    """The derivation reproduces StyleGAN3-T/R at 256 px (networks_stylegan3.py's padding rule)."""
    t = schedule(256, "t")
    assert [g.in_size[0] for g in t] == [38, 38, 38, 38, 54, 54, 86, 86, 150, 150, 150, 278, 278, 278, 256]
    assert [g.out_size[0] for g in t] == [36, 36, 36, 52, 52, 84, 84, 148, 148, 148, 276, 276, 276, 256, 256]
    assert [(g.up, g.down) for g in t][:5] == [(2, 2), (2, 2), (2, 2), (4, 2), (2, 2)]
    assert t[0].padding == (9, 8, 9, 8) and t[3].padding == (-6, -9, -6, -9) and t[13].padding == (-11, -12, -11, -12)
    assert (t[3].taps_up, t[3].taps_down) == (24, 12) and t[14].torgb and t[14].taps_up == t[14].taps_down == 1
    r = schedule(256, "r")
    assert r[0].padding == (11, 10, 11, 10) and r[3].padding == (-2, -5, -2, -5) and r[13].padding == (-9, -10, -9, -10)
    assert [g.radial for g in r] == [True] * 12 + [False] * 3
    assert not any(g.radial for g in t)


def test_every_resolution_uses_the_same_eight_combinations() -> None:
    """256 and 1024 px already use every combination that 16..1024 px do: 3 for T, 4 for R, ToRGB."""
    assert set(COMBOS) == set(combinations((256, 1024)))
    assert len(COMBOS) == 8, sorted(map(combo_id, COMBOS))


@pytest.mark.parametrize("combo", sorted(COMBOS), ids=combo_id)
def test_matches_reference_float64(combo: tuple) -> None:
    """Values and gradients equal to float64 round-off, clamp active, at the combination's smallest layer."""
    g = COMBOS[combo]
    clamped = compare(g, torch.float64, batch=2, channels=3, clamp=0.8, rtol=1e-10)
    assert clamped > 0.005, clamped  # the clamp (and its zero gradient) takes part


@pytest.mark.parametrize(("i", "g"), layers_256())
def test_matches_reference_float32_256px_layers(i: int, g: Geometry) -> None:
    """Every layer of 256-px T and R generators at its own size, float32, training's clamp 256."""
    compare(g, torch.float32, batch=1, channels=2, clamp=256.0, rtol=1e-5, seed=i)


@pytest.mark.parametrize("cfg", ["t", "r"])
def test_non_square_generator(cfg: str) -> None:
    """A 48x80 image (reference resolution 64): non-square canvases at every layer, float64."""
    layers = schedule(64, cfg, height=48, width=80)
    assert all(g.in_size[0] != g.in_size[1] for g in layers)
    seen = set()
    for i, g in enumerate(layers):
        if g.combo + (g.in_size,) in seen:
            continue
        seen.add(g.combo + (g.in_size,))
        compare(g, torch.float64, batch=1, channels=2, clamp=1.0, rtol=1e-10, seed=i)


def test_asymmetric_padding_non_square_filters_and_odd_factors() -> None:
    """Outside StyleGAN3's schedule: per-side padding, a 2-D [5, 3] up filter, up 3, down 3."""
    for up, down, fu_shape, fd_shape, pad in [
        (3, 1, (5, 3), (4,), (2, 1, -1, 3)),
        (1, 3, (5,), (3, 5), (1, 2, 3, 0)),
        (2, 2, (12,), (12, 12), (9, 7, 3, 11)),
    ]:
        gen = torch.Generator().manual_seed(up)
        fu = torch.rand(fu_shape, generator=gen, dtype=torch.float64)  # float64: up**2 = 9 stays exact
        fd = torch.rand(fd_shape, generator=gen, dtype=torch.float64)
        x = torch.randn(2, 3, 9, 13, generator=gen, dtype=torch.float64, requires_grad=True)
        b = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
        for flip in (False, True):
            ref = reference(x, fu, fd, b, up, down, pad, clamp=2.0, flip_filter=flip)
            out = filtered_lrelu(x, fu, fd, b, up, down, list(pad), clamp=2.0, flip_filter=flip)
            torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
            dy = torch.randn_like(ref)
            torch.testing.assert_close(torch.autograd.grad(out, (x, b), dy), torch.autograd.grad(ref, (x, b), dy))


def test_identity_filters_still_resample() -> None:
    """fu/fd None with up/down > 1: zero insertion with gain up**2, plain decimation (NVIDIA's identity)."""
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    out = filtered_lrelu(x, None, None, None, up=2, down=1, padding=0, gain=1.0, slope=1.0)
    expect = torch.zeros(1, 2, 10, 12, dtype=torch.float64)
    expect[:, :, ::2, ::2] = 4 * x
    torch.testing.assert_close(out, expect)
    out = filtered_lrelu(x, None, None, None, up=1, down=2, padding=[0, 1, 1, 0], gain=1.0, slope=1.0)
    torch.testing.assert_close(out, F.pad(x, [0, 1, 1, 0])[:, :, ::2, ::2])


def test_activation_gain_slope_clamp() -> None:
    """No filters: ``clamp(gain * lrelu_slope(x + b))``, and its gradient: gain, gain*slope, 0 when clamped."""
    x = torch.tensor([[[[-3.0, -0.5, 0.0, 0.5, 3.0]]]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.25], dtype=torch.float64, requires_grad=True)
    y = filtered_lrelu(x, b=b, gain=2.0, slope=0.1, clamp=4.0)
    v = torch.tensor([-2.75, -0.25, 0.25, 0.75, 3.25], dtype=torch.float64)
    expect = torch.where(v >= 0, v, 0.1 * v) * 2.0
    torch.testing.assert_close(y.flatten(), expect.clamp(-4, 4))
    y.sum().backward()
    assert x.grad is not None and b.grad is not None
    torch.testing.assert_close(x.grad.flatten(), torch.tensor([0.2, 0.2, 2.0, 2.0, 0.0], dtype=torch.float64))
    assert b.grad.item() == pytest.approx(4.4)
    # slope 0: negatives have no gradient; slope 1 and gain 1: the identity.
    x.grad = None
    filtered_lrelu(x, slope=0.0, gain=1.0).sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad.flatten(), torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(filtered_lrelu(x, slope=1.0, gain=1.0), x)


def test_torgb_case() -> None:
    """ToRGB: no filters, gain 1, slope 1, clamp 256: bias then clamp, gradient 1 except where clamped."""
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(2, 3, 16, 16, generator=gen) * 200).requires_grad_()
    b = torch.randn(3, generator=gen, requires_grad=True)
    y = filtered_lrelu(x, None, None, b, 1, 1, 0, gain=1, slope=1, clamp=256)
    v = x + b.reshape(1, -1, 1, 1)
    torch.testing.assert_close(y, v.clamp(-256, 256), rtol=0, atol=0)
    y.backward(torch.ones_like(y))
    inside = (v.abs() <= 256).float()
    assert 0 < inside.mean() < 1
    torch.testing.assert_close(x.grad, inside)
    torch.testing.assert_close(b.grad, inside.sum(dim=(0, 2, 3)))


def test_padding_forms_and_input_untouched() -> None:
    """``padding`` as int, [x, y] and [x0, x1, y0, y1]; the caller's tensors are never written."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 8, 9, generator=gen)
    keep = x.clone()
    fu = torch.rand(4, generator=gen)
    a = filtered_lrelu(x, fu, None, None, 2, 1, 3)
    torch.testing.assert_close(a, filtered_lrelu(x, fu, None, None, 2, 1, [3, 3]))
    torch.testing.assert_close(a, filtered_lrelu(x, fu, None, None, 2, 1, [3, 3, 3, 3]))
    filtered_lrelu(x, slope=1.0, gain=1.0, clamp=0.1)  # identity window: works on a copy
    assert torch.equal(x, keep)
    with pytest.raises(ValueError, match="padding"):
        filtered_lrelu(x, padding=[1, 2, 3])
    with pytest.raises(ValueError, match="1-D"):
        filtered_lrelu(x, fu=torch.ones(2, 2, 2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_computes_in_its_dtype(dtype: torch.dtype) -> None:
    """float16/bfloat16 in, same dtype out (arithmetic in that dtype, as NVIDIA's op), close to float64."""
    g = COMBOS[(4, 2, 24, 12, True, (-2, -5, -2, -5))]
    compare(g, dtype, batch=1, channels=3, clamp=256.0, rtol=3e-2 if dtype == torch.bfloat16 else 5e-3)


def test_channels_last_input_and_double_backward() -> None:
    """A channels-last input gives the same values in channels-last; second derivatives exist (gradgradcheck)."""
    g = COMBOS[(2, 2, 12, 12, False, (9, 8, 9, 8))]
    gen = torch.Generator().manual_seed(2)
    fu, fd = filters(g, gen)
    x = torch.randn(2, 4, *g.in_size, generator=gen)
    y = filtered_lrelu(x, fu, fd, padding=g.padding, up=2, down=2)
    ycl = filtered_lrelu(x.contiguous(memory_format=torch.channels_last), fu, fd, padding=g.padding, up=2, down=2)
    assert ycl.is_contiguous(memory_format=torch.channels_last) and y.is_contiguous()
    torch.testing.assert_close(ycl, y)
    xs = torch.randn(1, 1, 4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    bs = torch.randn(1, generator=gen, dtype=torch.float64, requires_grad=True)
    fu4, fd33 = torch.rand(4, generator=gen), torch.rand(3, 3, generator=gen)

    def op(x: Tensor, b: Tensor) -> Tensor:
        return filtered_lrelu(x, fu4, fd33, b, 2, 2, [2, 1, 1, 2], clamp=1.5)

    assert torch.autograd.gradcheck(op, (xs, bs))
    assert torch.autograd.gradgradcheck(op, (xs, bs))


def test_backward_keeps_a_bit_per_upsampled_sample() -> None:
    """Memory: what autograd keeps is one bit per upsampled sample (plus one more only when something
    was clamped), 1/32 of one float32 copy of the upsampled tensor; the reference keeps several."""
    g = COMBOS[(4, 2, 24, 12, False, (-6, -9, -6, -9))]
    gen = torch.Generator().manual_seed(4)
    fu, fd = filters(g, gen)
    x = torch.randn(1, 8, *g.in_size, generator=gen, requires_grad=True)
    b = torch.zeros(8, requires_grad=True)
    saved: list[Tensor] = []

    def pack(t: Tensor) -> Tensor:
        saved.append(t)
        return t

    tmp = 8 * ((g.in_size[0] * 4 - 15 - 23) * (g.in_size[1] * 4 - 15 - 23))  # upsampled samples
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        filtered_lrelu(x, fu, fd, b, 4, 2, g.padding, clamp=256)
    mine = sum(t.numel() * t.element_size() for t in saved if t.data_ptr() != x.data_ptr())
    assert mine == (tmp + 7) // 8, (mine, tmp)
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        reference(x, fu, fd, b, 4, 2, g.padding, clamp=256)
    assert sum(t.numel() * t.element_size() for t in saved) > 8 * tmp


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    for combo in sorted(COMBOS):
        g = COMBOS[combo]
        gen = torch.Generator().manual_seed(5)
        fu, fd = filters(g, gen)
        x = torch.randn(2, 3, *g.in_size, generator=gen)
        b = torch.randn(3, generator=gen)
        kw = dict(up=g.up, down=g.down, padding=g.padding, clamp=0.8)
        if g.torgb:
            kw.update(gain=1.0, slope=1.0)
        outs, grads = [], []
        torch.backends.cudnn.allow_tf32 = False  # full float32 convolutions for the comparison
        for dev in ("cpu", "cuda"):
            xd, bd = x.to(dev).requires_grad_(), b.to(dev).requires_grad_()
            fud, fdd = (None if f is None else f.to(dev) for f in (fu, fd))
            y = filtered_lrelu(xd, fud, fdd, bd, **kw)  # type: ignore[arg-type]
            y.square().sum().backward()
            outs.append(y.cpu())
            grads.append((xd.grad.cpu(), bd.grad.cpu()))  # type: ignore[union-attr]
        torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-3)
