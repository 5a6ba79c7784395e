"""SEGAN LightningModule: the StyleGAN2 module with SEGAN's generator (curefate/SEGan_Pytorch).

Training is StyleGAN2's four phases unchanged (path length is taken w.r.t. the mapping output, as
in their code); SEGAN adds the EigenGAN orthogonality term to the G loss at every G step
(``model.loss.orth_reg``, logged as ``G/orth``) and separate G/D ``channel_max`` (128 vs 512 in
their runs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from src.modules.segan.generator import SEGANGenerator
from src.modules.segan.losses import ORTH_FORMS, orthogonality_penalty
from src.modules.segan.subspace import HARD_ORTH
from src.modules.stylegan2.discriminator import Discriminator
from src.modules.base import merge_options as _merge
from src.modules.stylegan2.module import DEFAULT_LOSS, StyleGAN2

DEFAULT_SUBSPACE = dict(variant="faithful", q=None, coords="w", U_init="segan", L_init="ones")
DEFAULT_ORTH = dict(weight=0.0, form="half_fro_sum", hard="none")


def check_orth_config(orth: dict, mode: int, variant: str) -> None:
    if orth["form"] not in ORTH_FORMS:
        raise ValueError(f"model.loss.orth_reg.form={orth['form']!r}: allowed values are {', '.join(ORTH_FORMS)}")
    if orth["hard"] not in HARD_ORTH:
        raise ValueError(f"model.loss.orth_reg.hard={orth['hard']!r}: allowed values are {', '.join(HARD_ORTH)}")
    if orth["weight"] < 0:
        raise ValueError(f"model.loss.orth_reg.weight={orth['weight']}: expected >= 0")
    has_basis = mode == 1 or (mode == 2 and variant == "eigen")
    if (orth["weight"] > 0 or orth["hard"] != "none") and not has_basis:
        key = "weight" if orth["weight"] > 0 else "hard"
        raise ValueError(f"model.loss.orth_reg.{key}={orth[key]!r} does not apply to model.mode={mode} "
                         f"(variant {variant!r}): only mode 1 and mode 2 variant eigen have a basis U "
                         "(EigenGAN's regulariser); set it to 0 / none")


class SEGAN(StyleGAN2):
    """StyleGAN2 with a linear subspace per layer, ``mode`` 0-3 (SEGan_Pytorch model.py, model_SEG.py).

    New arguments: ``mode``; ``subspace`` {variant faithful|eigen, q (null = w_dim), coords w|sampled,
    U_init segan|orthonormal, L_init ones|eigengan}; ``g_channel_max`` / ``d_channel_max``
    (null = ``channel_max``); ``loss.orth_reg`` {weight, form half_fro_sum|mean, hard none|qr}.
    """

    default_loss = {**DEFAULT_LOSS, "orth_reg": None}

    def __init__(self, img_channels: int = 3, resolution: Any = 64, colorspace: str = "rgb",
                 num_classes: int = 0, z_dim: int = 64, w_dim: int = 64, map_depth: int = 8,
                 map_lr_multiplier: float = 0.01, w_avg_beta: float = 0.995, channel_base: int = 32768,
                 channel_max: int = 512, use_noise: bool = True, mbstd_group: int = 4, mbstd_channels: int = 1,
                 conv_clamp: float | None = None, loss: dict | None = None, optim: dict | None = None,
                 ema: dict | None = None, check_finite_every: int = 50, perf: dict | None = None, mode: int = 0,
                 subspace: dict | None = None, g_channel_max: int | None = None,
                 d_channel_max: int | None = None) -> None:
        sub = _merge(DEFAULT_SUBSPACE, subspace, "model.subspace")
        orth = _merge(DEFAULT_ORTH, (loss or {}).get("orth_reg"), "model.loss.orth_reg")
        # Plain attributes read by make_generator()/make_discriminator() during StyleGAN2.__init__.
        self._segan_args = dict(mode=mode, variant=sub["variant"], q=sub["q"], coords=sub["coords"],
                                U_init=sub["U_init"], L_init=sub["L_init"], hard=orth["hard"])
        self._channel_max = dict(G=g_channel_max or channel_max, D=d_channel_max or channel_max)
        super().__init__(img_channels, resolution, colorspace, num_classes, z_dim, w_dim, map_depth,
                         map_lr_multiplier, w_avg_beta, channel_base, channel_max, use_noise, mbstd_group,
                         mbstd_channels, conv_clamp, loss, optim, ema, check_finite_every, perf)
        self.save_hyperparameters(logger=False)  # SEGAN's own arguments (load_module rebuilds from them)
        check_orth_config(orth, mode, sub["variant"])
        self.mode, self.subspace_cfg, self.orth_cfg = mode, sub, orth

    def make_generator(self, z_dim, w_dim, num_classes, resolution, img_channels, map_depth, map_lr_multiplier,
                       w_avg_beta, channel_base, channel_max, use_noise, conv_clamp) -> SEGANGenerator:
        return SEGANGenerator(z_dim, w_dim, num_classes, resolution, img_channels, map_depth, map_lr_multiplier,
                              w_avg_beta, channel_base, self._channel_max["G"], use_noise, conv_clamp,
                              **self._segan_args)

    def make_discriminator(self, resolution, img_channels, num_classes, channel_base, channel_max, mbstd_group,
                           mbstd_channels, conv_clamp=None) -> Discriminator:
        return Discriminator(resolution, img_channels, num_classes, channel_base, self._channel_max["D"],
                             mbstd_group, mbstd_channels, conv_clamp=conv_clamp)

    def extra_g_loss(self, log: dict[str, Tensor]) -> Tensor | None:
        """EigenGAN orthogonality term at every G step (as in EigenGAN), logged as ``G/orth``."""
        weight = self.orth_cfg["weight"]
        if weight <= 0:
            return None
        term = orthogonality_penalty(self.G.synthesis.orth_bases(), self.orth_cfg["form"])
        log["G/orth"] = term.detach()
        return term * weight

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None, psi: float = 1.0, cutoff: int | None = None,
               noise_mode: str = "const", ema: bool = True, edits: list | None = None,
               coords: Tensor | None = None, stats: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Images from ``G_ema`` (or ``G``) with optional edits; no grad, fp32, no side effects."""
        g = self.G_ema if ema else self.G
        return g(z, self.labels_to_onehot(labels), psi=psi, cutoff=cutoff, noise_mode=noise_mode, edits=edits,
                 coords=coords, stats=stats).float()
