"""Every experiment and preset named after a source composes to that source's hyperparameters.

One table row per (config, value): the overrides that select the config, the key (or a quantity the
training code derives from the config, such as Adam's lazy-regularization learning rate), the value
the source states, and where it states it. Where gamut deliberately differs and its docs say so, the
row carries gamut's value and the note that explains it; such a row must really differ from the
source, so a stale note fails too. The sources:

- ``segan_danbooru64_mode0..3`` and ``_eigen``: curefate/SEGan_Pytorch (README "Hyperparameters",
  ``train.py`` defaults, ``model.py``/``model_SEG.py``/``subspace.py``); ``_eigen`` adds EigenGAN's
  orthogonality term (LynnHo/EigenGAN-Tensorflow ``train.py``, ``module.py``);
- ``chromagan_imagenet``: the ChromaGAN paper (Vitoria et al., WACV 2020) and its official code
  (pvitoria/ChromaGAN ``SOURCE/config.py``, ``SOURCE/ChromaGAN.py``, ``SOURCE/dataClass.py``);
- ``chromagan_tinyimagenet``: jeniasivets/chromagan (``ChromaGAN.ipynb``, ``scripts/model.py``,
  README), the TinyImageNet adaptation the experiment names;
- ``nutshell_*``: oss-roettger/StyleGAN2-In-a-Nutshell (README "What Training Sets Worked Well?" and
  its figures' names, which give the epochs), which states sizes, channels and data set sizes only;
- presets ``auto``, ``stylegan2``, ``paper256``, ``paper512``, ``paper1024``, ``cifar``:
  NVlabs/stylegan2-ada-pytorch ``train.py`` (``cfg_specs`` and the arguments built from them),
  ``training/training_loop.py``, ``training/loss.py`` and ``training/networks.py`` defaults;
- ``finetune``: the same ``train.py``'s ``--resume`` (no EMA ramp-up, ADA five times faster).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.modules.stylegan2.losses import ema_beta, lazy_adam_params
from tests.conftest import CONF, compose_cfg


class _Same:
    def __repr__(self) -> str:
        return "SAME"


SAME: Any = _Same()  # gamut's value is the source's
UNSTATED: Any = "unstated"  # the source gives no value; gamut's choice is documented


@dataclass(frozen=True)
class Row:
    config: tuple[str, ...]  # the overrides that select the experiment or preset
    key: str  # a dotted config key, or the name of a quantity in DERIVED
    source: Any  # the value the source states (or UNSTATED)
    cite: str  # where the source states it
    gamut: Any = SAME  # gamut's value where it deliberately differs ...
    note: str = ""  # ... and where gamut's docs say so

    @property
    def id(self) -> str:
        return f"{' '.join(c for c in self.config if not c.startswith('data.root='))}:{self.key}"


def _g_adam(cfg: DictConfig) -> tuple[float, tuple[float, float]]:
    """G's Adam after the lazy-regularization scaling (path length every pl_interval)."""
    m = cfg.model
    return lazy_adam_params(m.optim.g_lr, tuple(m.optim.betas), m.loss.pl_interval if m.loss.pl_weight > 0 else None)


def _d_adam(cfg: DictConfig) -> tuple[float, tuple[float, float]]:
    """D's Adam after the lazy-regularization scaling (R1 every r1_interval)."""
    m = cfg.model
    return lazy_adam_params(m.optim.d_lr, tuple(m.optim.betas), m.loss.r1_interval if m.loss.r1_gamma > 0 else None)


# Quantities the training code computes from the config (src/modules/stylegan2/losses.py).
DERIVED: dict[str, Callable[[DictConfig], Any]] = {
    "G Adam lr": lambda cfg: _g_adam(cfg)[0],
    "G Adam betas": lambda cfg: list(_g_adam(cfg)[1]),
    "D Adam lr": lambda cfg: _d_adam(cfg)[0],
    "D Adam betas": lambda cfg: list(_d_adam(cfg)[1]),
    # G_ema's decay per iteration once past any ramp-up (global batch = the per-device batch here)
    "EMA decay per iteration": lambda cfg: ema_beta(cfg.data.batch_size, cfg.model.ema.kimg, 10**9, None),
}


# ----------------------------------------------------------------------------------------------
# SEGAN: curefate/SEGan_Pytorch. "README" is its "Hyperparameters" section (res 64, lr 0.002,
# batch 16, latent 64, r1 10, d_reg_every 16, g_reg_every 4); everything else is train.py's default.

