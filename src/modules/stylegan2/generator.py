"""StyleGAN2 generator: mapping and skip synthesis networks (stylegan2-ada-pytorch training/networks.py).

Generalised past the reference in two ways its users often ask for: ``img_channels`` may be any
count (1 gray, 3 RGB, 4 RGBA, ...) and the image may be non-square — the learned constant is
``[C, h0, w0]`` with the short side 4 and every block doubles both sides.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import cast

import torch
from torch import Tensor, nn

from src.latents.truncation import truncate
from src.nn.layers import (
    FullyConnected,
    bias_act,
    make_fir,
    modulated_conv2d,
    normalize_2nd_moment,
    upsample2d,
)
from src.nn.precision import float32, fp16_autocast
from src.nn.style_generator import NoiseLayer, StyleGenerator, StyleMapping, StyleSynthesis
from src.utils.resolution import base_shape, fp16_first_block

NOISE_MODES = ("random", "const", "none")


def channels_at(res: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a block whose short side is ``res``: ``min(channel_base // res, channel_max)``."""
    if channel_base // res < 1:
        raise ValueError(
            f"model.channel_base={channel_base} gives no channels at {res} px; use model.channel_base >= {res}"
        )
    return min(channel_base // res, channel_max)


class MappingNetwork(StyleMapping):
    """z (and optional one-hot label) -> w, broadcast to ``[N, num_ws, w_dim]``; tracks ``w_avg``."""

    def __init__(
        self,
        z_dim: int = 512,
        c_dim: int = 0,
        w_dim: int = 512,
        num_ws: int = 10,
        num_layers: int = 8,
        lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed = w_dim if c_dim > 0 else 0
        if c_dim > 0:
            self.embed = FullyConnected(c_dim, embed)
        features = [z_dim + embed] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            FullyConnected(features[i], features[i + 1], activation="lrelu", lr_multiplier=lr_multiplier)
            for i in range(num_layers)
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: Tensor | None,
        c: Tensor | None = None,
        psi: float = 1.0,
        cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> Tensor:
        """``z`` None for a label-only mapping (``z_dim=0``, the discriminator's label embedding)."""
        ref = z if z is not None else c
        if ref is None:
            raise ValueError("pass latents z, labels c or both")
        device_type = ref.device.type
        if fp16_autocast(device_type):  # 16-mixed: the mapping stays in float32 (src/nn/precision.py)
            with float32(device_type):
                return self._map(z, c, psi, cutoff, update_w_avg)
        return self._map(z, c, psi, cutoff, update_w_avg)

    def _map(self, z: Tensor | None, c: Tensor | None, psi: float, cutoff: int | None, update_w_avg: bool) -> Tensor:
        x = None
        if self.z_dim > 0:
            if z is None:
                raise ValueError(f"this mapping network takes latents (z_dim={self.z_dim}): pass z")
            x = normalize_2nd_moment(z)
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this generator is conditional (c_dim={self.c_dim}): pass labels")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        assert x is not None, "a mapping network has z_dim > 0 or c_dim > 0"
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:
            self.track_w_avg(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        return truncate(ws, self.w_avg, psi, cutoff)

    @torch.no_grad()
    def track_w_avg(self, w: Tensor, world_size: int = 1) -> None:
        """``w_avg <- lerp(mean(w), w_avg, w_avg_beta)`` for a batch of mapped ``w`` ``[N, w_dim]``.

        With ``world_size > 1`` the mean is over every process's rows (one ``all_reduce`` of the
        per-rank sums; each rank holds as many rows), so every process tracks the ``w_avg`` one
        process with the global batch would. stylegan2-ada-pytorch's ``MappingNetwork`` tracks its
        own process's batch only (training/networks.py).
        """
        if world_size > 1:
            total = w.detach().float().sum(dim=0)
            torch.distributed.all_reduce(total)
            mean = total / (w.shape[0] * world_size)
        else:
            mean = w.detach().mean(dim=0)
        self.w_avg.copy_(mean.lerp(self.w_avg, self.w_avg_beta))

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


def _styles(affine: nn.Module, w: Tensor, fp16: bool) -> Tensor:
    """``affine(w)``; in an fp16 block under ``16-mixed``, in float32 as NVIDIA computes its styles."""
    if not fp16:
        return affine(w)
    with float32(w.device.type):
        return affine(w.float())


class SynthesisLayer(NoiseLayer):
    """Modulated 3x3 conv (optionally 2x up) + per-pixel noise + bias + lrelu."""

    fir: Tensor  # buffer (register_buffer in __init__), as noise_const with use_noise

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        size: tuple[int, int],
        up: int = 1,
        kernel_size: int = 3,
        use_noise: bool = True,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.size, self.up = in_channels, out_channels, size, up
        self.use_noise, self.conv_clamp = use_noise, conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(size))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("fir", make_fir(), persistent=False)

    def forward(
        self,
        x: Tensor,
        w: Tensor,
        noise_mode: str = "random",
        fused: bool = False,
        gain: float = 1.0,
        fp16: bool = False,
    ) -> Tensor:
        """``fp16``: a layer of an fp16 block under ``16-mixed`` (styles in float32, pre-normalised
        modulation; :mod:`src.nn.precision`)."""
        styles = _styles(self.affine, w, fp16)
        x = modulated_conv2d(
            x, self.weight * self.weight_gain, styles, up=self.up, fir=self.fir, fused=fused, prenormalize=fp16
        )
        inplace = not torch.is_grad_enabled()  # x is this layer's own conv output
        if self.use_noise and noise_mode != "none":
            if noise_mode == "random":
                noise = torch.randn(x.shape[0], 1, *self.size, device=x.device, dtype=x.dtype)
            else:
                noise = self.noise_const.to(x.dtype)
            noise = noise * self.noise_strength.to(x.dtype)
            x = x.add_(noise) if inplace else x + noise
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, "lrelu", gain=gain, clamp=clamp, inplace=inplace)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_channels}, out={self.out_channels}, size={list(self.size)}, up={self.up}, "
            f"noise={self.use_noise}"
        )


