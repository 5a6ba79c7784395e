"""Latent optimisation into W, W+ or W then W+ (Karras et al. 2020, §5; Abdal et al. 2019).

The algorithm is stylegan2-ada-pytorch's projector.py: W statistics from 10,000 seeded z, free variables
initialised at ``w_avg`` plus re-drawn noise maps, LPIPS-VGG distance on images area-downsampled to
at most 256 px, the multi-octave noise autocorrelation penalty (weight 1e5), a learning rate with a
5% linear ramp-up and a 25% cosine ramp-down, w jitter ``w_std * 0.05 * max(0, 1 - t/0.75)^2`` and
noise renormalisation after every step. Extended after rosinality's projector.py and e4e
(Tov et al. 2021): optional pixel MSE, several targets per batch (each with its own noise maps), any
color space (decoded to RGB before VGG), non-square generators, and three modes:

* ``w``: one w per image, tiled over every layer (editable, worse fit);
* ``w_plus``: one w per layer (better fit), with optional e4e-style penalties on the spread of the
  per-layer codes around their mean and on their distance to ``w_avg``;
* ``w_then_w_plus``: W for the first ``switch`` fraction of the steps, then W+ from that code.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.latents.files import Latents, noise_layers, noise_override
from src.latents.seeds import latents_from_seed
from src.nn.style_generator import StyleGenerator
from src.projection.targets import display_rgb

MODES = ("w", "w_plus", "w_then_w_plus")
NOISE_CHOICES = ("optimize", "const")


@dataclass
class ProjectorConfig:
    """Every knob of the projector with the reference defaults (NVIDIA's and rosinality's projector.py)."""

    mode: str = "w"
    steps: int = 1000
    lr: float = 0.1
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    betas: tuple[float, float] = (0.9, 0.999)
    w_noise: float = 0.05  # initial w jitter, in units of w_std
    w_noise_ramp: float = 0.75  # jitter reaches zero at this fraction of the steps
    noise_reg: float = 1e5  # noise autocorrelation penalty weight
    noise: str = "optimize"  # optimize: re-drawn N(0, 1) maps are free variables | const: G's own maps, fixed
    lpips_weight: float = 1.0
    mse_weight: float = 0.0  # pixel MSE on RGB in [-1, 1] (rosinality's --mse)
    spread_weight: float = 0.0  # w_plus: mean_l |w_l - mean(w)|^2 / w_std^2 (e4e: codes close to each other)
    avg_weight: float = 0.0  # w_plus: mean_l |w_l - w_avg|^2 / w_std^2 (e4e: codes close to W)
    switch: float = 0.5  # w_then_w_plus: fraction of the steps spent in W
    w_stats_n: int = 10000
    w_stats_seed: int = 123
    seed: int = 303
    max_size: int = 256  # images larger than this (short side) are area-downsampled for VGG
    frame_every: int = 10  # keep an image every this many steps (progress video); 0 = none

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}: choose one of {', '.join(MODES)}")
        if self.noise not in NOISE_CHOICES:
            raise ValueError(f"noise={self.noise!r}: choose one of {', '.join(NOISE_CHOICES)}")
        if int(self.steps) < 1:
            raise ValueError(f"steps={self.steps}: must be at least 1")
        if not 0.0 <= self.switch <= 1.0:
            raise ValueError(f"switch={self.switch}: must be in [0, 1]")


@dataclass
class ProjectionResult:
    """Final codes and noise, final images (RGB [0, 1]), per-step losses and progress frames."""

    latents: Latents
    images: Tensor  # [N, 3, H, W] decoded RGB of the final code (no jitter)
    metrics: list[dict]  # one dict per target
    history: list[dict] = field(default_factory=list)  # per step: step, lr, lpips (mean), loss
    frames: list[Tensor] = field(default_factory=list)  # [N, 3, H, W] RGB every frame_every steps


# ----------------------------------------------------------------------------------------------
# Pieces of the objective and the schedule (plain functions: testable against NVIDIA's projector.py).


@torch.no_grad()
def w_stats(
    generator: StyleGenerator, n: int = 10000, seed: int = 123, c: Tensor | None = None, batch: int = 1000
) -> tuple[Tensor, float]:
    """``w_avg`` ``[w_dim]`` and the scalar ``w_std = sqrt(mean_i |w_i - w_avg|^2)`` over ``n`` z drawn
    from ``RandomState(seed)``, as NVIDIA's projector."""
    device = next(generator.parameters()).device
    z_all = latents_from_seed(seed, n, generator.z_dim)
    ws = []
    for i in range(0, n, batch):
        z = z_all[i : i + batch].to(device)
        cc = None if c is None else c[:1].expand(z.shape[0], -1)
        ws.append(generator.mapping(z, cc)[:, 0].double())
    w = torch.cat(ws)
    w_avg = w.mean(0)
    w_std = float(((w - w_avg).square().sum(1).mean()).sqrt())
    return w_avg.float(), w_std


