"""SEGAN LightningModule: the StyleGAN2 module with SEGAN's generator (curefate/SEGan_Pytorch).

Training is StyleGAN2's four phases unchanged (path length is taken w.r.t. the mapping output, as
in their code); SEGAN adds the EigenGAN orthogonality term to the G loss at every G step
(``model.loss.orth_reg``, logged as ``G/orth``) and separate G/D ``channel_max`` (128 vs 512 in
their runs). With ``coords: sampled`` the per-layer coordinates are drawn for the global batch like
StyleGAN2's latents, so N processes train like one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from src.modules.base import merge_options as _merge
from src.modules.segan.generator import SEGANGenerator
from src.modules.segan.losses import ORTH_FORMS, orthogonality_penalty
from src.modules.segan.subspace import HARD_ORTH
from src.modules.stylegan2.discriminator import Discriminator
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
        raise ValueError(
            f"model.loss.orth_reg.{key}={orth[key]!r} does not apply to model.mode={mode} "
            f"(variant {variant!r}): only mode 1 and mode 2 variant eigen have a basis U "
            "(EigenGAN's regulariser); set it to 0 / none"
        )


class SEGAN(StyleGAN2):
    """StyleGAN2 with a linear subspace per layer, ``mode`` 0-3 (SEGan_Pytorch model.py, model_SEG.py).

    Its own arguments: ``mode``; ``subspace`` {variant faithful|eigen, q (null = w_dim), coords
    w|sampled, U_init segan|orthonormal, L_init ones|eigengan}; ``g_channel_max`` / ``d_channel_max``
    (null = ``channel_max``); ``loss.orth_reg`` {weight, form half_fro_sum|mean, hard none|qr}. Every
    other keyword argument is :class:`StyleGAN2`'s, passed through unchanged (SEGAN's 64 px defaults
    are in ``src/conf/model/segan.yaml``).

    What differs from StyleGAN2 is overridden here: the networks (:meth:`make_generator`,
    :meth:`make_discriminator`), Gmain's loss (:meth:`g_main_loss`), the training synthesis
    (:meth:`synthesize`: sampled coordinates drawn rank-consistently). :meth:`sample` is StyleGAN2's;
    it passes SEGAN's ``edits``, ``coords`` and ``stats`` on to the generator.
    """

    G: SEGANGenerator
    G_ema: SEGANGenerator

    default_loss = {**DEFAULT_LOSS, "orth_reg": None}

    def __init__(
        self,
        mode: int = 0,
        subspace: dict | None = None,
        g_channel_max: int | None = None,
        d_channel_max: int | None = None,
        **kwargs: Any,
    ) -> None:
        sub = _merge(DEFAULT_SUBSPACE, subspace, "model.subspace")
        orth = _merge(DEFAULT_ORTH, (kwargs.get("loss") or {}).get("orth_reg"), "model.loss.orth_reg")
        # Plain attributes read by make_generator()/make_discriminator() during StyleGAN2.__init__
        # (which also records SEGAN's arguments with save_hyperparameters).
        self._segan_args = {**sub, "mode": mode, "hard": orth["hard"]}
        self._channel_max = dict(G=g_channel_max, D=d_channel_max)
        super().__init__(**kwargs)
        check_orth_config(orth, mode, sub["variant"])
        self.mode, self.subspace_cfg, self.orth_cfg = mode, sub, orth

    def make_generator(self, **kwargs) -> SEGANGenerator:
        """SEGAN's generator, with ``g_channel_max`` when given."""
        kwargs["channel_max"] = self._channel_max["G"] or kwargs["channel_max"]
        return SEGANGenerator(**kwargs, **self._segan_args)

    def make_discriminator(self, **kwargs) -> Discriminator:
        """StyleGAN2's D, with ``d_channel_max`` when given."""
        kwargs["channel_max"] = self._channel_max["D"] or kwargs["channel_max"]
        return Discriminator(**kwargs)

    def g_main_loss(self, fake_logits: Tensor, log: dict[str, Tensor]) -> Tensor:
        """StyleGAN2's G loss plus EigenGAN's orthogonality term (weight ``orth_reg.weight``, logged as
        ``G/orth``) at every G step, as in EigenGAN."""
        loss = super().g_main_loss(fake_logits, log)
        weight = self.orth_cfg["weight"]
        if weight <= 0:
            return loss
        term = orthogonality_penalty(self.G.synthesis.orth_bases(), self.orth_cfg["form"])
        log["G/orth"] = term.detach()
        return loss + term * weight

    def synthesize(self, ws: Tensor, compiled: bool = True, update_emas: bool = False) -> Tensor:
        """With ``coords: sampled``, each layer's ``z_l ~ N(0, I_q)`` is drawn for the global batch
        (:meth:`draw`, this rank's rows) and handed to the synthesis, so N processes draw what one does."""
        synthesis = self.G.synthesis
        if synthesis.coords != "sampled":
            return super().synthesize(ws, compiled, update_emas)
        coords = self.draw(torch.randn, ws.shape[0], synthesis.num_layers, synthesis.q, device=ws.device)
        return (self.compiled(synthesis) if compiled else synthesis)(ws, coords=coords)
