"""StyleGAN2 LightningModule: four-phase manual optimization with lazy regularization.

Phases per iteration (in the order of stylegan2-ada-pytorch, training/training_loop.py):
``Gmain`` (non-saturating loss), ``Greg`` (path length, every ``pl_interval`` iterations, gain =
interval), ``Dmain`` (logistic loss), ``Dreg`` (R1, every ``r1_interval`` iterations, gain = interval).
Each phase draws its own z and steps its optimizer; each Adam is built with the lazy-regularization
scaling ``c = k/(k+1)``. The module counts images seen (``cur_nimg``) and iterations itself,
because Lightning's ``global_step`` advances once per optimizer step.

Multi-process training, counters and exact resume come from :class:`src.modules.base.GANModule`.
Latents, mixing draws, labels and path-length noise are drawn for the global batch (each rank takes
its rows) and ``pl_mean`` is updated with the mean path length over all ranks, so N processes x
batch B train like one process with batch N x B (with noise inputs off: per-layer noise is drawn
per rank).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from src.datamodules.colorspaces import get_colorspace
from src.datamodules.labels import draw_labels
from src.modules.base import GANModule, merge_options
from src.modules.stylegan2 import losses
from src.modules.stylegan2.discriminator import Discriminator
from src.modules.stylegan2.generator import Generator
from src.utils.resolution import parse_resolution

DEFAULT_LOSS = dict(r1_gamma=10.0, r1_interval=16, pl_weight=2.0, pl_decay=0.01, pl_batch_shrink=2,
                    pl_interval=4, style_mixing_prob=0.9)
DEFAULT_OPTIM = dict(g_lr=0.0025, d_lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
DEFAULT_EMA = dict(kimg=10.0, rampup=0.05)


class StyleGAN2(GANModule):
    """StyleGAN2 (config F generator with skip outputs, ResNet D) for any channel count and aspect."""

    default_loss = DEFAULT_LOSS  # subclasses (SEGAN) extend the allowed model.loss keys
    nonfinite_advice = "Lower the learning rate, raise model.loss.r1_gamma, or resume from an earlier checkpoint."

    def __init__(self, img_channels: int = 3, resolution: Any = 64, colorspace: str = "rgb",
                 num_classes: int = 0, z_dim: int = 512, w_dim: int = 512, map_depth: int = 2,
                 map_lr_multiplier: float = 0.01, w_avg_beta: float = 0.995, channel_base: int = 16384,
                 channel_max: int = 512, use_noise: bool = True, mbstd_group: int = 4, mbstd_channels: int = 1,
                 conv_clamp: float | None = None, loss: dict | None = None, optim: dict | None = None,
                 ema: dict | None = None, check_finite_every: int = 50, perf: dict | None = None) -> None:
        super().__init__(check_finite_every, perf)
        self.save_hyperparameters(logger=False)  # the train script logs the whole composed config
        self.resolution = parse_resolution(resolution, "model.resolution")
        cs = get_colorspace(colorspace)
        if cs.channels != img_channels:
            raise ValueError(f"model.img_channels={img_channels} does not match colorspace.name={colorspace!r} "
                             f"({cs.channels} channels)")
        self.colorspace = cs
        self.loss_cfg = merge_options(self.default_loss, loss, "model.loss")
        self.optim_cfg = merge_options(DEFAULT_OPTIM, optim, "model.optim")
        self.ema_cfg = merge_options(DEFAULT_EMA, ema, "model.ema")
        self.num_classes = num_classes
        self.G = self.make_generator(z_dim, w_dim, num_classes, self.resolution, img_channels, map_depth,
                                     map_lr_multiplier, w_avg_beta, channel_base, channel_max, use_noise,
                                     conv_clamp)
        self.D = self.make_discriminator(self.resolution, img_channels, num_classes, channel_base, channel_max,
                                         mbstd_group, mbstd_channels, conv_clamp=conv_clamp)
        # G has no dropout or batch norm, so train/eval mode is irrelevant; G_ema is never trained.
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self.register_buffer("pl_mean", torch.zeros([]))
        # The data's class frequencies for generated labels (set before fit); all zeros = not known.
        self.register_buffer("label_distribution", torch.zeros([num_classes]))
        self.register_load_state_dict_pre_hook(_default_label_distribution)

    # Network factories (hooks: SEGAN builds its generator and a D with its own channel_max).

    def make_generator(self, *args, **kwargs) -> Generator:
        return Generator(*args, **kwargs)

    def make_discriminator(self, *args, **kwargs) -> Discriminator:
        return Discriminator(*args, **kwargs)

    def extra_g_loss(self, log: dict[str, Tensor]) -> Tensor | None:
        """An extra term added to the G loss at every G step (``Gmain``); None = nothing (StyleGAN2)."""
        return None

    # ------------------------------------------------------------------------------------------
    # Inference helpers (used by callbacks and scripts).

    def labels_to_onehot(self, labels: Tensor | None) -> Tensor | None:
        if self.num_classes == 0 or labels is None:
            return None
        return F.one_hot(labels.long(), self.num_classes).to(torch.float32)

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None, psi: float = 1.0, cutoff: int | None = None,
               noise_mode: str = "const", ema: bool = True) -> Tensor:
        """Images in the model's color space from ``G_ema`` (or ``G``), no grad, fp32."""
        g = self.G_ema if ema else self.G
        return g(z, self.labels_to_onehot(labels), psi=psi, cutoff=cutoff, noise_mode=noise_mode).float()

    # ------------------------------------------------------------------------------------------
    # Training.

    def configure_optimizers(self):
        o = self.optim_cfg
        g_lr, g_betas = losses.lazy_adam_params(o["g_lr"], o["betas"],
                                                self.loss_cfg["pl_interval"] if self.loss_cfg["pl_weight"] > 0 else None)
        d_lr, d_betas = losses.lazy_adam_params(o["d_lr"], o["betas"],
                                                self.loss_cfg["r1_interval"] if self.loss_cfg["r1_gamma"] > 0 else None)
        opt_g = torch.optim.Adam(self.G.parameters(), lr=g_lr, betas=g_betas, eps=o["eps"])
        opt_d = torch.optim.Adam(self.D.parameters(), lr=d_lr, betas=d_betas, eps=o["eps"])
        return [opt_g, opt_d]

    def _mapping(self, z: Tensor, c: Tensor | None, update_w_avg: bool = False) -> Tensor:
        """Mapping with style mixing (prob ``style_mixing_prob``, cutoff ~ U[1, num_ws-1]), no host sync."""
        ws = self.G.mapping(z, c, update_w_avg=update_w_avg)
        prob = self.loss_cfg["style_mixing_prob"]
        if prob > 0:
            num_ws = ws.shape[1]
            cutoff = torch.randint(1, num_ws, (), device=ws.device)
            cutoff = torch.where(torch.rand((), device=ws.device) < prob, cutoff, torch.full_like(cutoff, num_ws))
            ws2 = self.G.mapping(self.draw(torch.randn, z.shape[0], z.shape[1], device=z.device), c)
            mix = (torch.arange(num_ws, device=ws.device) >= cutoff).reshape(1, -1, 1)
            ws = torch.where(mix, ws2, ws)
        return ws

    def _random_labels(self, n: int) -> Tensor | None:
        """One-hot labels of ``n`` generated images (this rank's rows of one global draw), None if unconditional.

        Drawn from :attr:`label_distribution`, the training data's class frequencies, as NVIDIA's
        stylegan2-ada-pytorch training/training_loop.py draws ``gen_c`` from ``training_set.get_label``;
        uniform over the classes only while no distribution is known (all zeros).
        """
        if self.num_classes == 0:
            return None
        distribution = self.label_distribution
        labels = self.draw(lambda m, device: draw_labels(distribution, self.num_classes, m, device=device), n)
        return F.one_hot(labels, self.num_classes).float()

    def set_label_distribution(self, frequencies: Tensor | None) -> None:
        """Store the data's class frequencies ``[num_classes]`` (None: leave as is); checkpoints carry them."""
        if frequencies is None or self.num_classes == 0:
            return
        frequencies = torch.as_tensor(frequencies, dtype=torch.float32).flatten()
        if frequencies.numel() != self.num_classes:
            raise ValueError(f"the data has {frequencies.numel()} classes but model.num_classes={self.num_classes}")
        self.label_distribution.copy_(frequencies / frequencies.sum())

    def on_fit_start(self) -> None:
        super().on_fit_start()
        datamodule = getattr(self.trainer, "datamodule", None)
        self.set_label_distribution(getattr(datamodule, "label_distribution", None))

    def training_step(self, batch: dict, batch_idx: int) -> None:
        cfg = self.loss_cfg
        self.begin_iteration()
        opt_g, opt_d = self.optimizers()
        real = self.to_memory_format(batch["image"])
        real_c = self.labels_to_onehot(batch.get("label"))
        n = real.shape[0]
        it = self.iteration
        log: dict[str, Tensor] = {}

        # Gmain
        synthesis, D = self.compiled(self.G.synthesis), self.compiled(self.D)
        with self.toggled_optimizer(opt_g):
            with self.phase("Gmain"):
                c = self._random_labels(n)
                fake = synthesis(self._mapping(self.draw(torch.randn, n, self.G.z_dim), c))
                fake_logits = D(fake, c)
                loss_g = losses.g_nonsaturating(fake_logits).mean()
                extra = self.extra_g_loss(log)
                self.step(opt_g, loss_g if extra is None else loss_g + extra)
                log["Loss/G"] = loss_g.detach()

            # Greg: path length on batch // shrink samples, every pl_interval iterations.
            if cfg["pl_weight"] > 0 and it % cfg["pl_interval"] == 0:
                with self.phase("Greg"), self.fp32():  # double backward in fp32 (fp16 R1/PL diverge in mmagic)
                    m = max(n // cfg["pl_batch_shrink"], 1)
                    c = self._random_labels(m)
                    ws = self._mapping(self.draw(torch.randn, m, self.G.z_dim), c)
                    img = self.G.synthesis(ws)
                    if self._world == 1:
                        noise = losses.path_length_noise(img)
                    else:
                        noise = self.draw(torch.randn, m, *img.shape[1:]) / math.sqrt(img.shape[2] * img.shape[3])
                    lengths = losses.path_lengths(img, ws, noise)
                    penalty, new_mean = self._path_length_penalty(lengths)
                    self.pl_mean.copy_(new_mean.detach())
                    loss_pl = penalty.mean() * cfg["pl_weight"]
                    self.step(opt_g, loss_pl * cfg["pl_interval"])
                    log["Loss/pl"] = loss_pl.detach()
                    log["pl_length"] = lengths.detach().mean()

        # Dmain
        with self.toggled_optimizer(opt_d):
            with self.phase("Dmain"):
                c = self._random_labels(n)
                with torch.no_grad():
                    with self.fp32():  # the mapping updates the fp32 w_avg from its output
                        ws = self._mapping(self.draw(torch.randn, n, self.G.z_dim), c, update_w_avg=True)
                    fake = synthesis(ws)
                fake_logits = D(fake, c)
                real_logits = D(real, real_c)
                loss_d = losses.d_logistic(real_logits, fake_logits).mean()
                self.step(opt_d, loss_d)
                log["Loss/D"] = loss_d.detach()
                log["D/real"] = real_logits.detach().mean()
                log["D/fake"] = fake_logits.detach().mean()

            # Dreg: R1 on reals every r1_interval iterations.
            if cfg["r1_gamma"] > 0 and it % cfg["r1_interval"] == 0:
                with self.phase("Dreg"), self.fp32():  # double backward in fp32 (fp16 R1/PL diverge in mmagic)
                    real_r = real.detach().float().requires_grad_(True)
                    logits = self.D(real_r, real_c)
                    loss_r1 = losses.r1_penalty(logits, real_r).mean() * (cfg["r1_gamma"] / 2)
                    self.step(opt_d, loss_r1 * cfg["r1_interval"])
                log["Loss/r1"] = loss_r1.detach()

        # G_ema, counters.
        self.update_ema(n * self._world)
        self.advance(n)
        log["pl_mean"] = self.pl_mean.detach()
        log["progress/kimg"] = self.kimg
        # Loggers' x-axis is images seen (kimg * 1000), not Lightning's optimizer-step count.
        log["step"] = float(self.cur_nimg)
        self.log_dict(log, on_step=True, on_epoch=False)
        self.log("kimg", self.kimg, on_step=True, on_epoch=False, prog_bar=True, logger=False)

    def phase_intervals(self) -> dict[str, int]:
        """How often each phase runs (the lazy intervals), for amortized per-phase timings."""
        return {"Gmain": 1, "Dmain": 1, "Greg": self.loss_cfg["pl_interval"], "Dreg": self.loss_cfg["r1_interval"]}

    def _path_length_penalty(self, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``losses.path_length_penalty`` with the mean path length taken over all ranks.

        The global mean goes through a differentiable all_reduce, so its gradient (the penalty
        uses the updated running mean) is the one a single process with the whole batch gets.
        """
        decay = self.loss_cfg["pl_decay"]
        if self._world == 1:
            return losses.path_length_penalty(lengths, self.pl_mean, decay)
        from torch.distributed.nn.functional import all_reduce

        mean = all_reduce(lengths.sum()) / (lengths.shape[0] * self._world)
        new_mean = self.pl_mean.lerp(mean, decay)
        return (lengths - new_mean).square(), new_mean

    @torch.no_grad()
    def update_ema(self, global_batch: int) -> None:
        beta = losses.ema_beta(global_batch, self.ema_cfg["kimg"], self.cur_nimg, self.ema_cfg["rampup"])
        ema_params = list(self.G_ema.parameters())
        params = [p.detach() for p in self.G.parameters()]
        # p_ema <- lerp(p, p_ema, beta) == p_ema + (1 - beta) * (p - p_ema)
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)


def _default_label_distribution(module, state_dict, prefix, *args) -> None:
    """Load pre-hook: a checkpoint from before ``label_distribution`` existed loads with it unknown (zeros)."""
    key = prefix + "label_distribution"
    if key not in state_dict:
        state_dict[key] = torch.zeros_like(module.label_distribution)
