"""StyleGAN2 ResNet discriminator with minibatch stddev (stylegan2-ada-pytorch training/networks.py).

FromImage (1x1) only at the top block; each block is conv3x3, conv3x3 + 2x down, plus a 1x1
2x-down skip, the two branches scaled by sqrt(0.5). The 4x4 epilogue (4 x 4a for non-square
images) appends minibatch-stddev features, then conv3x3, FC(C*h0*w0 -> C), FC(C -> 1), or a
projection onto a label embedding for conditional models.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import cast

import torch
from torch import Tensor, nn

from src.modules.stylegan2.generator import MappingNetwork, channels_at
from src.nn.layers import Conv2dLayer, FullyConnected
from src.nn.precision import float32, fp16_autocast
from src.utils.resolution import base_shape, fp16_first_block


class DiscriminatorBlock(nn.Module):
    """ResNet block: (FromImage at the top) -> conv -> conv-down, plus a 1x1 down skip."""

    def __init__(
        self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int, conv_clamp: float | None = None
    ) -> None:
        super().__init__()
        self.in_channels, self.tmp_channels, self.out_channels = in_channels, tmp_channels, out_channels
        self.fromrgb = (
            Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
            if in_channels == 0
            else None
        )
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)
        self.use_fp16 = False  # one of the highest num_fp16_res resolutions (set by Discriminator)

    def forward(self, x: Tensor | None, img: Tensor) -> Tensor:
        """Under ``16-mixed``, a block outside the highest ``num_fp16_res`` resolutions runs in float32."""
        device_type = img.device.type
        if not self.use_fp16 and fp16_autocast(device_type):
            with float32(device_type):
                return self._run(None if x is None else x.float(), img.float())
        return self._run(x, img)

    def _run(self, x: Tensor | None, img: Tensor) -> Tensor:
        if self.fromrgb is not None:
            x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv0(x)
        x = self.conv1(x, gain=math.sqrt(0.5))
        return y + x

    def layers(self) -> list[nn.Module]:
        """The block's layers in the reference's count order (FromImage, conv0, conv1, skip), for Freeze-D."""
        return [m for m in (self.fromrgb, self.conv0, self.conv1, self.skip) if m is not None]

    def extra_repr(self) -> str:
        return f"in={self.in_channels}, tmp={self.tmp_channels}, out={self.out_channels}"


class MinibatchStdLayer(nn.Module):
    """Append the std over groups of ``group_size`` samples as ``num_channels`` extra feature maps.

    The group is ``min(group_size, N)``; ``N`` must be divisible by it (validated at start-up).
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # [G, M, F, c, H, W]
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [M, F, c, H, W]
        y = y.mean(dim=[2, 3, 4])  # [M, F]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # [N, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(nn.Module):
    """mbstd -> conv3x3 -> FC -> FC to one logit (or ``cmap_dim`` for projection)."""

    def __init__(
        self,
        in_channels: int,
        size: tuple[int, int],
        cmap_dim: int = 0,
        mbstd_group: int = 4,
        mbstd_channels: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.size, self.cmap_dim = in_channels, size, cmap_dim
        self.mbstd = MinibatchStdLayer(mbstd_group, mbstd_channels) if mbstd_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_channels, in_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.fc = FullyConnected(in_channels * size[0] * size[1], in_channels, activation="lrelu")
        self.out = FullyConnected(in_channels, cmap_dim if cmap_dim > 0 else 1)

    def forward(self, x: Tensor, cmap: Tensor | None = None) -> Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            assert cmap is not None, "a projection epilogue (cmap_dim > 0) needs the label embedding"
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x


class Discriminator(nn.Module):
    """Image in the model color space ``[N, C, H, W]`` -> logits ``[N, 1]``."""

    def __init__(
        self,
        resolution: tuple[int, int] = (64, 64),
        img_channels: int = 3,
        num_classes: int = 0,
        channel_base: int = 16384,
        channel_max: int = 512,
        mbstd_group: int = 4,
        mbstd_channels: int = 1,
        cmap_dim: int | None = None,
        conv_clamp: float | None = None,
        num_fp16_res: int = 0,
    ) -> None:
        """``num_fp16_res``: under ``16-mixed``, the highest resolutions whose blocks run in fp16 (the
        epilogue and the label mapping stay float32; :mod:`src.nn.precision`)."""
        super().__init__()
        self.resolution, self.img_channels, self.c_dim = tuple(resolution), img_channels, num_classes
        h0, w0, doublings = base_shape(*self.resolution)
        first_fp16 = fp16_first_block(doublings, num_fp16_res)
        self.blocks = nn.ModuleList()
        for i in range(doublings, 0, -1):
            res = 4 << i
            in_ch = 0 if i == doublings else channels_at(res, channel_base, channel_max)
            block = DiscriminatorBlock(
                in_ch,
                channels_at(res, channel_base, channel_max),
                channels_at(res // 2, channel_base, channel_max),
                img_channels,
                conv_clamp,
            )
            block.use_fp16 = i >= first_fp16
            self.blocks.append(block)
        self.num_fp16_res = num_fp16_res
        c4 = channels_at(4, channel_base, channel_max)
        self.cmap_dim = (cmap_dim or c4) if num_classes > 0 else 0
        if num_classes > 0:
            self.mapping = MappingNetwork(
                z_dim=0,
                c_dim=num_classes,
                w_dim=self.cmap_dim,
                num_ws=1,
                num_layers=8 if cmap_dim is None else 2,
                lr_multiplier=0.01,
            )
        self.epilogue = DiscriminatorEpilogue(c4, (h0, w0), self.cmap_dim, mbstd_group, mbstd_channels, conv_clamp)
        if doublings == 0:  # 4x4 images: nothing to downsample, FromImage feeds the epilogue directly
            self.fromrgb = Conv2dLayer(img_channels, c4, 1, activation="lrelu")

    def block_layers(self) -> list[nn.Module]:
        """Every block layer, highest resolution first, counted as stylegan2-ada-pytorch counts them
        for ``--freezed`` (FromImage, then each block's conv0, conv1, skip); the epilogue is not counted."""
        return [layer for block in self.typed_blocks() for layer in block.layers()]

    def typed_blocks(self) -> Iterable[DiscriminatorBlock]:
        """``blocks`` as what they are (an ``nn.ModuleList`` is typed as holding plain modules)."""
        return cast("Iterable[DiscriminatorBlock]", self.blocks)

    def freeze(self, num_layers: int) -> list[nn.Parameter]:
        """Freeze-D (Mo et al. 2020): stop training the first ``num_layers`` of :meth:`block_layers`;
        returns the frozen parameters (left out of D's optimizer)."""
        layers = self.block_layers()
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or not 0 <= num_layers <= len(layers):
            raise ValueError(
                f"model.freeze_d={num_layers!r}: expected 0..{len(layers)} (this D has {len(layers)} block "
                "layers: FromImage, then conv0, conv1 and skip per block, highest resolution first)"
            )
        frozen = [p for layer in layers[:num_layers] for p in layer.parameters()]
        for p in frozen:
            p.requires_grad_(False)
        return frozen

    def forward(self, img: Tensor, c: Tensor | None = None) -> Tensor:
        expected = (self.img_channels, *self.resolution)
        if tuple(img.shape[1:]) != expected:
            raise ValueError(f"D expects images [N, {', '.join(map(str, expected))}], got {list(img.shape)}")
        x: Tensor | None = self.fromrgb(img) if not self.blocks else None
        for block in self.blocks:
            x = block(x, img)
        assert x is not None  # the blocks' output, or FromImage's at 4x4
        if fp16_autocast(img.device.type):  # 16-mixed: the epilogue and the label mapping in float32
            with float32(img.device.type):
                return self._epilogue(x.float(), c)
        return self._epilogue(x, c)

    def _epilogue(self, x: Tensor, c: Tensor | None) -> Tensor:
        cmap = self.mapping(None, c)[:, 0] if self.c_dim > 0 else None
        return self.epilogue(x, cmap)

    def extra_repr(self) -> str:
        h, w = self.resolution
        return f"resolution={h}x{w}, img_channels={self.img_channels}, c_dim={self.c_dim}"
