"""ChromaGAN LightningModule (Vitoria et al., WACV 2020; official Keras code pvitoria/ChromaGAN).

Per iteration, on one batch of Lab images (gamut's ``lab`` color space, converted on the device):

1. teacher logits of the frozen VGG-16 under ``no_grad`` (when ``lambda_kl > 0``);
2. the G step (every ``n_critic`` iterations): ``L_G = lambda_color L2 + lambda_kl KL + lambda_adv (-mean D)``;
3. the critic step: WGAN loss plus ``lambda_gp`` x the gradient penalty on ab.

``optim.order=g_first`` is the official order; there the critic sees a fake recomputed by the freshly
updated G (``optim.d_fake=recompute``, official) or the G step's own fake (``reuse``, one G forward
fewer). ``d_first`` is jeniasivets' order. Separate Adams (SOURCE/ChromaGAN.py shares one).

Validation (when the data has a val set): PSNR, per-image-peak PSNR and SSIM on RGB in [0, 1], and the
same for the gray baseline (:mod:`src.metrics.colorization`), logged as ``val/*`` at the images-seen step.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from src.colorspaces import get_colorspace
from src.datamodules.image_datamodule import ImageDataModule
from src.datamodules.tinyimagenet import TinyImageNetDataset
from src.metrics.colorization import RESULT_KEYS, ColorizationMetrics
from src.modules.base import GANModule, merge_options
from src.modules.chromagan import losses
from src.modules.chromagan.color import AB_NORMS, ab_to_unit, join_lab, split_lab
from src.modules.chromagan.discriminator import PatchCritic
from src.modules.chromagan.generator import ColorizationGenerator
from src.modules.chromagan.vgg import Teacher, load_trunk_weights
from src.utils.resolution import parse_size

DEFAULT_LOSS = dict(lambda_color=1.0, lambda_kl=0.003, lambda_adv=0.1, lambda_gp=10.0)
DEFAULT_OPTIM = dict(
    g_lr=2e-5, d_lr=2e-5, betas=(0.5, 0.999), eps=1e-7, n_critic=1, order="g_first", d_fake="recompute"
)
DEFAULT_CRITIC = dict(channels=(64, 128, 256, 512), strides=(2, 2, 2, 1, 1), norm="none", leaky_slope=0.3, width=1.0)
IMAGENET_CLASSES = 1000


class ChromaGAN(GANModule):
    """ChromaGAN: ``G`` (:class:`ColorizationGenerator`) and the critic ``D`` (:class:`PatchCritic`).

    Args:
        colorspace: must be ``lab`` (the data delivers Lab).
        resolution: training size, int or ``[h, w]``, multiples of 8 (224 in the paper).
        num_classes: class-head size (1000; 200 with TinyImageNet, whose data supplies the teacher columns).
        ab_norm: ``opencv`` (official) or ``minmax`` (jeniasivets) (:mod:`src.modules.chromagan.color`).
        trunk_pretrained: start the VGG trunk from ImageNet (``vgg16-397923af.pth`` in ``weights_dir``).
        trunk_trainable: fine-tune the trunk (official) or freeze it.
        weights_dir: where VGG-16 is looked up (``paths.weights_dir``).
        critic, loss, optim: option dicts (defaults ``DEFAULT_CRITIC``, ``DEFAULT_LOSS``, ``DEFAULT_OPTIM``).
        generator_options: :class:`ColorizationGenerator`'s other arguments (``global_fc``, ``class_fc``,
            ``fc_act``, ``vgg_input_norm``, ``block_order``, ``bn_momentum``, ``bn_eps``), passed on.
    """

    G: ColorizationGenerator
    D: PatchCritic
    class_columns: Tensor  # buffer: the teacher's ImageNet column of each class (-1: not known yet)
    trunk_initialized: Tensor  # buffer: the VGG trunk holds the ImageNet weights (a fresh run loaded them)

    kwargs_to = ColorizationGenerator  # where **generator_options go (read by config validation)

    conditional_on_labels = False  # num_classes is the teacher's class head, not data labels
    no_accumulation_reason = "ChromaGAN's generator has BatchNorm, whose statistics depend on the batch"
    colorizes = True  # sample grids show gray input | prediction | ground truth
    validation_metrics = tuple(f"val/{k}" for k in RESULT_KEYS)  # on_validation_epoch_end
    nonfinite_advice = "Lower model.optim.g_lr/d_lr or resume from an earlier checkpoint."

    def __init__(
        self,
        colorspace: str = "lab",
        resolution: Any = 224,
        num_classes: int = IMAGENET_CLASSES,
        width: float = 1.0,
        ab_norm: str = "opencv",
        trunk_pretrained: bool = True,
        trunk_trainable: bool = True,
        weights_dir: str | None = None,
        critic: dict | None = None,
        loss: dict | None = None,
        optim: dict | None = None,
        check_finite_every: int = 50,
        perf: dict | None = None,
        **generator_options: Any,
    ) -> None:
        super().__init__(check_finite_every, perf)
        self.save_hyperparameters(logger=False)
        if colorspace != "lab":
            raise ValueError(
                f"colorspace.name={colorspace!r}: model=chromagan predicts CIE ab from L and trains in "
                "Lab; use colorspace=lab"
            )
        if ab_norm not in AB_NORMS:
            raise ValueError(f"model.ab_norm={ab_norm!r}: allowed values are {', '.join(AB_NORMS)}")
        if width != 1.0 and trunk_pretrained:
            raise ValueError(
                f"model.width={width}: the ImageNet VGG-16 trunk needs width 1.0; "
                "set model.trunk_pretrained=false for other widths"
            )
        self.colorspace = get_colorspace(colorspace)
        self.resolution = parse_size(
            list(resolution) if isinstance(resolution, (list, tuple)) else resolution, "model.resolution"
        )
        self.ab_norm = ab_norm
        self.num_classes = num_classes
        self.loss_cfg = merge_options(DEFAULT_LOSS, loss, "model.loss")
        self.optim_cfg = merge_options(DEFAULT_OPTIM, optim, "model.optim")
        critic_cfg = merge_options(DEFAULT_CRITIC, critic, "model.critic")
        o = self.optim_cfg
        if o["order"] not in ("g_first", "d_first"):
            raise ValueError(f"model.optim.order={o['order']!r}: allowed values are g_first, d_first")
        if o["d_fake"] not in ("recompute", "reuse"):
            raise ValueError(f"model.optim.d_fake={o['d_fake']!r}: allowed values are recompute, reuse")
        if not isinstance(o["n_critic"], int) or o["n_critic"] < 1:
            raise ValueError(f"model.optim.n_critic={o['n_critic']!r}: expected a positive integer")

        self.G = ColorizationGenerator(
            resolution=self.resolution, num_classes=num_classes, width=width, **generator_options
        )
        self.D = PatchCritic(in_channels=3, **critic_cfg)
        if not trunk_trainable:
            self.G.trunk.requires_grad_(False)
        # Which of the teacher's 1000 ImageNet columns the class head matches (all, or TinyImageNet's 200).
        self.register_buffer(
            "class_columns",
            torch.arange(num_classes)
            if num_classes == IMAGENET_CLASSES
            else torch.full((num_classes,), -1, dtype=torch.long),
        )
        self.register_buffer("trunk_initialized", torch.tensor(False))
        self.val_metrics = ColorizationMetrics()
        self._teacher: Teacher | None = None

    # ------------------------------------------------------------------------------------------
    # Set-up: pretrained weights and the teacher (not needed for inference, so not in __init__).

    def prepare_fit(self, datamodule: ImageDataModule | None = None, resuming: bool = False) -> list[str]:
        """Load the ImageNet trunk (fresh runs), fix the teacher's columns, build the teacher.

        Called by the train script before anything is written (so a missing VGG file is a clean
        start-up error) and again, harmlessly, from ``setup`` (the base's). Returns notes for the run log.
        """
        notes = []
        weights_dir = self.hparams["weights_dir"]
        if self.hparams["trunk_pretrained"] and not bool(self.trunk_initialized) and not resuming:
            if weights_dir is None:
                raise ValueError("model.weights_dir is not set (paths.weights_dir); it must hold vgg16-397923af.pth")
            load_trunk_weights(self.G.trunk, weights_dir)
            self.trunk_initialized.fill_(True)
            notes.append("VGG-16 trunk initialised from ImageNet weights")
        if self.num_classes != IMAGENET_CLASSES and bool((self.class_columns < 0).any()):
            dataset = datamodule.dataset if isinstance(datamodule, ImageDataModule) else None
            index = dataset.imagenet_index if isinstance(dataset, TinyImageNetDataset) else None
            if index is None or len(index) != self.num_classes:
                have = "none" if index is None else f"{len(index)} classes"
                raise ValueError(
                    f"model.num_classes={self.num_classes} needs the data to map its classes to "
                    f"ImageNet's 1000 (data=tinyimagenet does; this data has {have}); "
                    f"use model.num_classes={IMAGENET_CLASSES} with other data"
                )
            self.class_columns.copy_(torch.as_tensor(index, dtype=torch.long))
        if self.loss_cfg["lambda_kl"] > 0 and self._teacher is None:
            columns = None if self.num_classes == IMAGENET_CLASSES else self.class_columns.cpu()
            if weights_dir is None:
                raise ValueError(
                    "model.weights_dir is not set (paths.weights_dir); the teacher needs vgg16-397923af.pth"
                )
            self._teacher = Teacher(weights_dir, columns, self.G.vgg_input_norm)
            notes.append(f"teacher: VGG-16, {self.num_classes} ImageNet columns")
        return notes

    # ------------------------------------------------------------------------------------------
    # Inference.

    @torch.no_grad()
    def colorize(self, lab: Tensor) -> Tensor:
        """Lab model-space images ``[N, 3, H, W]`` (only L is read; any size) -> the same L with predicted ab.

        L is resized (bilinear) to the training resolution, ab is predicted there with G in eval mode
        (BatchNorm running statistics), upsampled back and joined with the full-resolution L.
        """
        l_full = (lab[:, :1].float() + 1.0) * 0.5
        l_in = l_full
        if tuple(l_full.shape[-2:]) != tuple(self.resolution):
            l_in = F.interpolate(l_full, size=self.resolution, mode="bilinear", align_corners=False).clamp(0, 1)
        was_training = self.G.training
        self.G.eval()
        try:
            ab = self.G(l_in)[0]
        finally:
            self.G.train(was_training)
        return join_lab(l_full, ab, self.ab_norm)

    @torch.no_grad()
    def colorize_rgb(self, rgb: Tensor) -> tuple[Tensor, Tensor]:
        """RGB photos ``[N, 3, H, W]`` in [0, 1] (any size; only their lightness is used) -> ``(colorized,
        gray)`` RGB in [0, 1]: the prediction and the ab = 0 input it starts from. What
        ``scripts/colorize.py`` writes and the explorer shows."""
        lab = self.colorspace.encode(rgb.to(self.device))
        return self.colorspace.decode(self.colorize(lab)), self.colorspace.decode(self.gray_baseline(lab))

    def gray_baseline(self, lab: Tensor) -> Tensor:
        """The trivial colorization ab = 0 (gray) for ``lab`` images, in Lab model space."""
        l_in = (lab[:, :1].float() + 1.0) * 0.5
        zero = ab_to_unit(torch.zeros_like(l_in).expand(-1, 2, -1, -1), self.ab_norm)
        return join_lab(l_in, zero, self.ab_norm)

    # ------------------------------------------------------------------------------------------
    # Training.

    def configure_optimizers(self):
        o = self.optim_cfg
        g_params = [p for p in self.G.parameters() if p.requires_grad]
        opt_g = torch.optim.Adam(g_params, lr=o["g_lr"], betas=tuple(o["betas"]), eps=o["eps"])
        opt_d = torch.optim.Adam(self.D.parameters(), lr=o["d_lr"], betas=tuple(o["betas"]), eps=o["eps"])
        return [opt_g, opt_d]

    def phase_intervals(self) -> dict[str, int]:
        """``teacher`` and ``D`` every iteration, ``G`` every ``n_critic``; in the order ``optim.order`` runs them."""
        if self.optim_cfg["order"] == "d_first":
            return {"teacher": 1, "D": 1, "G": self.optim_cfg["n_critic"]}
        return {"teacher": 1, "G": self.optim_cfg["n_critic"], "D": 1}

    def train_phases(self, batch: dict) -> dict[str, Tensor]:
        """The teacher's logits, then the G step (when due) and the critic step in ``optim.order``."""
        optimizers = self.optimizers()
        assert isinstance(optimizers, list)  # configure_optimizers returns two: G's and D's
        opt_g, opt_d = optimizers
        l_in, ab_real = split_lab(self.to_memory_format(batch["image"]), self.ab_norm)
        log: dict[str, Tensor] = {}
        teacher_logits = self.teacher_step(l_in)
        ab_fake = None
        if self.optim_cfg["order"] == "d_first":
            self.critic_step(opt_d, l_in, ab_real, None, log)
        if self.due("G"):
            ab_fake = self.generator_step(opt_g, l_in, ab_real, teacher_logits, log)
        if self.optim_cfg["order"] == "g_first":
            self.critic_step(opt_d, l_in, ab_real, ab_fake, log)
        return log

    def teacher_step(self, l_in: Tensor) -> Tensor | None:
        """teacher: the frozen VGG-16's class logits for ``l_in`` (None without the KL term)."""
        with self.phase("teacher"):
            return self._teacher(l_in) if self._teacher is not None else None

    def _critic(self, l_in: Tensor, ab: Tensor) -> Tensor:
        return self.compiled(self.D)(torch.cat([l_in, ab], dim=1))

    def generator_step(
        self, opt, l_in: Tensor, ab_real: Tensor, teacher_logits: Tensor | None, log: dict[str, Tensor]
    ) -> Tensor:
        """G: colour L2 + KL to the teacher + adversarial term, one G step; returns the (detached) fake ab."""
        cfg = self.loss_cfg
        with self.toggled_optimizer(opt), self.phase("G"):
            ab_fake, logits = self.compiled(self.G)(l_in)
            loss_color = losses.color_l2(ab_fake, ab_real)
            total = cfg["lambda_color"] * loss_color
            log["Loss/color"] = loss_color.detach()
            if cfg["lambda_adv"] > 0:
                loss_adv = losses.generator_adversarial(self._critic(l_in, ab_fake))
                total = total + cfg["lambda_adv"] * loss_adv
                log["Loss/adv"] = loss_adv.detach()
            if teacher_logits is not None:
                loss_kl = losses.class_kl(logits, teacher_logits)
                total = total + cfg["lambda_kl"] * loss_kl
                log["Loss/kl"] = loss_kl.detach()
            self.step(opt, total)
            log["Loss/G"] = total.detach()
        return ab_fake.detach()

    def critic_step(self, opt, l_in: Tensor, ab_real: Tensor, ab_fake: Tensor | None, log: dict[str, Tensor]) -> None:
        """D: the Wasserstein loss plus ``lambda_gp`` x the gradient penalty, one critic step."""
        cfg = self.loss_cfg
        with self.toggled_optimizer(opt), self.phase("D"):
            if ab_fake is None or self.optim_cfg["d_fake"] == "recompute":
                with torch.no_grad():
                    ab_fake = self.compiled(self.G)(l_in)[0]
            real_scores = self._critic(l_in, ab_real)
            fake_scores = self._critic(l_in, ab_fake)
            loss_w = losses.critic_wasserstein(real_scores, fake_scores)
            total = loss_w
            if cfg["lambda_gp"] > 0:  # fp32, one alpha per sample drawn for the global batch
                alpha = self.draw(torch.rand, l_in.shape[0], 1, 1, 1)
                gp = losses.gradient_penalty(self.D, l_in, ab_real, ab_fake, alpha)
                total = total + cfg["lambda_gp"] * gp
                log["Loss/gp"] = gp.detach()
            self.step(opt, total)
            log["Loss/D"] = total.detach()
            log["D/real"] = real_scores.detach().float().mean()
            log["D/fake"] = fake_scores.detach().float().mean()
            log["D/wasserstein"] = log["D/real"] - log["D/fake"]

    # ------------------------------------------------------------------------------------------
    # Validation: PSNR / SSIM against the gray baseline.

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        lab = batch["image"]
        decode = self.colorspace.decode
        target = decode(lab)
        pred = decode(self.colorize(lab))
        gray = decode(self.gray_baseline(lab))
        self.val_metrics.update(pred, target, gray)

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        metrics = {f"val/{k}": v for k, v in values.items()}
        metrics["step"] = torch.tensor(float(self.cur_nimg))
        self.log_dict(metrics, on_step=False, on_epoch=True)
