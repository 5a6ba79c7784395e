"""The equivariance metrics of the StyleGAN3 paper (Karras et al. 2021, appendix E; NVlabs/stylegan3
``metrics/metric_main.py``): ``eqt50k_int`` (EQ-T, integer translation), ``eqt50k_frac`` (EQ-T_frac,
fractional translation) and ``eqr50k`` (EQ-R, rotation), PSNR in dB between the generator's output for a
transformed input and the transformed output (:mod:`src.metrics.equivariance`); any count in place of
``50k`` (``eqt10k_int``, ``eqr1k``). 4 images per batch and transform, G_ema, psi 1, float32, the raw output
of any colour space. Only a generator whose synthesis takes an input transform (StyleGAN3) is measured;
any other is refused before any work. No feature network, no reals; the kind draws its own images.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import nn

from src.metrics.equivariance import check_transformable, equivariance_psnr
from src.metrics.progress import Progress
from src.metrics.registry import (
    Computed,
    MetricContext,
    MetricKind,
    Network,
    Protocol,
    image_count,
    register_metric,
)

BATCH = 4  # images per drawn transform (metric_main.py)
TRANSLATE_MAX = 0.125  # units: an eighth of the image (NVIDIA's default translate_max)
ROTATE_MAX = 1.0  # times pi: the angle is uniform on [-pi, pi] (NVIDIA's default rotate_max)

#: the kind's "network": none; the score is a PSNR of the generator's own pixels
PIXELS = Network("pixels", load=lambda weights_dir, settings: nn.Identity(), label="no feature network (pixel PSNR)")

WHAT = {"int": "integer translation (EQ-T)", "frac": "fractional translation (EQ-T_frac)", "rot": "rotation (EQ-R)"}


def transform_of(name: str) -> str:
    """``int``, ``frac`` or ``rot``: what metric ``name`` (``eqt50k_int``, ``eqt50k_frac``, ``eqr50k``) measures."""
    return "rot" if name.startswith("eqr") else name.rpartition("_")[2]


def eq_protocol(kind: MetricKind, match: re.Match[str], settings: Mapping[str, Any]) -> Protocol | None:
    """``num_samples``: the count in the name (at least one batch's worth is measured)."""
    n = image_count(match["n"] or match["nr"])
    return Protocol(match.string, kind.kind, num_samples=n) if n >= 1 else None


def eq_plan(p: Protocol) -> str:
    what = WHAT[transform_of(p.name)]
    return f"{p.name}: {p.num_samples} images in batches of {BATCH} per transform, {what}, G_ema psi 1, raw output"


def refuse(p: Protocol, module: Any) -> None:
    """A module whose generator takes no input transform is refused with one line (before any work)."""
    check_transformable(module, p.name)


@register_metric(
    "eq",
    r"eqt(?P<n>\d+k?)_(?:int|frac)|eqr(?P<nr>\d+k?)",
    network=PIXELS,
    higher_is_better=True,
    shared_pass=False,
    protocol=eq_protocol,
    describe=eq_plan,
    examples=("eqt50k_int", "eqt50k_frac", "eqr50k"),
    check=refuse,
)
def equivariance(ctx: MetricContext) -> Computed:
    """PSNR (dB) of the generator's transformed-input images against its transformed images."""
    p, transform = ctx.protocol, transform_of(ctx.protocol.name)
    with Progress(f"{p.name} images", p.num_samples, enabled=ctx.is_global_zero) as bar:
        psnr, measured = equivariance_psnr(
            ctx.module,
            transform,
            p.num_samples,
            batch_size=BATCH,
            seed=ctx.suite.seed,
            rank=ctx.rank,
            world_size=ctx.world_size,
            translate_max=TRANSLATE_MAX,
            rotate_max=ROTATE_MAX,
            metric=p.name,
            progress=bar.update,
        )
    protocol = {
        "transform": WHAT[transform],
        "num_samples": measured,
        "batch_size": BATCH,
        "translate_max": TRANSLATE_MAX if transform != "rot" else None,
        "rotate_max": ROTATE_MAX if transform == "rot" else None,
        "psi": 1.0,
        "noise_mode": "const",
        "precision": "float32",
        "images": "raw generator output, [-1, 1] (PSNR peak 2)",
        "seed": ctx.suite.seed,
    }
    return Computed({p.name: psnr}, protocol=protocol)
