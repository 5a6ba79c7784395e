"""Perceptual path length (Karras et al. 2019) with the LPIPS of NVIDIA's ``vgg16.pt`` (the network
stylegan2-ada-pytorch's ``metrics/perceptual_path_length.py`` measures with): NVIDIA's ``ppl2_wend``
(W, t = 0, eps 1e-4, whole image, 50k pairs) and gamut's configurable ``ppl_zfull``, ``ppl_wfull``,
``ppl_wend`` (``ppl`` = all three; the suite's ``ppl.num_samples``, ``ppl.epsilons``, ``ppl.crop``;
one value per eps, SEGan_Pytorch's README reports eps 1e-2). NVIDIA's legacy ``ppl_wend`` is the
configurable one with ``ppl.crop=true``, ``ppl.epsilons=[1e-4]`` and 50k pairs. PPL draws its own
image pairs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from src.metrics.networks import LPIPS_VGG16
from src.metrics.ppl import SPACES, STANDARD_EPS, ppl_metrics, result_key
from src.metrics.progress import Progress
from src.metrics.registry import Computed, MetricContext, MetricKind, Protocol, register_metric


def ppl_protocol(kind: MetricKind, match: re.Match[str], settings: Mapping[str, Any]) -> Protocol:
    """``ppl2_wend``: NVIDIA's fixed protocol; ``ppl_<space>``: the suite's ``ppl`` settings."""
    name = match.string
    if match["space"] is None:  # ppl2_wend
        return Protocol(name, "ppl", space="wend", num_samples=50000, crop=False)
    ppl = settings.get("ppl") or {}
    return Protocol(
        name,
        "ppl",
        space=match["space"],
        epsilons=tuple(float(e) for e in ppl.get("epsilons", [STANDARD_EPS])),
        num_samples=int(ppl.get("num_samples", 50000)),
        crop=bool(ppl.get("crop", False)),
        configurable=True,
    )


def ppl_keys(p: Protocol) -> list[str]:
    """``ppl2_wend``; a configurable name gives one key per eps (``ppl_wend``, ``ppl_wend_eps0.01``)."""
    return [result_key(p.space, e) for e in p.epsilons] if p.configurable else [p.name]


def ppl_plan(p: Protocol) -> str:
    space, sampling = SPACES[p.space]
    crop = ", face crop" if p.crop else ""
    t = "t=0" if sampling == "end" else "t~U[0,1)"
    return f"{p.name}: {p.num_samples} pairs ({2 * p.num_samples} images) in {space.upper()}, {t}{crop}"


@register_metric(
    "ppl",
    rf"ppl_(?P<space>{'|'.join(SPACES)})|ppl2_wend",
    network=LPIPS_VGG16,
    result_keys=ppl_keys,
    shared_pass=False,
    protocol=ppl_protocol,
    describe=ppl_plan,
    examples=("ppl2_wend", "ppl", *(f"ppl_{s}" for s in SPACES)),
    aliases={"ppl": tuple(f"ppl_{s}" for s in SPACES)},
)
def ppl(ctx: MetricContext) -> Computed:
    """Mean LPIPS distance per eps^2 between the images at t and t + eps, 1st-99th percentile."""
    p, suite = ctx.protocol, ctx.suite
    lpips = ctx.network()
    with Progress(f"{p.name} pairs", p.num_samples, unit="pairs", enabled=ctx.is_global_zero) as bar:
        values = ppl_metrics(
            ctx.module,
            lpips,
            [p.space],
            list(p.epsilons),
            p.num_samples,
            int(suite.ppl["batch_size"]),
            suite.seed,
            p.crop,
            suite.noise_mode,
            ctx.rank,
            ctx.world_size,
            progress=bar.update,
        )
    space, sampling = SPACES[p.space]
    if not p.configurable:  # ppl2_wend: one eps, named after the protocol
        values = {p.name: next(iter(values.values()))}
    protocol = {
        "space": space,
        "sampling": sampling,
        "epsilons": list(p.epsilons),
        "num_samples": p.num_samples,
        "crop": p.crop,
        "percentiles": [1, 99],
        "noise": "fixed per pair",
        "seed": suite.seed,
        "network": suite.network_label(LPIPS_VGG16.name),
    }
    return Computed(values, protocol=protocol)
