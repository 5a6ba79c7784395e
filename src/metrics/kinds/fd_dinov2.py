"""FD-DINOv2: the Fréchet distance between Gaussians fitted to DINOv2 ViT-L/14 features of real and
generated images, the metric Stein et al. (NeurIPS 2023, "Exposing flaws of generative model
evaluation metrics") recommend in place of Inception FID (their code: layer6ai-labs/dgm-eval,
``--model dinov2 --metrics fd``). Network and preprocessing: :mod:`src.metrics.dinov2`; the
distance is FID's formula (:func:`src.metrics.formulas.fid_from_features`) on those features.

Names follow FID's scheme: ``fd_dinov2_50k_full`` (50k generated vs every real, unflipped),
``fd_dinov2_10k_full`` and any other count, ``fd_dinov2_50k`` (against the first 50k reals of the
data set as read, x-flips included when mirrored) and the configurable ``fd_dinov2`` (``num_gen``
vs ``num_real``).
"""

from __future__ import annotations

from src.metrics.formulas import fid_from_features
from src.metrics.networks import DINOV2
from src.metrics.registry import Computed, MetricContext, register_metric


@register_metric(
    "fd_dinov2",
    r"fd_dinov2(?:_(?P<n>\d+k?)(?P<full>_full)?)?",
    network=DINOV2,
    needs_reals=True,
    full_reals=None,  # fd_dinov2_50k_full: every real
    min_gen=2,
    examples=("fd_dinov2_50k_full", "fd_dinov2_10k_full", "fd_dinov2"),
)
def fd_dinov2(ctx: MetricContext) -> Computed:
    """The Fréchet distance of the generated against the real DINOv2 features."""
    return Computed({ctx.protocol.name: fid_from_features(ctx.real, ctx.fake)})