SEGAN_README = "SEGan_Pytorch README 'Hyperparameters'"
SEGAN_TRAIN = "SEGan_Pytorch train.py"
SEGAN_COMMON: list[tuple[str, Any, str]] = [
    ("data.resolution", 64, SEGAN_README),
    ("data.batch_size", 16, f"{SEGAN_README}; {SEGAN_TRAIN} --batch"),
    ("data.xflip", True, f"{SEGAN_TRAIN}: RandomHorizontalFlip on every image"),
    ("model.z_dim", 64, f"{SEGAN_README}: latent 64"),
    ("model.w_dim", 64, f"{SEGAN_README}: latent 64 (style dim = latent)"),
    ("model.map_depth", 8, "SEGan_Pytorch model.py Generator n_mlp=8"),
    ("model.map_lr_multiplier", 0.01, "SEGan_Pytorch model.py Generator lr_mlp=0.01"),
    ("model.channel_base", 32768, "SEGan_Pytorch model.py: channels min(32768 // r, max)"),
    ("model.g_channel_max", 128, "SEGan_Pytorch model.py/model_SEG.py: G channel max 128"),
    ("model.d_channel_max", 512, "SEGan_Pytorch model.py Discriminator: channel max 512"),
    ("model.mbstd_group", 4, "SEGan_Pytorch model.py Discriminator stddev_group=4"),
    ("model.mbstd_channels", 1, "SEGan_Pytorch model.py Discriminator stddev_feat=1"),
    ("model.use_noise", True, "SEGan_Pytorch model.py NoiseInjection in every StyledConv"),
    ("model.optim.g_lr", 0.002, f"{SEGAN_README}: lr 0.002"),
    ("model.optim.d_lr", 0.002, f"{SEGAN_README}: lr 0.002"),
    ("model.optim.betas", [0.0, 0.99], f"{SEGAN_TRAIN}: Adam betas (0 ** c, 0.99 ** c)"),
    ("model.optim.eps", 1e-8, f"{SEGAN_TRAIN}: torch.optim.Adam's default eps"),
    ("G Adam lr", 0.002 * 4 / 5, f"{SEGAN_TRAIN}: g_optim lr * g_reg_every / (g_reg_every + 1)"),
    ("G Adam betas", [0.0, 0.99 ** (4 / 5)], f"{SEGAN_TRAIN}: g_optim betas ** (4 / 5)"),
    ("D Adam lr", 0.002 * 16 / 17, f"{SEGAN_TRAIN}: d_optim lr * d_reg_every / (d_reg_every + 1)"),
    ("D Adam betas", [0.0, 0.99 ** (16 / 17)], f"{SEGAN_TRAIN}: d_optim betas ** (16 / 17)"),
    ("model.loss.r1_gamma", 10, f"{SEGAN_README}: r1 10"),
    ("model.loss.r1_interval", 16, f"{SEGAN_README}: d_reg_every 16"),
    ("model.loss.pl_weight", 2.0, f"{SEGAN_TRAIN} --path_regularize 2"),
    ("model.loss.pl_interval", 4, f"{SEGAN_README}: g_reg_every 4"),
    ("model.loss.pl_decay", 0.01, "SEGan_Pytorch trainning/loss.py g_path_regularize decay=0.01"),
    ("model.loss.pl_batch_shrink", 1, f"{SEGAN_TRAIN}: path_batch_shrink is parsed but PL runs on the full batch"),
    ("model.loss.style_mixing_prob", 0.0, f"{SEGAN_TRAIN}: one z per image, no style mixing"),
    ("EMA decay per iteration", 0.5 ** (32 / 10000), f"{SEGAN_TRAIN}: accumulate(g_ema, g, 0.5 ** (32 / (10 * 1000)))"),
    ("model.ema.rampup", None, f"{SEGAN_TRAIN}: the fixed decay from the first iteration"),
    ("model.augment.mode", "none", f"{SEGAN_TRAIN} --augment (store_true): off; the README names no augmentation"),
    ("trainer.max_kimg", 50_000 * 16 / 1000, "SEGan_Pytorch README figures 7/8: the curves stop at 50k iterations"),
    ("trainer.precision", "32-true", f"{SEGAN_TRAIN}: float32 throughout (no mixed precision)"),
    ("model.conv_clamp", None, "SEGan_Pytorch model.py: no activation clamping"),
    ("model.num_classes", 0, f"{SEGAN_TRAIN}: unconditional"),
]
SEGAN_SUBSPACE = "SEGan_Pytorch subspace.py"
SEGAN_MODES: list[tuple[str, Any, str]] = [
    ("model.subspace.variant", "faithful", "SEGan_Pytorch model_SEG.py: what their forward computes (docs/segan.md)"),
    ("model.subspace.coords", "w", "SEGan_Pytorch README 'Model': the w slot feeding the layer"),
    ("model.subspace.U_init", "segan", f"{SEGAN_SUBSPACE}: orthogonal init over (C) x (r*r*Dw)"),
    ("model.subspace.L_init", "ones", f"{SEGAN_SUBSPACE}: L initialised to 1"),
    ("model.loss.orth_reg.weight", 0.0, "SEGan_Pytorch README 'Others': no regularization in the linear space"),
]
EIGEN: list[tuple[str, Any, str]] = [
    ("model.mode", 2, "SEGan_Pytorch README 'Model': the w -> w subspace before modulation"),
    ("model.subspace.variant", "eigen", "EigenGAN (He et al. 2021): an orthonormal basis U, importance L, origin mu"),
    ("model.subspace.coords", "w", "SEGan_Pytorch README 'Model': the w slot feeding the layer"),
    ("model.subspace.q", None, "SEGan_Pytorch README figure 6: D in 0..63, q = w_dim"),
    ("model.subspace.L_init", "ones", f"{SEGAN_SUBSPACE}: L initialised to 1"),
    ("model.loss.orth_reg.weight", 1.0, "EigenGAN-Tensorflow train.py --g_loss_weight_orth_loss 1"),
    ("model.loss.orth_reg.form", "half_fro_sum", "EigenGAN-Tensorflow module.py: sum of 1/2 ||U^T U - I||_F^2"),
    ("model.loss.orth_reg.hard", "none", "EigenGAN-Tensorflow train.py: the penalty, not Gram-Schmidt, at weight 1"),
]


