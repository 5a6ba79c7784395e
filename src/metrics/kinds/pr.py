"""Improved precision and recall (Kynkäänniemi et al. 2019) on VGG-16 fc2 features: NVIDIA's
``pr50k3_full`` (k = 3, reals capped at 200k; stylegan2-ada-pytorch ``metrics/precision_recall.py``)
and its counts, the digit after the count being k (``pr10k5``)."""

from __future__ import annotations

from src.metrics.networks import VGG16
from src.metrics.precision_recall import precision_recall
from src.metrics.registry import Computed, MetricContext, register_metric


@register_metric(
    "pr",
    r"pr(?P<n>\d+?k?)(?P<nhood>\d)(?P<full>_full)?",
    network=VGG16,
    result_keys=("{name}_precision", "{name}_recall"),
    higher_is_better=True,
    needs_reals=True,
    full_reals=200_000,
    examples=("pr50k3_full",),
)
def pr(ctx: MetricContext) -> Computed:
    """Precision and recall with k = ``nhood``, distances in blocks of the suite's ``pr.block`` rows."""
    p, settings = ctx.protocol, ctx.suite.pr
    precision, recall = precision_recall(ctx.real, ctx.fake, p.nhood, int(settings["block"]))
    return Computed(
        {f"{p.name}_precision": precision, f"{p.name}_recall": recall},
        protocol={"nhood": p.nhood, "feature_net": settings["feature_net"]},
    )
