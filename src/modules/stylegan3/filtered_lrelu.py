"""Filtered leaky ReLU of StyleGAN3 (Karras et al. 2021, "Alias-Free Generative Adversarial Networks").

What the op computes is NVlabs/stylegan3 ``torch_utils/ops/filtered_lrelu.py`` (``filtered_lrelu`` and its
reference ``_filtered_lrelu_ref``), per channel: add the bias ``b``; upsample by ``up`` (zero insertion)
and convolve with ``fu`` (gain ``up**2``), the zero padding ``padding`` (negative crops) being applied to
the upsampled image; ``clamp(gain * lrelu_slope(.), -clamp, clamp)``; convolve with ``fd`` and keep every
``down``-th sample. A 1-D filter ``[taps]`` is separable (applied along both axes), a 2-D one
``[taps_y, taps_x]`` is used as is (paper App. C: the Kaiser filters of config T are separable, the
radially symmetric jinc filters of config R are not). ``flip_filter=False`` is a true convolution.

How, in plain PyTorch with no build step (paper App. D describes NVIDIA's fused CUDA kernel instead):

* upsampling is polyphase: a depthwise transposed convolution with stride ``up`` never multiplies an
  inserted zero, and it runs only over the inputs that reach the padded window;
* the down filter is a strided depthwise convolution: only the kept samples are computed;
* separable filters run as two 1-D passes (``2 * taps`` instead of ``taps**2`` MACs per sample);
* tensors are channels-last inside the op (the depthwise kernels vectorise over channels there);
  the result comes back in the input's memory format;
* the activation gain rides in the up filter, leaky ReLU and clamp run in place, and on the CPU the
  elementwise passes that need temporaries go in 4M-element slices (fresh pages cost more there than
  the arithmetic);
* a custom autograd function keeps one bit per upsampled sample (was it negative) and, only when
  something was clamped, one more (NVIDIA's CUDA kernel keeps two bits); no activation is stored.
  Its backward runs the transposed steps in reverse (transposed convolution for the strided one and
  vice versa) with ordinary differentiable ops, so even double backward works (the activation's
  second derivative is zero). Training needs first-order gradients only: R1 acts on D, and StyleGAN3
  has no path-length term.

Arithmetic runs in the input's dtype, as NVIDIA's op does (filters are cast to it after the upsampling
gain is folded in, in float32); float32, float64, float16 and bfloat16 work on CPU and CUDA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

_CL = torch.channels_last


def _parse_padding(padding: int | list[int] | tuple[int, ...]) -> tuple[int, int, int, int]:
    """``int``, ``[x, y]`` or ``[x0, x1, y0, y1]`` -> ``(x0, x1, y0, y1)`` (NVIDIA's convention)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    p = [int(v) for v in padding]
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    if len(p) == 4:
        return p[0], p[1], p[2], p[3]
    raise ValueError(f"padding must be an int or a list of 2 or 4 ints, got {padding!r}")


def _window(x: Tensor, sy: int, ly: int, sx: int, lx: int) -> Tensor:
    """``x[:, :, sy:sy+ly, sx:sx+lx]`` where indices outside ``x`` read zero (a view when inside)."""
    h, w = x.shape[2], x.shape[3]
    if sy >= 0 and sx >= 0 and sy + ly <= h and sx + lx <= w:
        return x[:, :, sy : sy + ly, sx : sx + lx]
    return F.pad(x, [-sx, sx + lx - w, -sy, sy + ly - h])


def _flat(t: Tensor) -> Tensor:
    """A 1-D view of a dense tensor, contiguous or channels-last (elementwise ops run fastest on it)."""
    return t.view(-1) if t.is_contiguous() else t.permute(0, 2, 3, 1).view(-1)


def _unflat(flat: Tensor, shape: torch.Size, fmt: torch.memory_format) -> Tensor:
    """Inverse of :func:`_flat` for a tensor of ``shape`` in memory format ``fmt``."""
    n, c, h, w = shape
    return flat.view(n, c, h, w) if fmt == torch.contiguous_format else flat.view(n, h, w, c).permute(0, 3, 1, 2)


def _i64(v: int) -> int:
    """A 64-bit pattern as the signed integer torch's int64 holds."""
    return v - (1 << 64) if v >= 1 << 63 else v


_GATHER = _i64(0x0102040810204080)  # moves the low bit of each of 8 bytes into the top byte
_SPREAD, _SELECT = _i64(0x0101010101010101), _i64(0x8040201008040201)  # byte k keeps bit k


def _pack_bits(mask: Tensor) -> Tensor:
    """A bool tensor as uint8 bits, 8 per byte (int64 arithmetic on 8 bytes at a time)."""
    u = mask.reshape(-1).view(torch.uint8)
    if u.numel() % 8:
        u = torch.cat([u, u.new_zeros(8 - u.numel() % 8)])
    return (u.view(torch.int64) * _GATHER).bitwise_right_shift_(56).to(torch.uint8)


def _unpack_bits(packed: Tensor, numel: int, dtype: torch.dtype) -> Tensor:
    """Inverse of :func:`_pack_bits`: ``numel`` values 0/1 of ``dtype``."""
    y = packed.to(torch.int64).mul_(_SPREAD).bitwise_and_(_SELECT).view(torch.uint8)  # byte k: bit k
    return y.ne_(0)[:numel].to(dtype)


def _chunks(numel: int, device: torch.device) -> list[tuple[int, int]]:
    """Slices for the elementwise passes: on the CPU small enough that their temporaries come from
    the allocator's free lists (fresh pages cost more than the arithmetic), whole on the GPU."""
    step = numel if device.type != "cpu" else _CHUNK
    return [(i, min(i + step, numel)) for i in range(0, numel, step)]


_CHUNK = 1 << 22  # elements (16 MiB of float32); a multiple of 8, so chunks pack into whole bytes


@dataclass(frozen=True)
class _Axis:
    """One axis of an up step: zero-insert by ``u``, full convolution with ``k`` taps, keep the window
    ``[s, s + length)``. Only the inputs ``[a, a + m)`` reach the window; the transposed convolution
    over them spans ``(m - 1) * u + k`` samples, skips ``p`` at each end (its ``padding``) and leaves
    ``full`` samples, in which the window starts at ``r``. ``n`` is the input length."""

    n: int
    a: int
    m: int
    p: int
    r: int
    full: int
    length: int

    @staticmethod
    def plan(n: int, k: int, u: int, s: int, length: int) -> _Axis:
        a = max(-((k - 1 - s) // u), 0)  # ceil((s - k + 1) / u): the first input reaching the window
        e = min((s + length - 1) // u, n - 1)  # the last one
        if length < 1 or e < a:
            raise ValueError("filtered_lrelu: the padding leaves no input inside the output window")
        m = e - a + 1
        full, r = (m - 1) * u + k, s - u * a
        p = min(max(r, 0), max(full - r - length, 0))
        return _Axis(n, a, m, p, r - p, full - 2 * p, length)


@dataclass(frozen=True)
class _Up:
    """Polyphase upsampling pass: transposed depthwise convolution with ``w`` [C, 1, kh, kw] (a true
    convolution of the zero-inserted input), stride ``u``; ``w`` None = padding/cropping only."""

    w: Tensor | None
    u: tuple[int, int]
    y: _Axis
    x: _Axis

    def __call__(self, x: Tensor) -> Tensor:
        ay, ax = self.y, self.x
        if self.w is None:
            return _window(x, ay.r, ay.length, ax.r, ax.length)
        x = x[:, :, ay.a : ay.a + ay.m, ax.a : ax.a + ax.m]
        y = F.conv_transpose2d(x, self.w, stride=self.u, padding=(ay.p, ax.p), groups=x.shape[1])
        return _window(y, ay.r, ay.length, ax.r, ax.length)

    def adjoint(self, g: Tensor) -> Tensor:
        """Transpose: a strided depthwise convolution, computing only the input-rate samples."""
        ay, ax = self.y, self.x
        if self.w is None:
            return _window(g, -ay.r, ay.n, -ax.r, ax.n)
        g = _window(g, -ay.r, ay.full, -ax.r, ax.full)
        gx = F.conv2d(g, self.w, stride=self.u, padding=(ay.p, ax.p), groups=g.shape[1])
        return _window(gx, -ay.a, ay.n, -ax.a, ax.n)


@dataclass(frozen=True)
class _Down:
    """ "Valid" depthwise correlation with ``w`` [C, 1, kh, kw] keeping every ``d``-th sample (a strided
    convolution), from an input of ``size`` to ``out``; ``w`` None = the identity."""

    w: Tensor | None
    d: tuple[int, int]
    size: tuple[int, int]
    out: tuple[int, int]

    def __call__(self, t: Tensor) -> Tensor:
        if self.w is None:
            return t
        kh, kw = self.w.shape[2], self.w.shape[3]
        t = t[:, :, : (self.out[0] - 1) * self.d[0] + kh, : (self.out[1] - 1) * self.d[1] + kw]
        return F.conv2d(t, self.w, stride=self.d, groups=t.shape[1])

    def adjoint(self, g: Tensor) -> Tensor:
        """Transpose: a transposed convolution, zero-extended to the input size."""
        if self.w is None:
            return g
        kh, kw = self.w.shape[2], self.w.shape[3]
        extra = (self.size[0] - (self.out[0] - 1) * self.d[0] - kh, self.size[1] - (self.out[1] - 1) * self.d[1] - kw)
        if 0 <= extra[0] < self.d[0] and 0 <= extra[1] < self.d[1]:  # exact size, no copy
            return F.conv_transpose2d(g, self.w, stride=self.d, output_padding=extra, groups=g.shape[1])
        y = F.conv_transpose2d(g, self.w, stride=self.d, groups=g.shape[1])
        return _window(y, 0, self.size[0], 0, self.size[1])


@dataclass(frozen=True)
class _Plan:
    """The passes of one call (separable filters make two each) and the activation's constants."""

    up: tuple[_Up, ...]
    down: tuple[_Down, ...]
    gain: float  # left to apply after upsampling (1 when the up filter carries it)
    slope: float
    clamp: float | None


def _kernel(f: Tensor, c: int) -> Tensor:
    """A 2-D filter as the depthwise kernel [C, 1, kh, kw] of ``c`` channels."""
    return f.reshape(1, 1, f.shape[0], f.shape[1]).expand(c, 1, f.shape[0], f.shape[1]).contiguous()


def _make_plan(
    shape: torch.Size,
    fu: Tensor | None,
    fd: Tensor | None,
    up: int,
    down: int,
    pad: tuple[int, int, int, int],
    gain: float,
    slope: float,
    clamp: float | None,
) -> _Plan:
    """``fu``/``fd``: true-convolution filters in the compute dtype; ``fu`` already carries its gain,
    and is None only when ``up == 1``; ``fd`` is None only when ``down == 1``."""
    c, h, w = shape[1], shape[2], shape[3]
    px0, px1, py0, py1 = pad
    kuy, kux = (1, 1) if fu is None else (fu.shape[0], fu.shape[-1])
    ay = _Axis.plan(h, kuy, up, kuy - 1 - py0, h * up + py0 + py1 - kuy + 1)
    ax = _Axis.plan(w, kux, up, kux - 1 - px0, w * up + px0 + px1 - kux + 1)
    size = (ay.length, ax.length)
    ups: tuple[_Up, ...]
    if fu is None:
        ups = (_Up(None, (1, 1), _Axis(h, 0, h, 0, -py0, h, size[0]), _Axis(w, 0, w, 0, -px0, w, size[1])),)
    elif fu.ndim == 2:
        ups = (_Up(_kernel(fu, c), (up, up), ay, ax),)
    else:
        k = fu.numel()
        keep_h, keep_w = _Axis.plan(h, 1, 1, 0, h), _Axis.plan(size[1], 1, 1, 0, size[1])
        ups = (
            _Up(_kernel(fu.reshape(1, k), c), (1, up), keep_h, ax),
            _Up(_kernel(fu.reshape(k, 1), c), (up, 1), ay, keep_w),
        )
    kdy, kdx = (1, 1) if fd is None else (fd.shape[0], fd.shape[-1])
    out = ((size[0] - kdy + down) // down, (size[1] - kdx + down) // down)
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"filtered_lrelu: empty output for input {tuple(shape)} with these filters/padding")
    downs: tuple[_Down, ...]
    if fd is None:
        downs = (_Down(None, (1, 1), size, out),)
    elif fd.ndim == 2:
        downs = (_Down(_kernel(fd.flip([0, 1]), c), (down, down), size, out),)
    else:
        k, mid = fd.numel(), (size[0], out[1])
        f = fd.flip([0])
        downs = (
            _Down(_kernel(f.reshape(1, k), c), (1, down), size, mid),
            _Down(_kernel(f.reshape(k, 1), c), (down, 1), mid, out),
        )
    return _Plan(ups, downs, gain if fu is None else 1.0, slope, clamp)


class _FilteredLReLU(torch.autograd.Function):
    """Forward saves, one bit each, whether each upsampled sample was negative (and, only if any was,
    clamped); backward runs the transposed passes in reverse order."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, b: Tensor | None, plan: _Plan) -> Tensor:
        fmt = torch.contiguous_format if x.is_contiguous() else _CL
        if b is not None:  # bias and change of layout in one pass
            t = torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=_CL)
            torch.add(x, b.reshape(1, -1, 1, 1), out=t)
        else:
            t = x.contiguous(memory_format=_CL)
        for step in plan.up:
            t = step(t)
        if t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() or not t.is_contiguous(memory_format=_CL):
            t = t.clone(memory_format=_CL)  # in place below: never into the caller's tensor
        flat = _flat(t)
        if plan.gain != 1:
            flat.mul_(plan.gain)
        spans = _chunks(flat.numel(), flat.device)
        neg = None
        if plan.slope != 1:
            neg = torch.cat([_pack_bits(flat[i:j] < 0) for i, j in spans])
            F.leaky_relu_(flat, plan.slope)
        clamped = None
        if plan.clamp is not None:
            c = plan.clamp
            if flat.is_cuda:  # no host sync on the GPU: always keep the mask there
                clamp_any = True
            else:
                lo, hi = torch.aminmax(flat)
                clamp_any = bool(hi > c) or bool(lo < -c)
            if clamp_any:
                clamped = torch.cat([_pack_bits(flat[i:j].abs() > c) for i, j in spans])
                flat.clamp_(-c, c)
        ctx.save_for_backward(neg, clamped)
        ctx.plan, ctx.tshape, ctx.fmt = plan, t.shape, fmt
        for dstep in plan.down:
            t = dstep(t)
        return t.contiguous(memory_format=fmt)

    @staticmethod
    def backward(ctx: Any, dy: Tensor) -> tuple[Tensor | None, ...]:
        neg, clamped = ctx.saved_tensors
        plan: _Plan = ctx.plan
        g = dy.contiguous(memory_format=_CL)
        for dstep in reversed(plan.down):
            g = dstep.adjoint(g)
        g = g.contiguous(memory_format=_CL)
        if g.untyped_storage().data_ptr() == dy.untyped_storage().data_ptr():
            g = g.clone(memory_format=_CL)  # in place below: never into the incoming gradient
        flat = _flat(g)
        for i, j in _chunks(flat.numel(), flat.device):
            part = flat[i:j]
            if neg is not None:  # g * (slope if negative else 1), one fused in-place pass
                part.addcmul_(part, _unpack_bits(neg[i // 8 : (j + 7) // 8], j - i, part.dtype), value=plan.slope - 1)
            if clamped is not None:
                part.masked_fill_(_unpack_bits(clamped[i // 8 : (j + 7) // 8], j - i, torch.bool), 0)
        if plan.gain != 1:
            flat.mul_(plan.gain)
        g = _unflat(flat, ctx.tshape, _CL)
        for step in reversed(plan.up):
            g = step.adjoint(g)
        db = g.sum(dim=(0, 2, 3)) if ctx.needs_input_grad[1] else None
        return g.contiguous(memory_format=ctx.fmt), db, None


def filtered_lrelu(
    x: Tensor,
    fu: Tensor | None = None,
    fd: Tensor | None = None,
    b: Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int | list[int] | tuple[int, ...] = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
) -> Tensor:
    """Bias, upsample (``fu``, gain ``up**2``), pad, ``clamp(gain * lrelu(.))``, filter (``fd``), downsample.

    Arguments and result as NVlabs/stylegan3 ``torch_utils/ops/filtered_lrelu.py:filtered_lrelu``:
    ``x`` [N, C, H, W]; ``fu``/``fd`` float filters [taps] (separable), [taps_y, taps_x] or None
    (identity); ``b`` [C] or None; ``padding`` int, [x, y] or [x0, x1, y0, y1] on the upsampled image.
    Output [N, C, (H*up + py0 + py1 - (fu_h-1) - (fd_h-1) + down-1) // down, (same for W)] in x's
    dtype. Differentiable w.r.t. ``x`` and ``b`` (the filters are constants, as NVIDIA's buffers are).
    """
    if x.ndim != 4:
        raise ValueError(f"filtered_lrelu expects [N, C, H, W], got shape {tuple(x.shape)}")
    if not (isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1):
        raise ValueError(f"up and down must be integers >= 1, got {up!r}, {down!r}")
    if not (gain > 0 and slope >= 0 and (clamp is None or clamp >= 0)):
        raise ValueError(f"need gain > 0, slope >= 0, clamp >= 0 or None; got {gain}, {slope}, {clamp}")
    for name, f in (("fu", fu), ("fd", fd)):
        if f is not None and f.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D (separable) or 2-D, got shape {tuple(f.shape)}")
    if b is not None and tuple(b.shape) != (x.shape[1],):
        raise ValueError(f"b must have shape [{x.shape[1]}], got {tuple(b.shape)}")
    gain, slope = float(gain), float(slope)
    dtype, dev = x.dtype, x.device
    # NVIDIA's identity filter still resamples (with gain up**2 when upsampling).
    if fu is None and up > 1:
        fu = torch.ones(1, 1, device=dev)
    if fd is None and down > 1:
        fd = torch.ones(1, 1, device=dev)
    fu_t = fd_t = None
    if fu is not None:  # up**2 in float32 (or finer) then cast, as NVIDIA; the activation gain in the dtype
        fu32 = fu.to(dev, torch.promote_types(fu.dtype, torch.float32))
        fu_t = (fu32 * up**fu.ndim).to(dtype) * gain ** (fu.ndim / 2)
    if fd is not None:
        fd_t = fd.to(dev, torch.promote_types(fd.dtype, torch.float32)).to(dtype)
    if flip_filter:
        fu_t = None if fu_t is None else fu_t.flip(list(range(fu_t.ndim)))
        fd_t = None if fd_t is None else fd_t.flip(list(range(fd_t.ndim)))
    plan = _make_plan(x.shape, fu_t, fd_t, up, down, _parse_padding(padding), gain, slope, clamp)
    bias = None if b is None else b.to(dtype)
    out: Tensor = _FilteredLReLU.apply(x, bias, plan)
    return out