def _segan_rows() -> list[Row]:
    rows = []
    for mode in range(4):
        config = (f"experiment=segan_danbooru64_mode{mode}", "data.root=/data/danbooru")
        mode_row = ("model.mode", mode, "SEGan_Pytorch train.py --mode (model.py / model_SEG.py)")
        rows += [Row(config, k, v, c) for k, v, c in [*SEGAN_COMMON, *SEGAN_MODES, mode_row]]
    config = ("experiment=segan_danbooru64_eigen", "data.root=/data/danbooru")
    rows += [Row(config, k, v, c) for k, v, c in [*SEGAN_COMMON, *EIGEN]]
    return rows


# ----------------------------------------------------------------------------------------------
# ChromaGAN.

OFFICIAL = "pvitoria/ChromaGAN SOURCE"
PAPER = "Vitoria et al. WACV 2020"
VGG_NORM_NOTE = (
    "docs/chromagan.md 'Fidelity options': ImageNet-standardised VGG input (model.vgg_input_norm=none: theirs)"
)
CHROMAGAN_SHARED: list[tuple[str, Any, str]] = [
    ("colorspace.name", "lab", f"{PAPER} Sec. 3: L -> ab in CIE Lab"),
    ("data.resolution", 224, f"{OFFICIAL}/config.py IMAGE_SIZE"),
    ("data.batch_size", 10, f"{OFFICIAL}/config.py BATCH_SIZE; {PAPER} Sec. 4"),
    ("data.xflip", False, f"{OFFICIAL}/dataClass.py: no augmentation"),
    ("model.global_fc", [1024, 512, 256], f"{OFFICIAL}/ChromaGAN.py global features"),
    ("model.class_fc", [4096, 4096], f"{OFFICIAL}/ChromaGAN.py class distribution head"),
    ("model.fc_act", "none", f"{OFFICIAL}/ChromaGAN.py: Dense layers without activation"),
    ("model.trunk_pretrained", True, f"{OFFICIAL}/ChromaGAN.py VGG16(weights='imagenet')"),
    ("model.trunk_trainable", True, f"{OFFICIAL}/ChromaGAN.py: the VGG trunk is fine-tuned"),
    ("model.critic.channels", [64, 128, 256, 512], f"{OFFICIAL}/ChromaGAN.py discriminator"),
    ("model.critic.strides", [2, 2, 2, 1, 1], f"{OFFICIAL}/ChromaGAN.py discriminator"),
    ("model.loss.lambda_color", 1.0, f"{OFFICIAL}/ChromaGAN.py loss_weights[0]; {PAPER} Eq. 1"),
    ("model.loss.lambda_kl", 0.003, f"{OFFICIAL}/ChromaGAN.py loss_weights[1]; {PAPER} lambda_s"),
    ("model.loss.lambda_adv", 0.1, f"{OFFICIAL}/ChromaGAN.py loss_weights[2] (-0.1 on mean D); {PAPER} lambda_g"),
    ("model.loss.lambda_gp", 10.0, f"{OFFICIAL}/ChromaGAN.py GRADIENT_PENALTY_WEIGHT; {PAPER} (WGAN-GP)"),
    ("model.optim.n_critic", 1, f"{OFFICIAL}/ChromaGAN.py: one critic step per G step"),
]
CHROMAGAN_IMAGENET: list[Row] = [
    Row(("experiment=chromagan_imagenet",), k, v, c)
    for k, v, c in [
        *CHROMAGAN_SHARED,
        ("trainer.max_steps", 5 * 1_281_167 // 10, f"{OFFICIAL}/config.py NUM_EPOCHS 5 over ImageNet train"),
        ("model.num_classes", 1000, f"{OFFICIAL}/ChromaGAN.py: 1000-way class head"),
        ("model.ab_norm", "opencv", f"{OFFICIAL}/dataClass.py: (ab + 128) / 255"),
        ("model.block_order", "conv_relu_bn", f"{OFFICIAL}/ChromaGAN.py: Conv2D(activation='relu'), then BN"),
        ("model.bn_momentum", 0.01, "Keras BatchNormalization momentum 0.99 (PyTorch's 1 - 0.99)"),
        ("model.bn_eps", 1e-3, "Keras BatchNormalization epsilon 1e-3"),
        ("model.critic.norm", "none", f"{OFFICIAL}/ChromaGAN.py discriminator: no normalization"),
        ("model.critic.leaky_slope", 0.3, f"{OFFICIAL}/ChromaGAN.py LeakyReLU() (Keras alpha 0.3)"),
        ("model.optim.g_lr", 2e-5, f"{OFFICIAL}/ChromaGAN.py Adam(0.00002, 0.5); {PAPER} Sec. 4"),
        ("model.optim.d_lr", 2e-5, f"{OFFICIAL}/ChromaGAN.py Adam(0.00002, 0.5)"),
        ("model.optim.betas", [0.5, 0.999], f"{OFFICIAL}/ChromaGAN.py Adam(0.00002, 0.5), Keras beta_2 0.999"),
        ("model.optim.eps", 1e-7, f"{OFFICIAL}/ChromaGAN.py: Keras Adam's epsilon"),
        ("model.optim.order", "g_first", f"{OFFICIAL}/ChromaGAN.py train: combined (G) batch, then critic"),
        ("model.optim.d_fake", "recompute", f"{OFFICIAL}/ChromaGAN.py: the critic predicts with the updated G"),
    ]
] + [
    Row(
        ("experiment=chromagan_imagenet",),
        "model.vgg_input_norm",
        "none",
        f"{OFFICIAL}/ChromaGAN.py",
        "imagenet",
        VGG_NORM_NOTE,
    )
]
JEN = "jeniasivets/chromagan"
TINY_NOTE = "src/conf/experiment/chromagan_tinyimagenet.yaml 'Not copied from their code'; docs/chromagan.md"
CHROMAGAN_TINY: list[Row] = [
    Row(("experiment=chromagan_tinyimagenet",), k, v, c)
    for k, v, c in [
        *[r for r in CHROMAGAN_SHARED if r[0] not in ("data.batch_size",)],
        ("data.batch_size", 10, f"{JEN} ChromaGAN.ipynb batch_size = 10"),
        ("data.resize_filter", "bilinear", f"{JEN} ChromaGAN.ipynb Resize((224, 224)) (bilinear)"),
        ("trainer.max_steps", 4 * 100_000 // 10, f"{JEN} README: experiment 2, 4 epochs of TinyImageNet train"),
        ("model.num_classes", 200, f"{JEN} scripts/model.py Linear(4096, 200)"),
        ("model.ab_norm", "minmax", f"{JEN} scripts/utils.py"),
        ("model.block_order", "conv_bn_relu", f"{JEN} scripts/model.py Block: conv, BatchNorm, activation"),
        ("model.bn_momentum", 0.1, f"{JEN} scripts/model.py nn.BatchNorm2d defaults"),
        ("model.bn_eps", 1e-5, f"{JEN} scripts/model.py nn.BatchNorm2d defaults"),
        ("model.critic.leaky_slope", 0.2, f"{JEN} scripts/model.py Discriminator slope=0.2"),
        ("model.optim.g_lr", 2e-5, f"{JEN} ChromaGAN.ipynb Adam(G, lr=0.00002)"),
        ("model.optim.d_lr", 2e-5, f"{JEN} ChromaGAN.ipynb Adam(D, lr=0.00002)"),
        ("model.optim.betas", [0.5, 0.999], f"{JEN} ChromaGAN.ipynb betas=(0.5, 0.999)"),
        ("model.optim.eps", 1e-8, f"{JEN} ChromaGAN.ipynb: torch.optim.Adam's default eps"),
        ("model.optim.order", "d_first", f"{JEN} ChromaGAN.ipynb: discriminator step, then generator step"),
    ]
] + [
    Row(
        ("experiment=chromagan_tinyimagenet",),
        "model.vgg_input_norm",
        "none",
        f"{JEN} ChromaGAN.ipynb",
        "imagenet",
        VGG_NORM_NOTE,
    ),
    Row(
        ("experiment=chromagan_tinyimagenet",),
        "model.critic.norm",
        "batch",
        f"{JEN} scripts/model.py Discriminator: BatchNorm in layers 2-4",
        "none",
        f"{TINY_NOTE}: BatchNorm breaks the per-sample gradient penalty",
    ),
]


# ----------------------------------------------------------------------------------------------
# StyleGAN2-in-a-Nutshell: sizes, channels and data set sizes from its README; the epochs from its
# figures' names (Shoes_80, Rain_150, Stamps_91; the text's 200 for the dresses). It states no
# hyperparameters: gamut trains each with stylegan2-ada-pytorch's `auto` at the long side (README
# "Any image size"), checked below as gamut's documented choice.

NUTSHELL = "StyleGAN2-In-a-Nutshell README 'What Training Sets Worked Well?'"
AUTO_NOTE = "README 'Any image size': stylegan2-ada-pytorch's auto at the long side, ADA for a small set"
# experiment, (h, w), colour space, channels, images, epochs (None: not given), gamut's length in kimg
NUTSHELL_MODELS = [
    ("nutshell_fashion_mnist", (24, 24), "gray", 1, 6000, 80, 480),
    ("nutshell_emoji", (64, 64), "rgba", 4, 6620, None, 660),
    ("nutshell_catalog", (128, 64), "rgb", 3, 11379, 200, 2276),
    ("nutshell_rain", (64, 128), "gray", 1, 3800, 150, 570),
    ("nutshell_stamps", (48, 80), "rgb", 3, 11491, 91, 1046),
]


def _nutshell_rows() -> list[Row]:
    rows = []
    for name, (h, w), space, channels, images, epochs, kimg in NUTSHELL_MODELS:
        config = (f"experiment={name}", "data.root=/data/x")
        side = max(h, w)
        rows += [
            Row(config, "data.resolution", [h, w], f"{NUTSHELL}: {h}x{w}"),
            Row(config, "colorspace.name", space, f"{NUTSHELL}: {space}"),
            Row(config, "colorspace.channels", channels, f"{NUTSHELL}: {channels} channel(s)"),
        ]
        if epochs is not None:
            length = round(epochs * images / 1000)
            rows.append(Row(config, "trainer.max_kimg", length, f"{NUTSHELL}: {epochs} epochs of {images} images"))
        else:
            note = "README 'Any image size': about 100 epochs (the Nutshell gives no length)"
            rows.append(Row(config, "trainer.max_kimg", UNSTATED, NUTSHELL, kimg, note))
        for key, value in [
            ("data.batch_size", 32),
            ("model.loss.r1_gamma", 0.0002 * side**2 / 32),
            ("model.ema.kimg", 10),
            ("model.optim.g_lr", 0.0025),
            ("model.map_depth", 2),
            ("model.channel_base", 16384),
            ("model.augment.mode", "ada"),
        ]:
            rows.append(Row(config, key, UNSTATED, NUTSHELL, value, AUTO_NOTE))
    return rows


# ----------------------------------------------------------------------------------------------
# stylegan2-ada-pytorch presets: train.py cfg_specs, one dict per preset.

ADA_TRAIN = "stylegan2-ada-pytorch train.py"
CFG_SPECS = {
    # ref_gpus, kimg, mb, mbstd, fmaps, lrate, gamma, ema, ramp, map
    "stylegan2": (8, 25000, 32, 4, 1, 0.002, 10, 10, None, 8),
    "paper256": (8, 25000, 64, 8, 0.5, 0.0025, 1, 20, None, 8),
    "paper512": (8, 25000, 64, 8, 1, 0.0025, 0.5, 20, None, 8),
    "paper1024": (8, 25000, 32, 4, 1, 0.002, 2, 10, None, 8),
    "cifar": (2, 100000, 64, 32, 1, 0.0025, 0.01, 500, 0.05, 2),
}
LENGTH_NOTE = "README 'Presets': a preset sets no length; pass NVIDIA's kimg as trainer.max_kimg"
PASS_NOTE = "README 'Presets', docs/scaling.md: one pass per device; data.batch_gpu=mb/ref_gpus gives NVIDIA's passes"
FP16_NOTE = "docs/scaling.md 'Precision': float32 by default; trainer.precision=16-mixed is NVIDIA's recipe"
# What every preset shares: the arguments train.py builds outside cfg_specs and the defaults of
# training_loop.py, loss.py (StyleGAN2Loss) and networks.py it relies on.
PRESET_COMMON: list[tuple[str, Any, str]] = [
    ("model.z_dim", 512, f"{ADA_TRAIN}: G_kwargs z_dim=512"),
    ("model.w_dim", 512, f"{ADA_TRAIN}: G_kwargs w_dim=512"),
    ("model.channel_max", 512, f"{ADA_TRAIN}: channel_max = 512"),
    ("model.map_lr_multiplier", 0.01, "stylegan2-ada-pytorch training/networks.py MappingNetwork lr_multiplier"),
    ("model.w_avg_beta", 0.995, "stylegan2-ada-pytorch training/networks.py MappingNetwork w_avg_beta"),
    ("model.mbstd_channels", 1, "stylegan2-ada-pytorch training/networks.py mbstd_num_channels"),
    ("model.optim.betas", [0.0, 0.99], f"{ADA_TRAIN}: G_opt_kwargs / D_opt_kwargs betas"),
    ("model.optim.eps", 1e-8, f"{ADA_TRAIN}: G_opt_kwargs / D_opt_kwargs eps"),
    ("model.loss.r1_interval", 16, "stylegan2-ada-pytorch training/training_loop.py D_reg_interval"),
    ("model.loss.pl_interval", 4, "stylegan2-ada-pytorch training/training_loop.py G_reg_interval"),
    ("model.loss.pl_decay", 0.01, "stylegan2-ada-pytorch training/loss.py StyleGAN2Loss pl_decay"),
    ("model.loss.pl_batch_shrink", 2, "stylegan2-ada-pytorch training/loss.py StyleGAN2Loss pl_batch_shrink"),
    ("model.augment.mode", "ada", f"{ADA_TRAIN} --aug default 'ada'"),
    ("model.augment.pipeline", "bgc", f"{ADA_TRAIN} --augpipe default 'bgc'"),
    ("model.augment.target", 0.6, f"{ADA_TRAIN}: ada_target = 0.6"),
    ("model.augment.p", 0.0, "stylegan2-ada-pytorch training/training_loop.py augment_p"),
    ("model.augment.interval", 4, "stylegan2-ada-pytorch training/training_loop.py ada_interval"),
    ("model.augment.kimg", 500, "stylegan2-ada-pytorch training/training_loop.py ada_kimg"),
]


def _preset_rows() -> list[Row]:
    rows = []
    for name, (ref_gpus, kimg, mb, mbstd, fmaps, lrate, gamma, ema, ramp, depth) in CFG_SPECS.items():
        config = (f"preset={name}",)
        spec = f"{ADA_TRAIN} cfg_specs['{name}']"
        is_cifar = name == "cifar"
        rows += [Row(config, k, v, c) for k, v, c in PRESET_COMMON]
        rows += [
            Row(config, "data.batch_size", mb, f"{spec} mb (the total batch, one device)"),
            Row((*config, "trainer.devices=2"), "data.batch_size", mb // 2, f"{spec} mb over 2 devices"),
            Row(config, "model.mbstd_group", mbstd, f"{spec} mbstd"),
            Row(config, "model.channel_base", int(fmaps * 32768), f"{spec} fmaps * 32768"),
            Row(config, "model.optim.g_lr", lrate, f"{spec} lrate"),
            Row(config, "model.optim.d_lr", lrate, f"{spec} lrate"),
            Row(config, "model.loss.r1_gamma", gamma, f"{spec} gamma"),
            Row(config, "model.ema.kimg", ema, f"{spec} ema"),
            Row(config, "model.ema.rampup", ramp, f"{spec} ramp"),
            Row(config, "model.map_depth", depth, f"{spec} map"),
            Row(config, "model.loss.pl_weight", 0.0 if is_cifar else 2.0, f"{ADA_TRAIN}: cifar sets pl_weight = 0"),
            Row(config, "model.loss.style_mixing_prob", 0.0 if is_cifar else 0.9, f"{ADA_TRAIN}: cifar mixing 0"),
            Row(config, "trainer.max_kimg", kimg, f"{spec} kimg", None, LENGTH_NOTE),
            Row(config, "data.batch_gpu", mb // ref_gpus, f"{spec} mb // ref_gpus ({ref_gpus})", None, PASS_NOTE),
            Row(config, "trainer.precision", "16-mixed", f"{ADA_TRAIN}: num_fp16_res = 4", "32-true", FP16_NOTE),
            Row((*config, "trainer.precision=16-mixed"), "model.conv_clamp", 256, f"{ADA_TRAIN}: conv_clamp = 256"),
            Row(
                (*config, "trainer.precision=16-mixed"),
                "model.num_fp16_res",
                4,
                f"{ADA_TRAIN}: num_fp16_res = 4",
                None,
                "src/conf/model/stylegan2.yaml: null resolves to NVIDIA's 4 (src/nn/precision.py)",
            ),
        ]
    # `auto`: cfg_specs['auto'] filled in from the resolution and the GPU count. Worked values:
    # res, gpus -> mb (total), mbstd, fmaps, lrate, gamma = 0.0002 res^2 / mb, ema = mb * 10 / 32
    for res, gpus, mb, mbstd, fmaps, lrate, gamma, ema in [
        (64, 1, 32, 4, 0.5, 0.0025, 0.0256, 10),
        (128, 4, 64, 4, 0.5, 0.0025, 0.0512, 20),
        (256, 1, 16, 4, 0.5, 0.0025, 0.8192, 5),
        (256, 8, 64, 4, 0.5, 0.0025, 0.2048, 20),
        (512, 1, 8, 4, 1, 0.0025, 6.5536, 2.5),
        (1024, 1, 4, 4, 1, 0.002, 52.4288, 1.25),
    ]:
        config = ("preset=auto", f"data.resolution={res}", f"trainer.devices={gpus}")
        spec = f"{ADA_TRAIN} cfg_specs['auto'] at res {res} on {gpus} GPU(s)"
        rows += [Row(config, k, v, c) for k, v, c in PRESET_COMMON]
        rows += [
            Row(config, "data.batch_size", mb // gpus, f"{spec}: mb = max(min(gpus * min(4096 // res, 32), 64), gpus)"),
            Row(config, "model.mbstd_group", mbstd, f"{spec}: mbstd = min(mb // gpus, 4)"),
            Row(config, "model.channel_base", int(fmaps * 32768), f"{spec}: fmaps = 1 if res >= 512 else 0.5"),
            Row(config, "model.optim.g_lr", lrate, f"{spec}: lrate = 0.002 if res >= 1024 else 0.0025"),
            Row(config, "model.optim.d_lr", lrate, f"{spec}: lrate"),
            Row(config, "model.loss.r1_gamma", gamma, f"{spec}: gamma = 0.0002 * res ** 2 / mb"),
            Row(config, "model.ema.kimg", ema, f"{spec}: ema = mb * 10 / 32"),
            Row(config, "model.ema.rampup", 0.05, f"{ADA_TRAIN} cfg_specs['auto'] ramp"),
            Row(config, "model.map_depth", 2, f"{ADA_TRAIN} cfg_specs['auto'] map"),
            Row(config, "model.loss.pl_weight", 2.0, "stylegan2-ada-pytorch training/loss.py pl_weight"),
            Row(
                config, "model.loss.style_mixing_prob", 0.9, "stylegan2-ada-pytorch training/loss.py style_mixing_prob"
            ),
            Row(config, "trainer.max_kimg", 25000, f"{ADA_TRAIN} cfg_specs['auto'] kimg", None, LENGTH_NOTE),
        ]
    return rows


# experiment=finetune: stylegan2-ada-pytorch train.py --resume on top of the `auto` preset.
FINETUNE: list[Row] = [
    Row(("experiment=finetune",), "model.ema.rampup", None, f"{ADA_TRAIN} --resume: ema_rampup = None"),
    Row(("experiment=finetune",), "model.augment.kimg", 100, f"{ADA_TRAIN} --resume: ada_kimg = 100"),
    Row(("experiment=finetune",), "model.augment.mode", "ada", f"{ADA_TRAIN} --aug default 'ada'"),
    Row(("experiment=finetune",), "model.map_depth", 2, f"{ADA_TRAIN} --cfg default 'auto': map 2"),
]

ROWS: list[Row] = [
    *_segan_rows(),
    *CHROMAGAN_IMAGENET,
    *CHROMAGAN_TINY,
    *_nutshell_rows(),
    *_preset_rows(),
    *FINETUNE,
]


@cache
def _composed(config: tuple[str, ...]) -> DictConfig:
    return compose_cfg([*config, "run_name=t"])


_ABSENT = object()


def _value(cfg: DictConfig, key: str) -> Any:
    """The composed value of ``key`` (resolved; lists as lists), or the DERIVED quantity of that name."""
    if key in DERIVED:
        return DERIVED[key](cfg)
    value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
    assert value is not _ABSENT, f"{key}: no such key in the composed config"
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _as_expected(expected: Any) -> Any:
    """``expected`` for ``==``: within float64 rounding where it holds floats, else exactly."""
    if isinstance(expected, float) or (isinstance(expected, list) and any(isinstance(e, float) for e in expected)):
        return pytest.approx(expected, rel=1e-12, abs=0)
    return expected


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_config_has_the_source_value(row: Row):
    """The composed value is the source's, or, where a note says gamut differs, gamut's (which must
    then really differ from the source's)."""
    value = _value(_composed(row.config), row.key)
    if row.key == "data.resolution" and isinstance(row.source, list) and isinstance(value, int):
        value = [value, value]  # data.resolution=64 is 64x64
    if row.gamut is SAME:
        assert value == _as_expected(row.source), f"{row.id}: {value!r}, the source ({row.cite}) says {row.source!r}"
        return
    assert row.note, f"{row.id}: a deliberate difference needs the note of the docs that state it"
    assert row.gamut != row.source, f"{row.id}: the noted difference is gone; make the row the source's"
    assert value == _as_expected(row.gamut), f"{row.id}: {value!r}, expected gamut's {row.gamut!r} ({row.note})"


def test_every_named_reproduction_has_rows():
    """A new SEGAN, ChromaGAN-dataset or Nutshell experiment, or a new NVIDIA preset, needs its rows."""
    experiments = {p.stem for p in (Path(CONF) / "experiment").glob("*.yaml")}
    named = {e for e in experiments if e.startswith(("segan_", "nutshell_", "chromagan_"))} | {"finetune"}
    covered = {c.split("=", 1)[1] for r in ROWS for c in r.config if c.startswith("experiment=")}
    assert named == covered, sorted(named ^ covered)
    presets = {c.split("=", 1)[1] for r in ROWS for c in r.config if c.startswith("preset=")}
    assert presets == {"auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar"}


def test_segan_experiments_train_without_augmentation_and_take_ada_as_an_override():
    """SEGan_Pytorch trains without augmentation, so the experiments do; ``model.augment.mode=ada``
    (docs/segan.md) adds gamut's ADA with stylegan2-ada-pytorch's defaults. Both build (a small
    network, the experiment's other settings)."""
    small = [
        "data.root=/data/danbooru",
        "data.resolution=16",
        "model.z_dim=8",
        "model.w_dim=8",
        "model.map_depth=1",
        "model.channel_base=128",
        "model.g_channel_max=8",
        "model.d_channel_max=8",
    ]
    plain = instantiate(compose_cfg(["experiment=segan_danbooru64_mode2", *small]).model)
    assert not plain.augmentation.enabled and plain.augmentation.adaptive is None
    cfg = compose_cfg(["experiment=segan_danbooru64_mode2", *small, "model.augment.mode=ada"])
    ada = cfg.model.augment
    assert (ada.mode, ada.pipeline, ada.target, ada.interval, ada.kimg, ada.p) == ("ada", "bgc", 0.6, 4, 500, 0.0)
    module = instantiate(cfg.model)
    assert module.augmentation.enabled and module.augmentation.adaptive is not None
    assert module.hparams.mode == 2 and module.loss_cfg["style_mixing_prob"] == 0.0  # the rest is SEGAN's
