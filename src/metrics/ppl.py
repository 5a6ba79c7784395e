"""Perceptual path length (Karras et al. 2019, StyleGAN, §4.1; NVIDIA's perceptual_path_length.py).

For pairs (z0, z1): interpolate at t and t + eps (slerp in Z, or lerp in W after the mapping),
synthesize both with the *same* noise, measure LPIPS-VGG between the two images, divide by eps^2.
``t ~ U[0, 1)`` ("full") or ``t = 0`` ("end"). Optionally crop to the face (rows 3/8..7/8, cols
2/8..6/8) and box-downsample images larger than 256 px. The score is the mean after dropping values
below the 1st and above the 99th percentile. Several eps share the image at t.

Spaces named in results: ``zfull`` (Z, full), ``wfull`` (W, full), ``wend`` (W, endpoints; the
StyleGAN2 paper's PPL). Result keys: ``ppl_<space>`` for eps = 1e-4 (the standard),
``ppl_<space>_eps<eps>`` for any other eps (e.g. ``ppl_zfull_eps0.01``, SEGAN's reported setting).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from src.colorspaces import ColorSpace
from src.metrics.generated import GeneratorModel, generated_labels, shard, to_display_rgb
from src.nn.style_generator import StyleGenerator

SPACES: dict[str, tuple[str, str]] = {"zfull": ("z", "full"), "wfull": ("w", "full"), "wend": ("w", "end")}
STANDARD_EPS = 1e-4


def result_key(space: str, eps: float) -> str:
    """``ppl_wend`` for the standard eps 1e-4, else ``ppl_wend_eps0.01``."""
    return f"ppl_{space}" if eps == STANDARD_EPS else f"ppl_{space}_eps{eps:g}"


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between the directions of ``a`` and ``b`` ``[N, D]`` at ``t`` ``[N]``.

    Returns unit vectors (the mapping normalises z anyway). ``t`` may lie slightly outside [0, 1].
    """
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(cos)
    ortho = b - cos * a  # the component of b orthogonal to a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    angle = t.reshape(-1, 1) * omega
    out = a * torch.cos(angle) + ortho * torch.sin(angle)
    return out / out.norm(dim=-1, keepdim=True)


def percentile_filtered_mean(values: Tensor, lo: float = 1.0, hi: float = 99.0) -> Tensor:
    """Mean of ``values`` within [lo-th percentile ('lower'), hi-th percentile ('higher')], inclusive.

    NVIDIA's outlier rule for PPL (perceptual_path_length.py): the bounds are sample values, so nothing
    is dropped for tiny or constant inputs.
    """
    v = values.detach().double().flatten()
    if v.numel() == 0:
        raise ValueError("PPL has no samples")
    low = torch.quantile(v, lo / 100.0, interpolation="lower")
    high = torch.quantile(v, hi / 100.0, interpolation="higher")
    return v[(v >= low) & (v <= high)].mean()


