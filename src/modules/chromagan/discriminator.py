"""ChromaGAN's PatchGAN critic (SOURCE/ChromaGAN.py): ``[L_in, a_n, b_n]`` -> ``[N, 1, H/8, W/8]`` scores.

Five 4x4 convolutions with TF-"same" padding, strides 2, 2, 2, 1, 1 (70x70 receptive field), LeakyReLU
after all but the last, linear output (a Wasserstein critic). The official code has no normalization
(``norm=none``; batch norm would break the per-sample gradient penalty); ``batch`` and ``instance``
are there to reproduce the ports. LeakyReLU slope 0.3 is Keras' default (0.2 in most PatchGANs).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from src.modules.chromagan.layers import NORMS, SameConv2d, glorot_init

__all__ = ["PatchCritic"]


class PatchCritic(nn.Module):
    """Args:
    in_channels: 3 (L, a, b).
    channels: output channels of the first four convs (the fifth has 1).
    strides: the five strides.
    norm: ``none``, ``batch`` or ``instance``, after convs 2-4 (official none, jeniasivets batch).
    leaky_slope: LeakyReLU negative slope.
    width: multiplier for ``channels`` (tests use tiny critics).
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: Sequence[int] = (64, 128, 256, 512),
        strides: Sequence[int] = (2, 2, 2, 1, 1),
        norm: str = "none",
        leaky_slope: float = 0.3,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"model.critic.norm={norm!r}: allowed values are {', '.join(NORMS)}")
        if len(channels) != 4 or len(strides) != 5:
            raise ValueError(
                f"model.critic: expected 4 channels and 5 strides, got {list(channels)} and {list(strides)}"
            )
        widths = [max(1, round(c * width)) for c in channels]
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, (c_out, stride) in enumerate(zip(widths, strides[:4])):
            layers.append(SameConv2d(c_in, c_out, 4, stride))
            if i > 0 and norm == "batch":
                layers.append(nn.BatchNorm2d(c_out))
            elif i > 0 and norm == "instance":
                layers.append(nn.InstanceNorm2d(c_out, affine=True))
            layers.append(nn.LeakyReLU(leaky_slope, inplace=True))
            c_in = c_out
        layers.append(SameConv2d(c_in, 1, 4, strides[4]))
        self.net = nn.Sequential(*layers)
        self.norm, self.leaky_slope = norm, leaky_slope
        glorot_init(self)

    def forward(self, lab: Tensor) -> Tensor:
        return self.net(lab)

    def extra_repr(self) -> str:
        return f"norm={self.norm}, leaky_slope={self.leaky_slope}"
