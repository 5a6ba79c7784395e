"""Inception Score (Salimans et al. 2016) of the generated images' Inception-v3 class
probabilities, 10 splits: NVIDIA's ``is50k`` and its counts (stylegan2-ada-pytorch
``metrics/inception_score.py``). No reals."""

from __future__ import annotations

from src.metrics.formulas import inception_score
from src.metrics.networks import INCEPTION
from src.metrics.registry import Computed, MetricContext, register_metric


@register_metric(
    "is",
    r"is(?P<n>\d+k?)",
    network=INCEPTION,
    result_keys=("{name}_mean", "{name}_std"),
    higher_is_better=(True, False),
    probs=True,
    examples=("is50k",),
)
def inception_score_kind(ctx: MetricContext) -> Computed:
    """Mean and std of the score over ``splits`` splits of the generated images."""
    p = ctx.protocol
    mean, std = inception_score(ctx.fake[:, INCEPTION.width :], p.splits)
    return Computed({f"{p.name}_mean": mean, f"{p.name}_std": std}, protocol={"splits": p.splits})
