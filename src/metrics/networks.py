"""The feature networks of the metric set, registered for :mod:`src.metrics.registry`.

``inception``: torch-fidelity's port of the TF Inception-v3 graph NVIDIA's metrics use, pool3
(2048-d) and, for the Inception Score, the 1008 class probabilities (FID, KID, IS). ``vgg16``:
NVIDIA's own ``vgg16.pt`` fc2 features (4096-d) for NVIDIA's precision/recall names
(:mod:`src.metrics.vgg16_nvidia`); ``vgg16_torchvision``: torchvision's ImageNet VGG-16 fc2, for
the ``*_torchvision`` precision/recall names (:mod:`src.metrics.vgg16`). ``lpips``: the LPIPS
vectors of NVIDIA's ``vgg16.pt`` for PPL, which draws its own image pairs (not fed by the shared
passes). ``dinov2``: DINOv2 ViT-L/14, the final-norm class token (1024-d) for FD-DINOv2
(:mod:`src.metrics.dinov2`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from src.metrics.dinov2 import WIDTH as DINOV2_WIDTH
from src.metrics.dinov2 import load_dinov2
from src.metrics.inception import load_inception
from src.metrics.registry import Network, register_network
from src.metrics.vgg16 import VGG16Features
from src.metrics.vgg16_nvidia import NvidiaLPIPS, NvidiaVGG16Features
from src.pretrained.weights import weights_path


def _needs(name: str) -> Callable[[str, Mapping[str, Any]], None]:
    """A weights check: the pretrained file ``name`` is in the folder (fetched there when allowed)."""

    def check(weights_dir: str, settings: Mapping[str, Any]) -> None:
        weights_path(name, weights_dir)

    return check


INCEPTION = register_network(
    Network(
        "inception",
        load=lambda weights_dir, settings: load_inception(weights_dir),
        label="Inception-v3 pool3",
        width=2048,
        probs_width=1008,
        check=_needs("inception"),
    )
)
VGG16 = register_network(
    Network(
        "vgg16",
        load=lambda weights_dir, settings: NvidiaVGG16Features(weights_dir),
        label="VGG-16 fc2 (NVIDIA's vgg16.pt)",
        width=4096,
        check=_needs("vgg16_nvidia"),
        cache_name="vgg16-nvidia",
    )
)
VGG16_TORCHVISION = register_network(
    Network(
        "vgg16_torchvision",
        load=lambda weights_dir, settings: VGG16Features(weights_dir),
        label="VGG-16 fc2 (torchvision's ImageNet weights)",
        width=4096,
        check=_needs("vgg16"),
        cache_name="vgg16-torchvision",
    )
)
LPIPS_VGG16 = register_network(
    Network(
        "lpips",
        load=lambda weights_dir, settings: NvidiaLPIPS(weights_dir),
        label="LPIPS (NVIDIA's vgg16.pt)",
        check=_needs("vgg16_nvidia"),
    )
)


DINOV2 = register_network(
    Network(
        "dinov2",
        load=lambda weights_dir, settings: load_dinov2(weights_dir),
        label="DINOv2 ViT-L/14 CLS",
        width=DINOV2_WIDTH,
        check=_needs("dinov2_vitl14"),
    )
)
