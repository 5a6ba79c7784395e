"""FID (Heusel et al. 2017) on Inception-v3 pool3 features, NVIDIA's ``fid50k_full`` and its counts
(stylegan2-ada-pytorch ``metrics/frechet_inception_distance.py``), the configurable ``fid``, and
intra-FID (FID per class and its mean, ``<name>_intra``) for conditional models."""

from __future__ import annotations

from torch import Tensor

from src.metrics.formulas import fid_from_features
from src.metrics.networks import INCEPTION
from src.metrics.progress import Progress
from src.metrics.registry import Computed, MetricContext, register_metric


@register_metric(
    "fid",
    r"fid(?:(?P<n>\d+k?)(?P<full>_full)?)?",
    network=INCEPTION,
    intra_keys=("{name}_intra",),
    needs_reals=True,
    full_reals=None,  # fid50k_full: every real
    min_gen=2,
    examples=("fid50k_full", "fid10k_full", "fid"),
)
def fid(ctx: MetricContext) -> Computed:
    """FID of the generated against the real features; with the suite's ``intra_fid`` and a
    conditional model also each class's FID (``per_class``) and their mean."""
    p = ctx.protocol
    values = {p.name: fid_from_features(ctx.real, ctx.fake[:, : INCEPTION.width])}
    extra = {}
    if ctx.suite.intra_fid and ctx.module.num_classes:
        per_class = intra_fid(ctx, ctx.real, ctx.labels)
        extra["per_class"] = per_class
        if per_class:
            values[f"{p.name}_intra"] = sum(per_class.values()) / len(per_class)
    return Computed(values, extra=extra)


def intra_fid(ctx: MetricContext, real: Tensor, labels: Tensor) -> dict[int, float]:
    """FID per class: each class's reals against as many G_ema images of that class (at least 2)."""
    suite, p = ctx.suite, ctx.protocol
    per_class: dict[int, float] = {}
    classes = sorted(int(c) for c in labels.unique())
    with Progress(f"{p.name} per class", len(classes), unit="classes", enabled=ctx.is_global_zero) as bar:
        for c in classes:
            rows = real[labels == c]
            if rows.shape[0] >= 2:
                fake = suite.generated_features(
                    ctx.module,
                    {"inception": rows.shape[0]},
                    False,
                    ctx.rank,
                    ctx.world_size,
                    ctx.is_global_zero,
                    class_label=c,
                    seed=suite.seed + 1 + c,
                    show=False,
                )["inception"]
                per_class[c] = fid_from_features(rows, fake)
            bar.update(1)
    return per_class