class PerceptualPathLength(Metric):
    """Collects per-pair distances ``LPIPS / eps^2`` on every process; ``compute`` is the filtered mean."""

    full_state_update = False
    higher_is_better = False
    dist: list[Tensor]  # state (add_state in __init__, "cat"): one Tensor while a synced compute() runs

    def __init__(self, lo: float = 1.0, hi: float = 99.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lo, self.hi = lo, hi
        self.add_state("dist", default=[], dist_reduce_fx="cat")

    def update(self, dist: Tensor) -> None:
        self.dist.append(dist.detach().double().flatten())

    def compute(self) -> Tensor:
        return percentile_filtered_mean(dim_zero_cat(self.dist), self.lo, self.hi)


def crop_face(img: Tensor) -> Tensor:
    """Rows 3/8..7/8 and columns 2/8..6/8 of ``[N, C, H, W]`` (NVIDIA's PPL face crop)."""
    h, w = img.shape[-2:]
    return img[..., h * 3 // 8 : h * 7 // 8, w * 2 // 8 : w * 6 // 8]


def downsample_factor(img: Tensor) -> int:
    """NVIDIA's box-downsampling factor for PPL: the longer side of the *whole* image over 256
    (``G.img_resolution // 256``; taken before the face crop, so a cropped 1024 px face is reduced
    by 4 like NVIDIA's, not by 2)."""
    return max(img.shape[-2:]) // 256


def downsample_to_256(img: Tensor, factor: int | None = None) -> Tensor:
    """Box-downsample by ``factor`` (default :func:`downsample_factor` of ``img``); no-op below 2."""
    factor = downsample_factor(img) if factor is None else factor
    return F.avg_pool2d(img, factor) if factor > 1 else img


def ppl_rgb(images: Tensor, colorspace: ColorSpace) -> Tensor:
    """The RGB image PPL measures, ``[N, 3, H, W]`` around [0, 1]. NVIDIA's PPL feeds the generator's
    raw output, unclamped, to LPIPS (``(img + 1) * 255 / 2``); for a model in ``rgb``, ``rgba`` or
    ``gray`` (``ColorSpace.affine_decode``) gamut does the same (alpha dropped, gray repeated).
    Other color spaces are decoded to RGB, which clamps to the gamut their conversion is defined on."""
    if colorspace.affine_decode:
        x = images[:, :3] if images.shape[1] >= 3 else images.repeat(1, 3, 1, 1)
        return (x.float() + 1) / 2
    return to_display_rgb(images, colorspace)


def _synthesize(synthesis: Callable, ws: Tensor, noise_mode: str, noise_seed: int | None) -> Tensor:
    if noise_seed is None or noise_mode != "random":
        return synthesis(ws, noise_mode=noise_mode)
    devices = [ws.device.index or 0] if ws.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(noise_seed)  # the same noise for every image of a pair
        return synthesis(ws, noise_mode=noise_mode)


@torch.no_grad()
def path_distances(
    G: StyleGenerator,
    lpips: Callable[[Tensor, Tensor], Tensor],
    to_rgb: Callable[[Tensor], Tensor],
    z0: Tensor,
    z1: Tensor,
    c: Tensor | None,
    t: Tensor,
    epsilons: Sequence[float],
    space: str,
    crop: bool = False,
    noise_mode: str = "random",
    noise_seed: int | None = 0,
) -> Tensor:
    """``LPIPS(img(t), img(t + eps)) / eps^2`` for each pair and eps: ``[N, len(epsilons)]`` float64.

    ``G`` has ``mapping(z, c) -> ws [N, num_ws, w_dim]`` and ``synthesis(ws, noise_mode=...)``;
    ``to_rgb`` maps its output to RGB in [0, 1]. Each pair keeps one noise draw for all its images
    (``noise_mode='random'`` re-seeded with ``noise_seed`` per synthesis call), so only the latent
    step changes the image (SEGan_Pytorch redraws noise per image, which inflates PPL).
    """
    if space not in ("z", "w"):
        raise ValueError(f"space={space!r}: expected 'z' or 'w'")
    if space == "z":
        points = [slerp(z0, z1, t)] + [slerp(z0, z1, t + e) for e in epsilons]
        ws_list = list(G.mapping(torch.cat(points), c if c is None else c.repeat(len(points), 1)).chunk(len(points)))
    else:
        cc = c if c is None else torch.cat([c, c])
        w0, w1 = G.mapping(torch.cat([z0, z1]), cc).chunk(2)
        ws_list = [torch.lerp(w0, w1, (t + e).reshape(-1, 1, 1)) for e in (0.0, *epsilons)]
    images = []
    for ws in ws_list:
        img = to_rgb(_synthesize(G.synthesis, ws, noise_mode, noise_seed).float())
        factor = downsample_factor(img)
        if crop:
            img = crop_face(img)
        images.append(downsample_to_256(img, factor) * 2 - 1)
    base = images[0]
    return torch.stack([lpips(base, other).double() / (e * e) for other, e in zip(images[1:], epsilons)], dim=1)


@torch.no_grad()
def ppl_metrics(
    module: GeneratorModel,
    lpips,
    spaces: Sequence[str],
    epsilons: Sequence[float],
    num_samples: int,
    batch_size: int,
    seed: int = 0,
    crop: bool = False,
    noise_mode: str = "random",
    rank: int = 0,
    world_size: int = 1,
    to_rgb: Callable[[Tensor], Tensor] | None = None,
    progress: Callable[[int], None] | None = None,
    **metric_kwargs,
) -> dict[str, float]:
    """PPL of ``module.G_ema`` for each space in ``spaces`` (keys of :data:`SPACES`) and eps.

    ``num_samples`` pairs in all, split over ``world_size`` processes and synced by torchmetrics.
    Latents, t and noise seeds come from a CPU generator seeded with ``(seed, rank)``. ``progress``
    is called with the number of pairs after each batch (:class:`src.metrics.progress.Progress`).
    """
    G = module.G_ema
    device = module.device
    to_rgb = to_rgb or (lambda x: ppl_rgb(x, module.colorspace))
    out: dict[str, float] = {}
    for name in spaces:
        if name not in SPACES:
            raise ValueError(f"PPL space {name!r}: choose one of {', '.join(SPACES)}")
        space, sampling = SPACES[name]
        meters = [PerceptualPathLength(**metric_kwargs).to(device) for _ in epsilons]
        generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + rank)
        remaining = shard(num_samples, rank, world_size)
        while remaining > 0:
            n = min(batch_size, remaining)
            z0 = torch.randn(n, G.z_dim, generator=generator)
            z1 = torch.randn(n, G.z_dim, generator=generator)
            t = torch.rand(n, generator=generator) if sampling == "full" else torch.zeros(n)
            labels = generated_labels(module, n, generator)
            noise_seed = int(torch.randint(0, 2**62, (), generator=generator))
            c = module.labels_to_onehot(None if labels is None else labels.to(device))
            d = path_distances(
                G,
                lpips,
                to_rgb,
                z0.to(device),
                z1.to(device),
                c,
                t.to(device),
                epsilons,
                space,
                crop=crop,
                noise_mode=noise_mode,
                noise_seed=noise_seed,
            )
            for k, m in enumerate(meters):
                m.update(d[:, k])
            remaining -= n
            if progress is not None:
                progress(n * world_size)
        for e, m in zip(epsilons, meters):
            out[result_key(name, e)] = float(m.compute())
    return out