def lr_at(t: float, base: float = 0.1, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """Learning rate at progress ``t`` in [0, 1]: linear ramp-up over ``rampup``, cosine ramp-down over
    the last ``rampdown`` (NVIDIA's schedule)."""
    ramp = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp *= min(1.0, t / rampup) if rampup > 0 else 1.0
    return base * ramp


def jitter_scale(t: float, w_std: float, strength: float = 0.05, ramp: float = 0.75) -> float:
    """Std of the Gaussian added to w at progress ``t``: ``w_std * strength * max(0, 1 - t/ramp)^2``."""
    return w_std * strength * max(0.0, 1.0 - t / ramp) ** 2


def noise_regularization(maps: list[Tensor]) -> Tensor:
    """Per-image sum over maps and octaves (down to 8 px) of the squared one-pixel autocorrelations
    in x and y (NVIDIA's noise regulariser). ``maps``: ``[N, H, W]`` each; returns ``[N]``."""
    total: Tensor | None = None
    for m in maps:
        x = m.unsqueeze(1)
        while True:
            for dim in (3, 2):  # x, then y
                term = (x * torch.roll(x, 1, dims=dim)).mean(dim=(1, 2, 3)).square()
                total = term if total is None else total + term
            if min(x.shape[-2:]) <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return torch.zeros([]) if total is None else total


@torch.no_grad()
def renormalize_(maps: list[Tensor]) -> None:
    """Zero mean, unit RMS per image and map, in place, after every step as NVIDIA's projector."""
    for m in maps:
        m -= m.mean(dim=(1, 2), keepdim=True)
        m *= m.square().mean(dim=(1, 2), keepdim=True).rsqrt()


def editability(ws: Tensor, w_avg: Tensor, w_std: float) -> dict[str, Tensor]:
    """Per image: how far the codes are from W's bulk (the editability cost of W+, Tov et al. 2021).

    ``w_avg_distance``: mean over layers of ``|w_l - w_avg| / w_std`` (sampled w score ~1);
    ``w_avg_distance_max``: its max over layers; ``layer_spread``: RMS over layers of
    ``|w_l - mean_l w| / w_std`` (0 for a W code tiled over the layers).
    """
    ws = ws.float()
    dist = (ws - w_avg.to(ws)).norm(dim=2) / w_std
    spread = (ws - ws.mean(dim=1, keepdim=True)).square().sum(2).mean(1).sqrt() / w_std
    return {"w_avg_distance": dist.mean(1), "w_avg_distance_max": dist.amax(1), "layer_spread": spread}


def psnr(a: Tensor, b: Tensor) -> Tensor:
    """PSNR in dB per image of RGB ``[N, 3, H, W]`` in [0, 1] (torchmetrics)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return peak_signal_noise_ratio(a.float(), b.float(), data_range=1.0, reduction="none", dim=(1, 2, 3))


def vgg_input(rgb: Tensor, max_size: int = 256) -> Tensor:
    """RGB [0, 1] -> [-1, 1] for LPIPS; area-downsampled so the short side is at most ``max_size``,
    upsampled (bilinear) to 16 px when smaller, LPIPS-VGG's minimum."""
    x = rgb * 2 - 1
    h, w = x.shape[-2:]
    if min(h, w) > max_size:
        f = max_size / min(h, w)
        x = F.interpolate(x, size=(max(1, round(h * f)), max(1, round(w * f))), mode="area")
    elif min(h, w) < 16:
        f = 16 / min(h, w)
        x = F.interpolate(x, size=(round(h * f), round(w * f)), mode="bilinear", align_corners=False)
    return x


# ----------------------------------------------------------------------------------------------


class Projector:
    """Projects a batch of RGB targets into ``generator`` (a copy is used; the original is untouched).

    ``lpips``: an :class:`src.metrics.lpips.LPIPS` (``LPIPS.from_weights_dir(paths.weights_dir)``).
    ``colorspace``: the model's; synthesized images are decoded to RGB before VGG.
    """

    def __init__(
        self, generator: StyleGenerator, colorspace, lpips: nn.Module, config: ProjectorConfig, c: Tensor | None = None
    ) -> None:
        self.G = copy.deepcopy(generator).float().eval().requires_grad_(False)
        self.device = next(self.G.parameters()).device
        self.colorspace, self.lpips, self.cfg = colorspace, lpips.to(self.device), config
        self.c = None if c is None else c.to(self.device)
        self.w_avg, self.w_std = w_stats(self.G, config.w_stats_n, config.w_stats_seed, self.c)
        self.w_avg = self.w_avg.to(self.device)

    def synth_rgb(self, ws: Tensor, noise: dict[str, Tensor]) -> Tensor:
        with noise_override(self.G, noise):
            img = self.G.synthesis(ws, noise_mode="const")
        return display_rgb(self.colorspace.decode(img))

    def _initial_noise(self, n: int, gen: torch.Generator) -> dict[str, Tensor]:
        layers = noise_layers(self.G)
        if self.cfg.noise == "const":
            return {k: m.noise_const.detach().expand(n, *m.noise_const.shape[-2:]).clone() for k, m in layers.items()}
        return {
            k: torch.randn(n, *m.noise_const.shape[-2:], generator=gen).to(self.device).requires_grad_(True)
            for k, m in layers.items()
        }

    def project(self, targets: Tensor, callback: Callable[[int, dict], None] | None = None) -> ProjectionResult:
        """``targets`` RGB ``[N, 3, H, W]`` in [0, 1] at the generator's resolution.

        ``callback(step, record)`` runs after every step with the step's record (lr, lpips, loss) and,
        on the steps that keep a progress frame, that frame under ``"frame"`` (RGB ``[N, 3, H, W]``);
        an exception it raises stops the projection there (the explorer's Cancel).
        """
        cfg, n = self.cfg, targets.shape[0]
        if tuple(targets.shape[-2:]) != tuple(self.G.resolution):
            raise ValueError(f"targets are {list(targets.shape[-2:])}, the generator makes {list(self.G.resolution)}")
        targets = targets.to(self.device).float()
        target_feats = vgg_input(targets, cfg.max_size)
        gen = torch.Generator().manual_seed(int(cfg.seed))
        noise = self._initial_noise(n, gen)
        noise_vars = [v for v in noise.values() if v.requires_grad]
        plus = cfg.mode == "w_plus"
        w_opt = self.w_avg.expand(n, self.G.num_ws if plus else 1, -1).clone().requires_grad_(True)
        opt = torch.optim.Adam([w_opt, *noise_vars], lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]))
        switch_step = round(cfg.switch * cfg.steps) if cfg.mode == "w_then_w_plus" else None
        history, frames = [], []
        for step in range(int(cfg.steps)):
            if step == switch_step:  # W -> W+: every layer starts from the W code; noise keeps its Adam state
                state = {id(v): opt.state.get(v) for v in noise_vars}
                w_opt = w_opt.detach().expand(-1, self.G.num_ws, -1).clone().requires_grad_(True)
                opt = torch.optim.Adam([w_opt, *noise_vars], lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]))
                for v in noise_vars:
                    if state[id(v)]:
                        opt.state[v] = state[id(v)]
                plus = True
            t = step / cfg.steps
            lr = lr_at(t, cfg.lr, cfg.lr_rampup, cfg.lr_rampdown)
            for group in opt.param_groups:
                group["lr"] = lr
            jitter = torch.randn(w_opt.shape, generator=gen).to(self.device)
            w = w_opt + jitter * jitter_scale(t, self.w_std, cfg.w_noise, cfg.w_noise_ramp)
            ws = w if plus else w.expand(-1, self.G.num_ws, -1)
            rgb = self.synth_rgb(ws, noise)
            dist = self.lpips(vgg_input(rgb, cfg.max_size), target_feats)
            loss = cfg.lpips_weight * dist
            if cfg.mse_weight:
                loss = loss + cfg.mse_weight * (rgb * 2 - targets * 2).square().mean(dim=(1, 2, 3))
            if noise_vars:
                loss = loss + cfg.noise_reg * noise_regularization(noise_vars)
            if plus and (cfg.spread_weight or cfg.avg_weight):
                var2 = self.w_std**2
                spread = (w_opt - w_opt.mean(1, keepdim=True)).square().sum(2).mean(1) / var2
                to_avg = (w_opt - self.w_avg).square().sum(2).mean(1) / var2
                loss = loss + cfg.spread_weight * spread + cfg.avg_weight * to_avg
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            renormalize_(noise_vars)
            record = {
                "step": step + 1,
                "lr": lr,
                "lpips": float(dist.detach().mean()),
                "loss": float(loss.detach().mean()),
            }
            history.append(record)
            shown = {}
            if cfg.frame_every and (step % cfg.frame_every == 0 or step == cfg.steps - 1):
                frames.append(rgb.detach().cpu())
                shown = {"frame": frames[-1]}
            if callback is not None:
                callback(step + 1, record | shown)
        final_ws = (w_opt if plus else w_opt.expand(-1, self.G.num_ws, -1)).detach()
        final_noise = {k: v.detach() for k, v in noise.items()}
        with torch.no_grad():
            images = self.synth_rgb(final_ws, final_noise)
            dist = self.lpips(vgg_input(images, cfg.max_size), target_feats)
            quality = psnr(images, targets)
        edit = editability(final_ws, self.w_avg, self.w_std)
        metrics = [
            {"lpips": float(dist[i]), "psnr": float(quality[i]), **{k: float(v[i]) for k, v in edit.items()}}
            for i in range(n)
        ]
        info = {
            "mode": cfg.mode,
            "steps": int(cfg.steps),
            "w_std": self.w_std,
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        }
        noise_out = {k: v.cpu() for k, v in final_noise.items()} if noise_layers(self.G) else {}
        return ProjectionResult(Latents(final_ws.cpu(), noise_out, info), images.cpu(), metrics, history, frames)
