"""ChromaGAN's generator (pvitoria/ChromaGAN, SOURCE/ChromaGAN.py): L -> (ab, class distribution).

Shapes at 224x224 and width 1 (``resolution`` may be any multiple of 8, and the
flattened global map follows it):

============================ ====================== ==========================================
stage                        output                 notes
============================ ====================== ==========================================
VGG-16 trunk to conv4_3      512 x 28 x 28          ImageNet init, fine-tuned
global convs (s2, s1, s2, s1) 512 x 7 x 7           then flatten (25088)
global FCs 1024-512-256      256                    broadcast to 256 x 28 x 28
class FCs 4096-4096-K        K logits               softmax = the class distribution
mid-level convs              256 x 28 x 28
fusion                       512 x 28 x 28          concat [mid, global]
color head                   2 x 112 x 112          sigmoid, then nearest x2 -> 2 x 224 x 224
============================ ====================== ==========================================

Branch blocks are conv -> ReLU -> BN (official) or conv -> BN -> ReLU (``block_order``); the FC
stacks have no activations unless ``fc_act=relu`` (Keras' Dense is linear). New layers are glorot-uniform
with zero bias (Keras' default). ``width`` scales every conv channel count (tests use tiny widths).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.modules.chromagan.layers import BranchBlock, SameConv2d, glorot_init, linear_stack
from src.modules.chromagan.vgg import to_vgg_input, vgg16_trunk

__all__ = ["ColorizationGenerator"]


def _c(channels: int, width: float) -> int:
    return max(1, round(channels * width))


class GlobalBranch(nn.Module):
    """Four strided branch blocks, flatten, then the global-feature and class FC stacks."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        grid: tuple[int, int],
        global_fc: Sequence[int],
        class_fc: Sequence[int],
        num_classes: int,
        fc_act: str,
        block: dict,
    ) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            BranchBlock(in_channels, channels, 2, **block),
            BranchBlock(channels, channels, 1, **block),
            BranchBlock(channels, channels, 2, **block),
            BranchBlock(channels, channels, 1, **block),
        )
        flat = channels * grid[0] * grid[1]
        self.features = linear_stack(flat, list(global_fc), fc_act)
        self.classes = linear_stack(flat, [*class_fc, num_classes], fc_act)
        self.grid = grid

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """-> (global map ``[N, C, h/4, w/4]``, global vector ``[N, global_fc[-1]]``, class logits ``[N, K]``)."""
        g = self.convs(x)
        flat = g.flatten(1)
        return g, self.features(flat), self.classes(flat)


class ColorHead(nn.Module):
    """Fusion 1x1 conv and the upsampling color decoder; sigmoid at H/2, nearest x2 after it (official)."""

    def __init__(self, in_channels: int, width: float) -> None:
        super().__init__()
        relu = nn.ReLU
        self.body = nn.Sequential(
            SameConv2d(in_channels, _c(256, width), 1),
            relu(inplace=True),
            SameConv2d(_c(256, width), _c(128, width), 3),
            relu(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            SameConv2d(_c(128, width), _c(64, width), 3),
            relu(inplace=True),
            SameConv2d(_c(64, width), _c(64, width), 3),
            relu(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            SameConv2d(_c(64, width), _c(32, width), 3),
            relu(inplace=True),
            SameConv2d(_c(32, width), 2, 3),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(torch.sigmoid(self.body(x)), scale_factor=2, mode="nearest")


class ColorizationGenerator(nn.Module):
    """ChromaGAN's G: ``L_in [N, 1, H, W]`` in ``[0, 1]`` -> ``(ab_n [N, 2, H, W] in [0, 1], logits [N, K])``.

    Args:
        resolution: ``(H, W)``, each a multiple of 8 (224 in the paper).
        num_classes: class-head size K (1000 ImageNet; 200 for TinyImageNet, as jeniasivets/chromagan).
        width: channel multiplier for every conv (1.0 = the paper; only 1.0 loads ImageNet weights).
        global_fc: sizes of the global-feature FC stack (its last size is broadcast and fused).
        class_fc: hidden sizes of the class FC stack (K is appended).
        fc_act: ``none`` (official: no activations) or ``relu``.
        vgg_input_norm: ``imagenet`` or ``none`` (:func:`~src.modules.chromagan.vgg.to_vgg_input`).
        block_order, bn_momentum, bn_eps: the branch blocks (:class:`~src.modules.chromagan.layers.BranchBlock`).
    """

    def __init__(
        self,
        resolution: Sequence[int] = (224, 224),
        num_classes: int = 1000,
        width: float = 1.0,
        global_fc: Sequence[int] = (1024, 512, 256),
        class_fc: Sequence[int] = (4096, 4096),
        fc_act: str = "none",
        vgg_input_norm: str = "imagenet",
        block_order: str = "conv_relu_bn",
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__()
        h, w = (int(s) for s in resolution)
        if h % 8 or w % 8 or h <= 0 or w <= 0:
            raise ValueError(
                f"model.resolution={[h, w]}: ChromaGAN needs sides that are multiples of 8 (224 in the paper)"
            )
        if num_classes < 1:
            raise ValueError(f"model.num_classes={num_classes}: expected >= 1 (1000 ImageNet, 200 TinyImageNet)")
        to_vgg_input(torch.zeros(1, 1, 1, 1), vgg_input_norm)  # validates the name
        self.resolution = (h, w)
        self.num_classes = num_classes
        self.img_channels = 3  # L, a, b
        self.vgg_input_norm = vgg_input_norm
        block: dict[str, Any] = dict(order=block_order, bn_momentum=bn_momentum, bn_eps=bn_eps)
        c512, c256 = _c(512, width), _c(256, width)
        grid = (math.ceil(h / 32), math.ceil(w / 32))  # trunk /8, then two stride-2 blocks
        self.trunk = vgg16_trunk(width)
        self.global_branch = GlobalBranch(c512, c512, grid, global_fc, class_fc, num_classes, fc_act, block)
        self.mid = nn.Sequential(BranchBlock(c512, c512, 1, **block), BranchBlock(c512, c256, 1, **block))
        self.head = ColorHead(c256 + int(global_fc[-1]), width)
        for part in (self.global_branch, self.mid, self.head):
            glorot_init(part)

    def forward(self, l_in: Tensor, return_features: bool = False):
        if l_in.ndim != 4 or l_in.shape[1] != 1 or tuple(l_in.shape[-2:]) != self.resolution:
            raise ValueError(
                f"expected L_in [N, 1, {self.resolution[0]}, {self.resolution[1]}], got {list(l_in.shape)}"
            )
        trunk = self.trunk(to_vgg_input(l_in, self.vgg_input_norm))
        global_map, global_vec, logits = self.global_branch(trunk)
        mid = self.mid(trunk)
        broadcast = global_vec[:, :, None, None].expand(-1, -1, *mid.shape[-2:])
        fused = torch.cat([mid, broadcast], dim=1)
        ab = self.head(fused)
        if return_features:
            return ab, logits, dict(trunk=trunk, global_map=global_map, global_vec=global_vec, mid=mid, fused=fused)
        return ab, logits
