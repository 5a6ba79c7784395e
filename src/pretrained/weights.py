"""The one place that finds a pretrained file in ``paths.weights_dir`` and loads it safely.

Files keep their upstream names, so a torch hub cache that already holds
them works as is. A missing file stops with :class:`MissingWeightsError`, which names the file, the
folder searched, the key that sets the folder and where to download the file. Files are read with
``torch.load(weights_only=True)``: a state dict of tensors, never pickled code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

# Where the tools look for weight files unless told (``weights_dir=``): torch hub's checkpoints folder,
# where torchvision and torch.hub put downloads, honouring ``TORCH_HOME``.
DEFAULT_WEIGHTS_DIR = os.path.join(
    os.environ.get("TORCH_HOME", os.path.expanduser("~/.cache/torch")), "hub", "checkpoints"
)


@dataclass(frozen=True)
class WeightsFile:
    """A pretrained file: its upstream name, where to get it, and what it is for."""

    filename: str
    url: str
    used_for: str


WEIGHTS: dict[str, WeightsFile] = {
    "inception": WeightsFile(
        "weights-inception-2015-12-05-6726825d.pth",
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        "FID and KID (torch-fidelity's port of the TF Inception-v3 graph NVIDIA uses)",
    ),
    "vgg16": WeightsFile(
        "vgg16-397923af.pth",
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        "PPL (the VGG-16 trunk of LPIPS) and precision/recall (fc2 features); torchvision's ImageNet weights",
    ),
    "vgg16_nvidia": WeightsFile(
        "vgg16.pt",
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt",
        "precision/recall with NVIDIA's own VGG-16 (pr.feature_net=nvidia; a TorchScript archive)",
    ),
}


class MissingWeightsError(FileNotFoundError):
    """A pretrained file is not where the config says; the message says how to fix it."""


def weights_path(name: str, weights_dir: str | Path) -> Path:
    """Path of pretrained file ``name`` (a key of :data:`WEIGHTS`) in ``weights_dir``; raise if absent."""
    if name not in WEIGHTS:
        raise KeyError(f"unknown pretrained file {name!r}; known: {', '.join(WEIGHTS)}")
    spec = WEIGHTS[name]
    path = Path(weights_dir).expanduser() / spec.filename
    if not path.is_file():
        raise MissingWeightsError(
            f"{spec.filename} not found in paths.weights_dir={str(weights_dir)!r} (needed for {spec.used_for}). "
            f"Download it from {spec.url} into that folder, or set paths.weights_dir (or TORCH_HOME) to "
            f"the folder that holds it."
        )
    return path


def load_weights(name: str, weights_dir: str | Path) -> dict[str, torch.Tensor]:
    """The state dict stored in pretrained file ``name``, on the CPU (``weights_only=True``)."""
    path = weights_path(name, weights_dir)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated download, HTML error page, pickled code
        raise MissingWeightsError(
            f"{path} is not a readable state dict ({type(e).__name__}: {e}); download it again from {WEIGHTS[name].url}"
        ) from None
    if not isinstance(state, dict):
        raise MissingWeightsError(
            f"{path} holds a {type(state).__name__}, not a state dict; download it again from {WEIGHTS[name].url}"
        )
    return state
