"""Improved precision and recall (Kynkäänniemi et al. 2019) on VGG-16 fc2 features.

``pr50k3_full`` and its counts (the digit after the count is k: ``pr10k5``) are NVIDIA's protocol
(k = 3, reals capped at 200k for ``_full``; stylegan2-ada-pytorch ``metrics/precision_recall.py``)
on NVIDIA's own ``vgg16.pt``, so they give NVIDIA's numbers. The same names ending in
``_torchvision`` (``pr50k3_full_torchvision``) use torchvision's ImageNet VGG-16 instead: different
weights, so their values are close to NVIDIA's but comparable only among themselves.
"""

from __future__ import annotations

from src.metrics.networks import VGG16, VGG16_TORCHVISION
from src.metrics.precision_recall import precision_recall
from src.metrics.registry import Computed, MetricContext, register_metric

NAMES = r"pr(?P<n>\d+?k?)(?P<nhood>\d)(?P<full>_full)?"


def _pr(ctx: MetricContext, feature_net: str) -> Computed:
    """Precision and recall with k = ``nhood``, distances in blocks of the suite's ``pr.block`` rows."""
    p = ctx.protocol
    precision, recall = precision_recall(ctx.real, ctx.fake, p.nhood, int(ctx.suite.pr["block"]))
    return Computed(
        {f"{p.name}_precision": precision, f"{p.name}_recall": recall},
        protocol={"nhood": p.nhood, "feature_net": feature_net},
    )


@register_metric(
    "pr",
    NAMES,
    network=VGG16,
    result_keys=("{name}_precision", "{name}_recall"),
    higher_is_better=True,
    needs_reals=True,
    full_reals=200_000,
    examples=("pr50k3_full",),
)
def pr(ctx: MetricContext) -> Computed:
    """NVIDIA's precision/recall, on NVIDIA's ``vgg16.pt``."""
    return _pr(ctx, "nvidia")


@register_metric(
    "pr_torchvision",
    NAMES + "_torchvision",
    network=VGG16_TORCHVISION,
    result_keys=("{name}_precision", "{name}_recall"),
    higher_is_better=True,
    needs_reals=True,
    full_reals=200_000,
    examples=("pr50k3_full_torchvision",),
)
def pr_torchvision(ctx: MetricContext) -> Computed:
    """NVIDIA's precision/recall protocol on torchvision's VGG-16 (a name of its own)."""
    return _pr(ctx, "torchvision")
