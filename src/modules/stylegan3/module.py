"""StyleGAN3 LightningModule: StyleGAN2's training with the alias-free generator (configs T and R).

Karras et al. 2021, "Alias-Free Generative Adversarial Networks"; NVlabs/stylegan3 ``train.py``
(``--cfg=stylegan3-t|stylegan3-r``) and ``training/loss.py``. The four phases, lazy R1, ADA, Freeze-D,
accumulation, the fp16 recipe, DDP and exact resume are StyleGAN2's (:class:`StyleGAN2`); what
StyleGAN3 changes is here:

- the generator (:class:`src.modules.stylegan3.networks.StyleGAN3Generator`); the discriminator is
  StyleGAN2's, with the shared ``channel_base``/``channel_max`` (config R doubles G's only:
  ``g_channel_base``/``g_channel_max``);
- the generated-image pass of Dmain moves the input magnitude EMAs of the synthesis layers (NVIDIA's
  ``run_G(..., update_emas=True)``), with decay ``magnitude_ema_beta`` (null: ``0.5 ** (batch / 20000)``
  for the global batch, as ``train.py`` sets it); under DDP the update averages every process's
  inputs; with ``data.batch_gpu`` each round moves it by ``beta ** (1 / rounds)``, so the half-life in
  images does not depend on the split (each round's layers then see the EMA its predecessors moved, so
  accumulated training equals whole-batch training up to that drift of order ``1 - beta``, where
  StyleGAN2's is exact; NVIDIA's loop moves it by the full ``beta`` once per pass);
- every image D sees is blurred first while ``blur.sigma > 0`` (config R: sigma 10 fading to 0 over
  ``blur.fade_kimg``; :mod:`src.modules.stylegan3.losses`);
- no path-length regularisation and no style mixing by default (``train.py`` turns both off).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from src.modules.base import merge_options
from src.modules.stylegan2.module import DEFAULT_LOSS, StyleGAN2
from src.modules.stylegan3 import losses
from src.modules.stylegan3.networks import StyleGAN3Generator

DEFAULT_SYNTHESIS = dict(
    num_layers=14,
    num_critical=2,
    first_cutoff=2.0,
    first_stopband=2**2.1,
    last_stopband_rel=2**0.3,
    margin_size=10,
    output_scale=0.25,
    filter_size=6,
    lrelu_upsampling=2,
)
DEFAULT_BLUR = dict(sigma=0.0, fade_kimg=0.0)


class StyleGAN3(StyleGAN2):
    """StyleGAN3 (config T or R) for any colour space and size.

    Its own arguments: ``conv_kernel`` (3: T, 1: R), ``use_radial_filters`` (R's jinc downsampling
    filters), ``g_channel_base`` / ``g_channel_max`` (G's widths; null = ``channel_base`` /
    ``channel_max``, which D uses), ``magnitude_ema_beta`` (null: from the global batch, see the module
    docstring), ``synthesis`` (the filter schedule: ``num_layers``, ``num_critical``, ``first_cutoff``,
    ``first_stopband``, ``last_stopband_rel``, ``margin_size``, ``output_scale``, ``filter_size``,
    ``lrelu_upsampling``) and ``blur`` (``sigma``, ``fade_kimg``). Every other keyword argument is
    :class:`StyleGAN2`'s (``map_depth`` 2 and ``w_avg_beta`` 0.998 by default, as NVIDIA's StyleGAN3
    configs; ``use_noise`` is accepted and ignored: the generator has no noise inputs).
    """

    G: StyleGAN3Generator
    G_ema: StyleGAN3Generator

    default_loss = {**DEFAULT_LOSS, "pl_weight": 0.0, "style_mixing_prob": 0.0}
    # a fine-tune takes the magnitude EMA's decay (from its batch) and D's blur from this run's config
    training_keys = StyleGAN2.training_keys | {"magnitude_ema_beta", "blur"}
    nonfinite_advice = (
        "Lower the learning rate, raise model.loss.r1_gamma (NVIDIA's docs/configs.md lists starting values "
        "per resolution), or resume from an earlier checkpoint."
    )

    def __init__(
        self,
        conv_kernel: int = 3,
        use_radial_filters: bool = False,
        g_channel_base: int | None = None,
        g_channel_max: int | None = None,
        magnitude_ema_beta: float | None = None,
        synthesis: dict | None = None,
        blur: dict | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("map_depth", 2)
        kwargs.setdefault("w_avg_beta", 0.998)
        if conv_kernel not in (1, 3):
            raise ValueError(f"model.conv_kernel={conv_kernel}: StyleGAN3 uses 3 (config T) or 1 (config R)")
        if magnitude_ema_beta is not None and not 0 <= magnitude_ema_beta <= 1:
            raise ValueError(
                f"model.magnitude_ema_beta={magnitude_ema_beta}: expected null or 0 <= beta <= 1 (1: frozen)"
            )
        synthesis_cfg = merge_options(DEFAULT_SYNTHESIS, synthesis, "model.synthesis")
        blur_cfg = merge_options(DEFAULT_BLUR, blur, "model.blur")
        if blur_cfg["sigma"] < 0 or blur_cfg["fade_kimg"] < 0:
            raise ValueError(f"model.blur={blur_cfg}: sigma and fade_kimg must be >= 0")
        # read by make_generator() during StyleGAN2.__init__ (which records these arguments too)
        self._g_options = dict(
            conv_kernel=conv_kernel,
            use_radial_filters=use_radial_filters,
            magnitude_ema_beta=0.999 if magnitude_ema_beta is None else magnitude_ema_beta,
            **synthesis_cfg,
        )
        self._g_channels = dict(channel_base=g_channel_base, channel_max=g_channel_max)
        super().__init__(**kwargs)
        self.blur_cfg = blur_cfg
        self.magnitude_ema_beta = magnitude_ema_beta

    def make_generator(self, **kwargs) -> StyleGAN3Generator:
        """The alias-free generator, with G's own widths when given."""
        kwargs.pop("use_noise", None)  # no noise inputs
        for key, value in self._g_channels.items():
            if value is not None:
                kwargs[key] = value
        return StyleGAN3Generator(**kwargs, **self._g_options)

    # ------------------------------------------------------------------------------------------
    # What differs in training.

    def d_main(self, opt, real: Tensor, real_c: Tensor | None, log: dict[str, Tensor]) -> None:
        """StyleGAN2's Dmain; first sets the decay of this iteration's magnitude EMA updates."""
        n = real.shape[0]
        beta = self.magnitude_ema_beta
        if beta is None:
            beta = losses.magnitude_ema_beta(n * self.world_size)
        beta = beta ** (1.0 / self.rounds(n))  # one update per accumulation round
        self.G.synthesis.configure_magnitude_ema(beta, self.world_size)
        super().d_main(opt, real, real_c, log)

    def synthesize(self, ws: Tensor, compiled: bool = True, update_emas: bool = False) -> Tensor:
        """``G.synthesis(ws)``; ``update_emas`` in Dmain's generated-image pass (the magnitude EMAs)."""
        synthesis = self.compiled(self.G.synthesis) if compiled else self.G.synthesis
        return synthesis(ws, update_emas=update_emas)

    def augment(self, images: Tensor) -> Tensor:
        """What D sees: blurred while the blur lasts (config R), then StyleGAN2's augmentation."""
        sigma = self.d_blur_sigma()
        if sigma > 0:
            images = losses.gaussian_blur(images, sigma, self.colorspace.hue_channel)
        return super().augment(images)

    def d_blur_sigma(self) -> float:
        """The blur sigma (pixels) of D's images at this iteration (``cur_nimg``, NVIDIA's ``cur_nimg``)."""
        return losses.blur_sigma(self.cur_nimg, self.blur_cfg["sigma"], self.blur_cfg["fade_kimg"])

    def train_phases(self, batch: dict) -> dict[str, Tensor]:
        """StyleGAN2's phases; logs the blur sigma while it is on."""
        log = super().train_phases(batch)
        if self.blur_cfg["sigma"] > 0:
            log["D/blur_sigma"] = self.pl_mean.new_tensor(self.d_blur_sigma())
        return log
