"""The feature networks of NVIDIA's metric set, registered for :mod:`src.metrics.registry`.

``inception``: torch-fidelity's Inception-v3 port, pool3 (2048-d) and, for the Inception Score,
the 1008 class probabilities (FID, KID, IS). ``vgg16``: VGG-16 fc2 (4096-d) for precision/recall,
torchvision's or NVIDIA's file (``pr.feature_net``, :mod:`src.metrics.vgg16`). ``lpips``:
LPIPS-VGG16 for PPL, which draws its own image pairs (not fed by the shared passes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from src.metrics.inception import load_inception
from src.metrics.lpips import LPIPS, heads_file
from src.metrics.registry import Network, register_network
from src.metrics.vgg16 import VGG16Features
from src.pretrained.weights import weights_path


def _feature_net(settings: Mapping[str, Any]) -> str:
    return str((settings.get("pr") or {}).get("feature_net", "torchvision"))


def _vgg16_label(settings: Mapping[str, Any]) -> str:
    return "VGG-16 fc2 (NVIDIA's vgg16.pt)" if _feature_net(settings) == "nvidia" else "VGG-16 fc2"


def _inception_check(weights_dir: str, settings: Mapping[str, Any]) -> None:
    weights_path("inception", weights_dir)


def _vgg16_check(weights_dir: str, settings: Mapping[str, Any]) -> None:
    weights_path("vgg16_nvidia" if _feature_net(settings) == "nvidia" else "vgg16", weights_dir)


def _lpips_check(weights_dir: str, settings: Mapping[str, Any]) -> None:
    weights_path("vgg16", weights_dir)
    heads_file(weights_dir)


INCEPTION = register_network(
    Network(
        "inception",
        load=lambda weights_dir, settings: load_inception(weights_dir),
        label="Inception-v3 pool3",
        width=2048,
        probs_width=1008,
        check=_inception_check,
    )
)
VGG16 = register_network(
    Network(
        "vgg16",
        load=lambda weights_dir, settings: VGG16Features(weights_dir, _feature_net(settings)),
        label=_vgg16_label,
        width=4096,
        check=_vgg16_check,
        cache_name=lambda settings: f"vgg16-{_feature_net(settings)}",
    )
)
LPIPS_VGG16 = register_network(
    Network(
        "lpips",
        load=lambda weights_dir, settings: LPIPS.from_weights_dir(weights_dir),
        label="LPIPS-VGG16",
        check=_lpips_check,
    )
)
