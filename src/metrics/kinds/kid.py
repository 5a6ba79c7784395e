"""KID (Bińkowski et al. 2018) on Inception-v3 pool3 features: the unbiased cubic-kernel MMD over
random subsets, NVIDIA's ``kid50k_full`` (reals capped at 1M; stylegan2-ada-pytorch
``metrics/kernel_inception_distance.py``), its counts and the configurable ``kid``."""

from __future__ import annotations

from src.metrics.formulas import kid_from_features
from src.metrics.networks import INCEPTION
from src.metrics.registry import Computed, MetricContext, register_metric


@register_metric(
    "kid",
    r"kid(?:(?P<n>\d+k?)(?P<full>_full)?)?",
    network=INCEPTION,
    result_keys=("{name}", "{name}_std"),
    needs_reals=True,
    full_reals=1_000_000,
    min_gen=2,
    examples=("kid50k_full", "kid"),
)
def kid(ctx: MetricContext) -> Computed:
    """KID's mean and std over the suite's ``kid.subsets`` of ``kid.max_subset_size`` at most."""
    p, settings = ctx.protocol, ctx.suite.kid
    subsets = int(settings["subsets"])
    mean, std, m = kid_from_features(
        ctx.real, ctx.fake[:, : INCEPTION.width], subsets, int(settings["max_subset_size"]), ctx.suite.seed
    )
    return Computed({p.name: mean, f"{p.name}_std": std}, protocol={"subsets": subsets, "subset_size": m})
