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
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from src.augment.pipeline import DEFAULTS as AUGMENT_DEFAULTS
from src.augment.pipeline import Augmentation
from src.colorspaces import get_colorspace
from src.datamodules.image_datamodule import ImageDataModule
from src.modules.base import GANModule, merge_options
from src.modules.engine.accumulation import Rounds
from src.modules.stylegan2 import losses
from src.modules.stylegan2.discriminator import Discriminator
from src.modules.stylegan2.generator import Generator
from src.nn.style_generator import StyleGenerator
from src.utils.resolution import base_shape, parse_resolution
from src.utils.validation import check_batch_gpu_value

DEFAULT_LOSS = dict(
    r1_gamma=10.0, r1_interval=16, pl_weight=2.0, pl_decay=0.01, pl_batch_shrink=2, pl_interval=4, style_mixing_prob=0.9
)
DEFAULT_OPTIM = dict(g_lr=0.0025, d_lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
DEFAULT_EMA = dict(kimg=10.0, rampup=0.05)


class StyleGAN2(GANModule):
    """StyleGAN2 (config F generator with skip outputs, ResNet D) for any colour space and aspect.

    The networks see the colour space's channels (``colorspace.channels``). One iteration
    (:meth:`train_phases`) runs the phases :meth:`g_main`, :meth:`g_reg`, :meth:`d_main`,
    :meth:`d_reg`, then :meth:`update_ema`. ``img_channels`` is accepted for configs and checkpoints
    written before the channels followed the colour space: it must agree and is not recorded.

    For small data sets: ``augment`` (``model.augment``: ``mode`` none|ada|fixed|diffaugment,
    ``pipeline``, ``p``, ``target``, ``interval``, ``kimg``, ``policy``; :mod:`src.augment`) augments
    every image D sees, and ``freeze_d`` freezes D's first layers (Freeze-D, as NVIDIA's ``--freezed``).

    ``batch_gpu`` (``data.batch_gpu``): rows per forward/backward pass; each phase accumulates the
    per-device batch in ``batch / batch_gpu`` rounds and steps once, with the whole batch's result
    (:meth:`GANModule.accumulate`; Greg in two passes, :meth:`g_reg`). Not recorded in checkpoints'
    architecture: it changes memory, not the model.

    Config rules (:class:`src.utils.family_rules.FamilyRules`): sizes ``(b_h * 2**k, b_w * 2**k)``
    (``doubles_from_base``); whole minibatch-stddev groups per device (:meth:`check_batch`) and per
    accumulation round, and path length's shrunk batch split evenly over the rounds (:meth:`check_batch_gpu`).
    """

    # StyleGAN2's Generator; a family built on this module (SEGAN, StyleGAN3) narrows the type
    G: StyleGenerator
    G_ema: StyleGenerator  # never trained: the moving average of G's weights
    D: Discriminator
    pl_mean: Tensor  # buffer: the running mean path length
    label_distribution: Tensor  # buffer: the data's class frequencies (all zeros = not known)

    default_loss: dict[str, Any] = DEFAULT_LOSS  # subclasses (SEGAN) extend the allowed model.loss keys
    nonfinite_advice = "Lower the learning rate, raise model.loss.r1_gamma, or resume from an earlier checkpoint."
    doubles_from_base = True  # the synthesis grows from a b_h x b_w constant (src/utils/resolution.py)
    accumulates_gradients = True  # every phase runs in rounds of data.batch_gpu rows
    training_keys = GANModule.training_keys | {"mbstd_group", "w_avg_beta"}  # a fine-tune keeps the config's

    @classmethod
    def check_batch(cls, model: Mapping[str, Any], batch: int) -> None:
        """Minibatch stddev (when ``model.mbstd_channels``) needs the per-device batch to hold whole
        groups of ``model.mbstd_group``, and at least two images."""
        group = model.get("mbstd_group")
        if group is not None and model.get("mbstd_channels", 1):
            need = max(2, group)
            if batch < need:
                raise ValueError(
                    f"data.batch_size={batch} (per device) is smaller than max(2, model.mbstd_group="
                    f"{group}); use data.batch_size >= {need} or lower model.mbstd_group"
                )
            if batch % group:
                raise ValueError(f"data.batch_size={batch} must be a multiple of model.mbstd_group={group}")

    @classmethod
    def check_batch_gpu(cls, model: Mapping[str, Any], batch: int, batch_gpu: int) -> None:
        """Each accumulation round holds whole minibatch-stddev groups, and path length's
        ``batch // model.loss.pl_batch_shrink`` rows split evenly over the rounds."""
        b = batch_gpu
        group = model.get("mbstd_group")
        if group is not None and model.get("mbstd_channels", 1):
            if b < max(2, group):
                raise ValueError(
                    f"data.batch_gpu={b} is smaller than max(2, model.mbstd_group={group}): each pass needs whole "
                    "minibatch-stddev groups; raise data.batch_gpu or lower model.mbstd_group"
                )
            if b % group:
                raise ValueError(f"data.batch_gpu={b} must be a multiple of model.mbstd_group={group}")
        loss = model.get("loss") or {}
        shrink = loss.get("pl_batch_shrink", 1)
        if (loss.get("pl_weight", 0) or 0) > 0:
            rows, rounds = max(batch // shrink, 1), batch // b
            if rows % rounds:
                raise ValueError(
                    f"data.batch_gpu={b}: path length runs on data.batch_size // model.loss.pl_batch_shrink = "
                    f"{rows} rows, which {rounds} passes cannot split evenly; use a data.batch_gpu that is a "
                    f"multiple of model.loss.pl_batch_shrink={shrink}"
                )

    def __init__(
        self,
        resolution: Any = 64,
        colorspace: str = "rgb",
        num_classes: int = 0,
        z_dim: int = 512,
        w_dim: int = 512,
        map_depth: int = 2,
        map_lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
        channel_base: int = 16384,
        channel_max: int = 512,
        use_noise: bool = True,
        mbstd_group: int = 4,
        mbstd_channels: int = 1,
        conv_clamp: float | None = None,
        num_fp16_res: int | None = None,
        loss: dict | None = None,
        optim: dict | None = None,
        ema: dict | None = None,
        augment: dict | None = None,
        freeze_d: int = 0,
        check_finite_every: int = 50,
        perf: dict | None = None,
        img_channels: int | None = None,
        batch_gpu: int | None = None,
    ) -> None:
        super().__init__(check_finite_every, perf)
        self.batch_gpu = check_batch_gpu_value(batch_gpu)
        # the train script logs the whole composed config; img_channels follows the colour space
        self.save_hyperparameters(ignore=["img_channels"], logger=False)
        self.resolution = parse_resolution(resolution, "model.resolution")
        self.colorspace = _colorspace_with(colorspace, img_channels)
        self.loss_cfg = merge_options(self.default_loss, loss, "model.loss")
        self.optim_cfg = merge_options(DEFAULT_OPTIM, optim, "model.optim")
        self.ema_cfg = merge_options(DEFAULT_EMA, ema, "model.ema")
        self.num_classes = num_classes
        if num_fp16_res is None:  # NVIDIA's 4, or every resolution of a smaller model (src/nn/precision.py)
            num_fp16_res = min(4, base_shape(*self.resolution)[2] + 1)
        # what G and D share; each then takes its own
        shared = dict(
            resolution=self.resolution,
            img_channels=self.colorspace.channels,
            num_classes=num_classes,
            channel_base=channel_base,
            channel_max=channel_max,
            conv_clamp=conv_clamp,
            num_fp16_res=num_fp16_res,
        )
        self.G = self.make_generator(
            **shared,
            z_dim=z_dim,
            w_dim=w_dim,
            map_depth=map_depth,
            map_lr_multiplier=map_lr_multiplier,
            w_avg_beta=w_avg_beta,
            use_noise=use_noise,
        )
        self.D = self.make_discriminator(**shared, mbstd_group=mbstd_group, mbstd_channels=mbstd_channels)
        # Small data (docs/augmentation.md): what D sees is augmented; Freeze-D keeps D's first layers.
        self.augment_cfg = merge_options(AUGMENT_DEFAULTS, augment, "model.augment")
        self.augmentation = Augmentation(self.colorspace, **self.augment_cfg)
        self._frozen_d = {id(p) for p in self.D.freeze(freeze_d)}
        # G has no dropout or batch norm, so train/eval mode is irrelevant; G_ema is never trained.
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self.register_buffer("pl_mean", torch.zeros([]))
        # The data's class frequencies for generated labels (set before fit); all zeros = not known.
        self.register_buffer("label_distribution", torch.zeros([num_classes]))
        self.register_load_state_dict_pre_hook(_default_label_distribution)
        self.register_load_state_dict_pre_hook(_augmentation_state)

    # Networks (SEGAN builds its own generator and a D with its own channel_max).

    def make_generator(self, **kwargs) -> StyleGenerator:
        """G from the module's arguments (keyword arguments of :class:`Generator`)."""
        return Generator(**kwargs)

    def make_discriminator(self, **kwargs) -> Discriminator:
        """D from the module's arguments (keyword arguments of :class:`Discriminator`)."""
        return Discriminator(**kwargs)

    # ------------------------------------------------------------------------------------------
    # Generation (used by callbacks, metrics and tools).

    @property
    def z_dim(self) -> int:
        """The generator's latent size."""
        return self.G.z_dim

    @torch.no_grad()
    def sample(
        self,
        z: Tensor,
        labels: Tensor | None = None,
        psi: float = 1.0,
        cutoff: int | None = None,
        noise_mode: str = "const",
        ema: bool = True,
        **synthesis_options: Any,
    ) -> Tensor:
        """Images in the model's color space from ``G_ema`` (or ``G``), no grad, fp32.

        ``synthesis_options`` go to the generator's synthesis (SEGAN: ``edits``, ``coords``, ``stats``).
        """
        g = self.G_ema if ema else self.G
        onehot = self.labels_to_onehot(labels)
        return g(z, onehot, psi=psi, cutoff=cutoff, noise_mode=noise_mode, **synthesis_options).float()

    # ------------------------------------------------------------------------------------------
    # Labels: the data's class frequencies, carried in the checkpoint.

    def label_frequencies(self) -> Tensor:
        """The ``label_distribution`` buffer (all zeros until :meth:`set_label_distribution`)."""
        return self.label_distribution

    def set_label_distribution(self, frequencies: Tensor | None) -> None:
        """Store the data's class frequencies ``[num_classes]`` (None: leave as is); checkpoints carry them."""
        if frequencies is None or self.num_classes == 0:
            return
        frequencies = torch.as_tensor(frequencies, dtype=torch.float32).flatten()
        if frequencies.numel() != self.num_classes:
            raise ValueError(f"the data has {frequencies.numel()} classes but model.num_classes={self.num_classes}")
        self.label_distribution.copy_(frequencies / frequencies.sum())

    def prepare_fit(self, datamodule: ImageDataModule | None = None, resuming: bool = False) -> list[str]:
        """Take the data's class frequencies (a resumed run then restores its checkpoint's)."""
        if datamodule is not None:
            self.set_label_distribution(datamodule.label_distribution)
        return []

    # ------------------------------------------------------------------------------------------
    # Training.

    def configure_optimizers(self):
        o = self.optim_cfg
        g_lr, g_betas = losses.lazy_adam_params(
            o["g_lr"], o["betas"], self.loss_cfg["pl_interval"] if self.loss_cfg["pl_weight"] > 0 else None
        )
        d_lr, d_betas = losses.lazy_adam_params(
            o["d_lr"], o["betas"], self.loss_cfg["r1_interval"] if self.loss_cfg["r1_gamma"] > 0 else None
        )
        opt_g = torch.optim.Adam(self.G.parameters(), lr=g_lr, betas=g_betas, eps=o["eps"])
        trained_d = [p for p in self.D.parameters() if id(p) not in self._frozen_d]  # Freeze-D leaves some out
        opt_d = torch.optim.Adam(trained_d, lr=d_lr, betas=d_betas, eps=o["eps"])
        return [opt_g, opt_d]

    def phase_intervals(self) -> dict[str, int]:
        """Gmain and Dmain every iteration; Greg and Dreg every ``pl_interval`` / ``r1_interval`` (lazy)."""
        return {"Gmain": 1, "Greg": self.loss_cfg["pl_interval"], "Dmain": 1, "Dreg": self.loss_cfg["r1_interval"]}

    def train_phases(self, batch: dict) -> dict[str, Tensor]:
        """Gmain, Greg (if due and ``pl_weight > 0``), Dmain, Dreg (if due and ``r1_gamma > 0``), G_ema."""
        cfg = self.loss_cfg
        optimizers = self.optimizers()
        assert isinstance(optimizers, list)  # configure_optimizers returns two: G's and D's
        opt_g, opt_d = optimizers
        real = self.to_memory_format(batch["image"])
        real_c = self.labels_to_onehot(batch.get("label"))
        n = real.shape[0]
        log: dict[str, Tensor] = {}
        with self.toggled_optimizer(opt_g):
            self.g_main(opt_g, n, log)
            if cfg["pl_weight"] > 0 and self.due("Greg"):
                self.g_reg(opt_g, n, log)
        with self.toggled_optimizer(opt_d):
            self.d_main(opt_d, real, real_c, log)
            if cfg["r1_gamma"] > 0 and self.due("Dreg"):
                self.d_reg(opt_d, real, real_c, log)
        self.update_ema(n * self.world_size)
        self.adjust_augmentation(n * self.world_size, log)
        log["pl_mean"] = self.pl_mean.detach()
        return log

    def g_main(self, opt, n: int, log: dict[str, Tensor]) -> None:
        """Gmain: ``n`` fakes through D, :meth:`g_main_loss`, one G step (in rounds of ``batch_gpu``)."""

        def round_loss(k: int, b: int, round_log: dict[str, Tensor]) -> Tensor:
            c = self.random_labels(b)
            ws = self._mapping(self.draw(torch.randn, b, self.G.z_dim), c)
            fake_logits = self.compiled(self.D)(self.augment(self.synthesize(ws)), c)
            return self.g_main_loss(fake_logits, round_log)

        with self.phase("Gmain"):
            self.accumulate(opt, round_loss, n, self.rounds(n), log)

    def g_main_loss(self, fake_logits: Tensor, log: dict[str, Tensor]) -> Tensor:
        """Gmain's loss: the non-saturating loss ``softplus(-D(G(z)))`` (logged as ``Loss/G``)."""
        loss = losses.g_nonsaturating(fake_logits).mean()
        log["Loss/G"] = loss.detach()
        return loss

    def g_reg(self, opt, n: int, log: dict[str, Tensor]) -> None:
        """Greg: path length on ``n // pl_batch_shrink`` fakes, gradient times ``pl_interval``.

        Double backward in fp32 (fp16 R1/PL diverge in mmagic); the noise ``y`` is drawn for the
        global batch like every other draw. The penalty couples the samples through the running
        mean it updates, so with accumulation rounds it takes two passes: the first computes every
        round's path lengths (no double-backward graph) for the batch's new mean, the second (the
        same draws, the same RNG state per round) backpropagates
        :func:`losses.path_length_surrogate`, whose gradient is the whole batch's.
        """
        cfg = self.loss_cfg
        m = max(n // cfg["pl_batch_shrink"], 1)
        rounds = self.rounds(n)
        with self.phase("Greg"), self.fp32():
            if rounds == 1:
                lengths = self._path_lengths(m)
                penalty, new_mean = self._path_length_penalty(lengths)
                self.pl_mean.copy_(new_mean.detach())
                loss_pl = penalty.mean() * cfg["pl_weight"]
                self.step(opt, loss_pl * cfg["pl_interval"])
            else:
                lengths, loss_pl = self._path_length_rounds(opt, m, rounds)
            log["Loss/pl"] = loss_pl.detach()
            log["pl_length"] = lengths.detach().mean()

    def _path_lengths(
        self, m: int, create_graph: bool = True, save_rng: list | None = None, load_rng: dict | None = None
    ) -> Tensor:
        """Path lengths of ``m`` fresh fakes (this rank's rows, or this round's). ``save_rng`` receives
        the RNG state the synthesis (its noise inputs) starts from; ``load_rng`` restores such a state."""
        c = self.random_labels(m)
        ws = self._mapping(self.draw(torch.randn, m, self.G.z_dim), c)
        if save_rng is not None:
            save_rng.append(_rng_state(self.device))
        if load_rng is not None:
            _set_rng_state(load_rng, self.device)
        img = self.synthesize(ws, compiled=False)
        noise = losses.path_length_noise(img, draw=lambda *shape: self.draw(torch.randn, *shape))
        return losses.path_lengths(img, ws, noise, create_graph=create_graph)

    def _path_length_rounds(self, opt, m: int, rounds: int) -> tuple[Tensor, Tensor]:
        """Greg over ``rounds`` accumulation rounds (see :meth:`g_reg`); returns the lengths and the logged penalty."""
        cfg = self.loss_cfg
        state = Rounds(rounds)
        rng_before: list[dict] = []
        parts: list[Tensor] = []
        with self.in_rounds(state):
            for k in range(rounds):
                state.begin(k)
                parts.append(self._path_lengths(m // rounds, create_graph=False, save_rng=rng_before).detach())
        rng_after = _rng_state(self.device)
        lengths = torch.cat(parts)
        total, count = lengths.sum(), lengths.shape[0] * self.world_size
        if self.world_size > 1:
            torch.distributed.all_reduce(total)
        new_mean = self.pl_mean.lerp(total / count, cfg["pl_decay"])
        excess = total - count * new_mean  # sum over the whole batch of (len - a')
        self.pl_mean.copy_(new_mean)
        scale = cfg["pl_weight"] * cfg["pl_interval"]

        def round_loss(k: int, b: int, round_log: dict[str, Tensor]) -> Tensor:
            lengths_k = self._path_lengths(b, load_rng=rng_before[k])  # the first pass's noise inputs
            surrogate = losses.path_length_surrogate(lengths_k, new_mean, excess, count, cfg["pl_decay"])
            return surrogate.mean() * scale

        self.accumulate(opt, round_loss, m, rounds, {}, replay=state)
        _set_rng_state(rng_after, self.device)
        return lengths, (lengths - new_mean).square().mean() * cfg["pl_weight"]

    def d_main(self, opt, real: Tensor, real_c: Tensor | None, log: dict[str, Tensor]) -> None:
        """Dmain: the logistic loss on fresh fakes (w_avg tracked here) and the reals, one D step.

        The fakes' latents are mapped for the whole batch at once (no gradient), so ``w_avg`` moves
        once per iteration whatever ``batch_gpu`` is; the rounds then synthesize and score their rows.
        """
        n = real.shape[0]
        rounds = self.rounds(n)
        D = self.compiled(self.D)
        with self.phase("Dmain"):
            c = self.random_labels(n)
            with torch.no_grad():
                with self.fp32():  # the mapping updates the fp32 w_avg from its output
                    ws = self._mapping(self.draw(torch.randn, n, self.G.z_dim), c, update_w_avg=True)

            def round_loss(k: int, b: int, round_log: dict[str, Tensor]) -> Tensor:
                ck = None if c is None else c[k::rounds]
                rk = None if real_c is None else real_c[k::rounds]
                with torch.no_grad():
                    fake = self.synthesize(ws[k::rounds], update_emas=True)
                fake_logits = D(self.augment(fake), ck)
                real_logits = D(self.augment(real[k::rounds]), rk)
                self.observe_real_logits(real_logits)
                loss_d = losses.d_logistic(real_logits, fake_logits).mean()
                round_log["Loss/D"] = loss_d.detach()
                round_log["D/real"] = real_logits.detach().mean()
                round_log["D/real_sign"] = real_logits.detach().sign().mean()  # this batch's r_t (ADA's heuristic)
                round_log["D/fake"] = fake_logits.detach().mean()
                return loss_d

            self.accumulate(opt, round_loss, n, rounds, log)

    def d_reg(self, opt, real: Tensor, real_c: Tensor | None, log: dict[str, Tensor]) -> None:
        """Dreg: R1 on the reals, gradient times ``r1_interval``; double backward in fp32."""
        cfg = self.loss_cfg
        n = real.shape[0]
        rounds = self.rounds(n)

        def round_loss(k: int, b: int, round_log: dict[str, Tensor]) -> Tensor:
            real_r = real[k::rounds].detach().float().requires_grad_(True)
            logits = self.D(self.augment(real_r), None if real_c is None else real_c[k::rounds])
            self.observe_real_logits(logits)  # R1 is taken w.r.t. the un-augmented reals
            loss_r1 = losses.r1_penalty(logits, real_r).mean() * (cfg["r1_gamma"] / 2)
            round_log["Loss/r1"] = loss_r1.detach()
            return loss_r1 * cfg["r1_interval"]

        with self.phase("Dreg"), self.fp32():
            self.accumulate(opt, round_loss, n, rounds, log)

    # ------------------------------------------------------------------------------------------
    # Augmentation of what D sees (ADA, DiffAugment; model.augment).

    def augment(self, images: Tensor) -> Tensor:
        """``images`` as D sees them: augmented with this module's rank-consistent draws, or as they are."""
        if not self.augmentation.enabled:
            return images
        return self.to_memory_format(self.augmentation(images, draw=self.draw))

    def observe_real_logits(self, real_logits: Tensor) -> None:
        """Feed ADA's overfitting heuristic (every real logit D produces, as the reference does)."""
        if self.augmentation.adaptive is not None:
            self.augmentation.adaptive.accumulate(real_logits)

    def adjust_augmentation(self, global_batch: int, log: dict[str, Tensor]) -> None:
        """ADA: after every ``interval`` iterations (the first after iteration ``interval``, as
        stylegan2-ada-pytorch counts), r_t over ranks and the step in p. Runs before :meth:`advance`,
        so this iteration is ``self.iteration + 1``. Logs ``augment/p`` every iteration and, for
        ADA, ``augment/rt`` at the iterations that measure it (none before the first ``interval``)."""
        aug = self.augmentation
        if aug.adaptive is not None and aug.adaptive.due(self.iteration + 1):
            reduce = torch.distributed.all_reduce if self.world_size > 1 else None
            p = aug.p
            assert p is not None  # ADA (aug.adaptive) always has a pipeline, hence a probability
            aug.adaptive.update(p, global_batch, reduce)
            log["augment/rt"] = aug.adaptive.rt.detach().clone().float()
        if aug.p is not None:
            log["augment/p"] = aug.p.detach().clone()

    def synthesize(self, ws: Tensor, compiled: bool = True, update_emas: bool = False) -> Tensor:
        """``G.synthesis(ws)`` in training (its ``torch.compile`` wrapper unless ``compiled=False``).

        ``update_emas``: Dmain's generated-image pass, where a synthesis network with running
        statistics of its own moves them (StyleGAN3's magnitude EMAs, NVIDIA's ``update_emas``);
        StyleGAN2's has none (``w_avg`` is the mapping's, tracked in :meth:`d_main`)."""
        return (self.compiled(self.G.synthesis) if compiled else self.G.synthesis)(ws)

    def _mapping(self, z: Tensor, c: Tensor | None, update_w_avg: bool = False) -> Tensor:
        """Mapping with style mixing (prob ``style_mixing_prob``, cutoff ~ U[1, num_ws-1]), no host sync.

        ``update_w_avg``: move ``w_avg`` toward the mean of this iteration's w over every rank
        (``MappingNetwork.track_w_avg``; the mixing latents are not tracked, as in the reference)."""
        ws = self.G.mapping(z, c)
        if update_w_avg:  # psi 1: every slot holds the mapping's w (mixing comes below)
            self.G.mapping.track_w_avg(ws[:, 0], self.world_size)
        prob = self.loss_cfg["style_mixing_prob"]
        if prob > 0:
            num_ws = ws.shape[1]
            cutoff = self.draw_shared(lambda: torch.randint(1, num_ws, (), device=ws.device))
            mixing = self.draw_shared(lambda: torch.rand((), device=ws.device)) < prob
            cutoff = torch.where(mixing, cutoff, torch.full_like(cutoff, num_ws))
            ws2 = self.G.mapping(self.draw(torch.randn, z.shape[0], z.shape[1], device=z.device), c)
            mix = (torch.arange(num_ws, device=ws.device) >= cutoff).reshape(1, -1, 1)
            ws = torch.where(mix, ws2, ws)
        return ws

    def _path_length_penalty(self, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``losses.path_length_penalty`` with the mean path length taken over all ranks.

        The global mean goes through a differentiable all_reduce, so its gradient (the penalty
        uses the updated running mean) is the one a single process with the whole batch gets.
        """
        decay = self.loss_cfg["pl_decay"]
        if self.world_size == 1:
            return losses.path_length_penalty(lengths, self.pl_mean, decay)
        from torch.distributed.nn.functional import all_reduce

        mean = all_reduce(lengths.sum()) / (lengths.shape[0] * self.world_size)
        new_mean = self.pl_mean.lerp(mean, decay)
        return (lengths - new_mean).square(), new_mean

    @torch.no_grad()
    def update_ema(self, global_batch: int) -> None:
        beta = losses.ema_beta(global_batch, self.ema_cfg["kimg"], self.cur_nimg, self.ema_cfg["rampup"])
        ema_params: list[Tensor] = list(self.G_ema.parameters())
        params = [p.detach() for p in self.G.parameters()]
        # p_ema <- lerp(p, p_ema, beta) == p_ema + (1 - beta) * (p - p_ema)
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)


def _rng_state(device: torch.device) -> dict:
    """The torch RNG state of the CPU and (on CUDA) of ``device``: what the noise inputs draw from."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _colorspace_with(name: str, img_channels: int | None):
    """The colour space ``name``; a legacy ``img_channels`` (configs and checkpoints from before the
    channels followed the colour space) must agree with it."""
    cs = get_colorspace(name)
    if img_channels is not None and img_channels != cs.channels:
        raise ValueError(
            f"model.img_channels={img_channels} does not match colorspace.name={name!r} ({cs.channels} channels)"
        )
    return cs


def _augmentation_state(module, state_dict, prefix, *args) -> None:
    """Load pre-hook: the augmentation state follows this run's ``model.augment``. A checkpoint from
    a run without it (or from before it existed) starts with this run's initial ``p``; the state of
    an augmentation this run does not use is dropped."""
    key = prefix + "augmentation."
    own = module.augmentation.state_dict()
    for name in [k for k in state_dict if k.startswith(key) and k[len(key) :] not in own]:
        del state_dict[name]
    for name, value in own.items():
        state_dict.setdefault(key + name, value.clone())


def _default_label_distribution(module, state_dict, prefix, *args) -> None:
    """Load pre-hook: a checkpoint from before ``label_distribution`` existed loads with it unknown (zeros)."""
    key = prefix + "label_distribution"
    if key not in state_dict:
        state_dict[key] = torch.zeros_like(module.label_distribution)