class ToImage(nn.Module):
    """1x1 modulated conv without demodulation to ``img_channels`` (ToRGB generalised to C)."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.in_channels, self.img_channels, self.conv_clamp = in_channels, img_channels, conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor, fused: bool = False, fp16: bool = False) -> Tensor:
        styles = _styles(self.affine, w, fp16) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias, clamp=self.conv_clamp, inplace=not torch.is_grad_enabled())

    def extra_repr(self) -> str:
        return f"in={self.in_channels}, out={self.img_channels}"


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (const | up-conv), conv, ToImage; image path upsampled.

    ``w_dim``, ``use_noise`` and ``conv_clamp`` are :class:`SynthesisLayer`'s, the same for every layer
    of the block (the ToImage takes ``w_dim`` and ``conv_clamp``).
    """

    fir: Tensor  # buffer (register_buffer in __init__)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        size: tuple[int, int],
        img_channels: int,
        *,
        w_dim: int,
        use_noise: bool = True,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.size = in_channels, out_channels, size
        layer = functools.partial(SynthesisLayer, w_dim=w_dim, size=size, use_noise=use_noise, conv_clamp=conv_clamp)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, *size))
            self.conv0 = None
        else:
            self.conv0 = layer(in_channels, out_channels, up=2)
        self.conv1 = layer(out_channels, out_channels)
        self.torgb = ToImage(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.use_fp16 = False  # one of the highest num_fp16_res resolutions (set by SynthesisNetwork)
        self.register_buffer("fir", make_fir(), persistent=False)

    def forward(
        self,
        x: Tensor | None,
        img: Tensor | None,
        ws: Tensor,
        noise_mode: str = "random",
        fused: bool = False,
        adds: list[Tensor | None] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``ws`` ``[N, num_conv + 1, w_dim]``: one w per layer (conv0?, conv1, torgb).

        ``adds`` (optional, one entry per layer, ``None`` = nothing) is added to that layer's
        output: to the features after a conv, to the running image after the ToImage (the hook
        SEGAN mode 1 uses). Under ``16-mixed`` a block outside the highest ``num_fp16_res``
        resolutions runs in float32, and the image sum stays float32 (:mod:`src.nn.precision`).
        """
        device_type = ws.device.type
        fp16 = fp16_autocast(device_type)
        if fp16 and not self.use_fp16:
            with float32(device_type):
                return self._run(None if x is None else x.float(), img, ws.float(), noise_mode, fused, adds, False)
        return self._run(x, img, ws, noise_mode, fused, adds, fp16)

    def _run(
        self,
        x: Tensor | None,
        img: Tensor | None,
        ws: Tensor,
        noise_mode: str,
        fused: bool,
        adds: list[Tensor | None] | None,
        fp16: bool,
    ) -> tuple[Tensor, Tensor]:
        i = 0
        add: list[Tensor | None] = [None] * (self.num_conv + 1) if adds is None else adds
        if self.conv0 is None:
            x = self.const.to(ws.dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        else:
            x = self.conv0(x, ws[:, i], noise_mode=noise_mode, fused=fused, fp16=fp16)
            if (a := add[i]) is not None:
                x = x + a
            i += 1
        x = self.conv1(x, ws[:, i], noise_mode=noise_mode, fused=fused, fp16=fp16)
        if (a := add[i]) is not None:
            x = x + a
        i += 1
        if img is not None:
            if fp16:
                with float32(ws.device.type):
                    img = upsample2d(img.float(), self.fir)
            else:
                img = upsample2d(img, self.fir)
        y = self.torgb(x, ws[:, i], fused=fused, fp16=fp16)
        if fp16:
            y = y.float()
        img = y if img is None else img + y
        if (a := add[i]) is not None:
            img = img + a
        return x, img

    def extra_repr(self) -> str:
        return f"in={self.in_channels}, out={self.out_channels}, size={list(self.size)}"


class SynthesisNetwork(StyleSynthesis):
    """ws ``[N, num_ws, w_dim]`` -> image ``[N, img_channels, H, W]`` in about [-1, 1].

    w index plan (as NVIDIA's): the first block uses 1 conv, later blocks 2; every ToImage shares the
    index of the next block's first conv, so ``num_ws = 2 * num_blocks`` (10 at 64 px, 14 at 256).
    :meth:`layer_table` is that plan, the one place that says which w slot feeds which layer.
    """

    def __init__(
        self,
        w_dim: int = 512,
        resolution: tuple[int, int] = (64, 64),
        img_channels: int = 3,
        channel_base: int = 16384,
        channel_max: int = 512,
        use_noise: bool = True,
        conv_clamp: float | None = None,
        num_fp16_res: int = 0,
    ) -> None:
        """``num_fp16_res``: under ``16-mixed``, the highest resolutions whose blocks run in fp16 (NVIDIA's
        recipe, :mod:`src.nn.precision`; the rest run in float32). No effect in ``32-true`` or ``bf16-mixed``."""
        super().__init__()
        self.w_dim, self.img_channels = w_dim, img_channels
        self.resolution = tuple(resolution)
        h0, w0, doublings = base_shape(*self.resolution)
        self.num_fp16_res = num_fp16_res
        first_fp16 = fp16_first_block(doublings, num_fp16_res)
        self.blocks = nn.ModuleList()
        in_ch = 0
        for i in range(doublings + 1):
            res = 4 << i  # short side at this block
            size = (h0 << i, w0 << i)
            out_ch = channels_at(res, channel_base, channel_max)
            block = SynthesisBlock(
                in_ch, out_ch, size, img_channels, w_dim=w_dim, use_noise=use_noise, conv_clamp=conv_clamp
            )
            block.use_fp16 = i >= first_fp16
            self.blocks.append(block)
            in_ch = out_ch
        table = self.layer_table()
        self.num_ws = table[-1]["slot"] + 1
        self.num_layers = len(table)  # layers that consume a w
        self.block_slots = [row["slot"] for row in table if row["position"] == 0]  # each block's first w

    def forward(
        self,
        ws: Tensor,
        noise_mode: str = "random",
        fused: bool = False,
        layer_ws: Tensor | None = None,
        layer_adds: list[Tensor | None] | None = None,
    ) -> Tensor:
        """``ws`` ``[N, num_ws, w_dim]`` -> image.

        Hooks for subclasses (SEGAN): ``layer_ws`` ``[N, num_layers, w_dim]`` replaces the slot plan
        with one w per layer (order of :meth:`layer_ws`), and ``layer_adds`` (one entry per layer)
        is added to each layer's output (see :class:`SynthesisBlock`).
        """
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode={noise_mode!r}: expected one of {NOISE_MODES}")
        if layer_ws is not None and tuple(layer_ws.shape[1:]) != (self.num_layers, self.w_dim):
            raise ValueError(f"layer_ws must be [N, {self.num_layers}, {self.w_dim}], got {list(layer_ws.shape)}")
        if layer_adds is not None and len(layer_adds) != self.num_layers:
            raise ValueError(f"layer_adds must have {self.num_layers} entries, got {len(layer_adds)}")
        x: Tensor | None = None
        img: Tensor | None = None
        lidx = 0
        for block, slot in zip(self.typed_blocks(), self.block_slots):
            n = block.num_conv + 1  # a block's layers read consecutive slots (layer_table)
            block_ws = ws[:, slot : slot + n] if layer_ws is None else layer_ws[:, lidx : lidx + n]
            adds = None if layer_adds is None else layer_adds[lidx : lidx + n]
            x, img = block(x, img, block_ws, noise_mode=noise_mode, fused=fused, adds=adds)
            lidx += n
        assert img is not None  # there is always a first block
        return img

    def skip_blocks(self) -> nn.ModuleList:
        """``blocks``: the skip architecture's image is the sum of their upsampled ToRGB outputs."""
        return self.blocks

    def layer_table(self) -> list[dict]:
        """One row per layer that consumes a w, in forward order: ``id``, ``block`` (its index),
        ``position`` in the block, ``kind`` (``conv_up``, ``conv``, ``torgb``), ``name``
        (``b16x16.conv0``), ``size``, ``slot`` (the w index that feeds it) and ``channels`` it outputs.

        Each conv takes the next slot; a ToImage shares its slot with the next block's first conv.
        """
        rows: list[dict] = []
        slot = 0
        for b, block in enumerate(self.typed_blocks()):
            kinds = (["conv_up"] if block.conv0 is not None else []) + ["conv", "torgb"]
            for position, kind in enumerate(kinds):
                layer = {"conv_up": "conv0", "conv": "conv1", "torgb": "torgb"}[kind]
                rows.append(
                    dict(
                        id=len(rows),
                        block=b,
                        position=position,
                        kind=kind,
                        name=f"b{block.size[0]}x{block.size[1]}.{layer}",
                        size=tuple(block.size),
                        slot=slot,
                        channels=self.img_channels if kind == "torgb" else block.out_channels,
                    )
                )
                slot += kind != "torgb"
        return rows

    def typed_blocks(self) -> Iterable[SynthesisBlock]:
        """``blocks`` as what they are (an ``nn.ModuleList`` is typed as holding plain modules)."""
        return cast("Iterable[SynthesisBlock]", self.blocks)

    def layer_ws(self) -> list[tuple[str, int]]:
        """(layer name, w index) for every layer that consumes a w, in order (from :meth:`layer_table`)."""
        return [(row["name"], row["slot"]) for row in self.layer_table()]


class Generator(StyleGenerator):
    """Mapping + synthesis. ``G(z, c, psi, cutoff, noise_mode)`` -> image in model color space.

    ``init_kwargs`` holds the arguments it was built with (what an export records to rebuild it).
    """

    def __init__(
        self,
        z_dim: int = 512,
        w_dim: int = 512,
        num_classes: int = 0,
        resolution: tuple[int, int] = (64, 64),
        img_channels: int = 3,
        map_depth: int = 8,
        map_lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
        channel_base: int = 16384,
        channel_max: int = 512,
        use_noise: bool = True,
        conv_clamp: float | None = None,
        num_fp16_res: int = 0,
    ) -> None:
        init_kwargs = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__()
        self.init_kwargs = init_kwargs
        self.z_dim, self.w_dim, self.c_dim, self.img_channels = z_dim, w_dim, num_classes, img_channels
        h, w = resolution
        self.resolution = (h, w)
        self.synthesis = self.make_synthesis(
            w_dim=w_dim,
            resolution=self.resolution,
            img_channels=img_channels,
            channel_base=channel_base,
            channel_max=channel_max,
            use_noise=use_noise,
            conv_clamp=conv_clamp,
            num_fp16_res=num_fp16_res,
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, num_classes, w_dim, self.num_ws, map_depth, map_lr_multiplier, w_avg_beta)

    def make_synthesis(self, **kwargs) -> SynthesisNetwork:
        """Build the synthesis network from :class:`SynthesisNetwork`'s keywords (SEGAN returns its subclass)."""
        return SynthesisNetwork(**kwargs)

    def forward(
        self, z: Tensor, c: Tensor | None = None, psi: float = 1.0, cutoff: int | None = None, **synthesis_options
    ) -> Tensor:
        """Map ``z`` (and labels ``c``) to w, truncated by ``psi``/``cutoff``, and synthesise.

        ``synthesis_options`` go to the synthesis network: ``noise_mode`` (random|const|none),
        ``fused`` (grouped convolutions), and SEGAN's edit arguments.
        """
        ws = self.mapping(z, c, psi=psi, cutoff=cutoff)
        return self.synthesis(ws, **synthesis_options)

    def extra_repr(self) -> str:
        h, w = self.resolution
        return f"resolution={h}x{w}, img_channels={self.img_channels}, num_ws={self.num_ws}"
