"""Layers shared by ChromaGAN's generator and critic: TF-"same" convolution and the branch block."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

BLOCK_ORDERS = ("conv_relu_bn", "conv_bn_relu")
NORMS = ("none", "batch", "instance")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``padding='same'`` along one axis: (before, after), the extra pixel after.

    Output size is ``ceil(size / stride)``. For odd kernels at stride 1 and for k=4 at stride 2 on
    even sizes this is PyTorch's symmetric padding; for k=4 at stride 1 it is (1, 2) (the
    critic's last two convs in SOURCE/ChromaGAN.py) and for k=3 at stride 2 on even sizes (0, 1).
    """
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with Keras/TensorFlow ``padding='same'`` (asymmetric when needed)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        top, bottom = same_padding(x.shape[-2], k, s)
        left, right = same_padding(x.shape[-1], k, s)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class BranchBlock(nn.Sequential):
    """3x3 same conv, ReLU and BatchNorm in the official order (``conv_relu_bn``: Keras'
    ``Conv2D(activation='relu')`` then ``BatchNormalization``) or jeniasivets' ``conv_bn_relu``.

    ``bn_momentum=0.01`` and ``bn_eps=1e-3`` are Keras' defaults (its momentum 0.99; official code).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        order: str = "conv_relu_bn",
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
    ) -> None:
        if order not in BLOCK_ORDERS:
            raise ValueError(f"model.block_order={order!r}: allowed values are {', '.join(BLOCK_ORDERS)}")
        conv = SameConv2d(in_channels, out_channels, 3, stride)
        bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)
        relu = nn.ReLU(inplace=True)
        super().__init__(*((conv, relu, bn) if order == "conv_relu_bn" else (conv, bn, relu)))


def linear_stack(in_features: int, sizes: list[int], act: str = "none") -> nn.Sequential:
    """Dense layers ``in -> sizes[0] -> ... -> sizes[-1]``; ``act`` between them (``none`` as in the
    official Keras model, where the stack collapses to one low-rank linear map; SOURCE/ChromaGAN.py)."""
    if act not in ("none", "relu"):
        raise ValueError(f"model.fc_act={act!r}: allowed values are none, relu")
    layers: list[nn.Module] = []
    for i, size in enumerate(sizes):
        layers.append(nn.Linear(in_features, size))
        if act == "relu" and i < len(sizes) - 1:
            layers.append(nn.ReLU(inplace=True))
        in_features = size
    return nn.Sequential(*layers)


def glorot_init(module: nn.Module) -> None:
    """Keras' default init for new layers: glorot-uniform weights, zero bias (as in SOURCE/ChromaGAN.py)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
