"""NVIDIA's metric VGG-16 (``vgg16.pt``), the feature network of NVIDIA's precision/recall and PPL.

stylegan2-ada-pytorch's ``metrics/precision_recall.py`` calls it with ``return_features=True``
on uint8 images (the 4096-d fc2 features of an ImageNet VGG-16, resized to 224 px inside), and
``metrics/perceptual_path_length.py`` with ``resize_images=False, return_lpips=True`` on float
images in [0, 255], which gives each image's LPIPS feature vector: the squared distance between two
images' vectors, summed, is their LPIPS distance (Zhang et al. 2018, the VGG variant with the
authors' original VGG weights, not torchvision's). The file is a TorchScript archive, opened with
``torch.jit.load``, which runs only the program stored in the file; it is fetched from NVIDIA's
URL on first use (:mod:`src.pretrained.weights`). One copy is loaded per process and file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from src.pretrained.weights import WEIGHTS, MissingWeightsError, weights_path

_LOADED: dict[tuple, torch.jit.ScriptModule] = {}


def load_nvidia_vgg16(weights_dir: str | Path) -> tuple[torch.jit.ScriptModule, Path]:
    """NVIDIA's ``vgg16.pt`` from ``weights_dir`` (fetched there first when allowed) and its path."""
    path = weights_path("vgg16_nvidia", weights_dir).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _LOADED:
        try:
            with warnings.catch_warnings():  # torch marks TorchScript deprecated; NVIDIA ships it
                warnings.simplefilter("ignore", FutureWarning)
                scripted = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as e:  # truncated download, an HTML page, not TorchScript
            first = (str(e).splitlines() or [""])[0]
            raise MissingWeightsError(
                f"{path} is not a TorchScript archive ({type(e).__name__}: {first}); "
                f"delete it to fetch it again from {WEIGHTS['vgg16_nvidia'].url}"
            ) from None
        _LOADED.clear()  # keep at most one copy in memory
        _LOADED[key] = scripted
    return _LOADED[key], path


class NvidiaVGG16Features(nn.Module):
    """uint8 RGB ``[N, 3, H, W]`` -> NVIDIA's fc2 features ``[N, 4096]`` float32 (precision/recall)."""

    num_features = 4096

    def __init__(self, weights_dir: str | Path) -> None:
        super().__init__()
        self.scripted, self.weights_file = load_nvidia_vgg16(weights_dir)
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> NvidiaVGG16Features:
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"VGG-16 expects uint8 [N, 3, H, W], got {images.dtype} {list(images.shape)}")
        return self.scripted(images, return_features=True).float()


class NvidiaLPIPS(nn.Module):
    """``d(x0, x1)`` per image for RGB ``[N, 3, H, W]`` in [-1, 1], as NVIDIA's PPL measures it:
    both images scaled to [0, 255], fed without resizing, squared difference of the LPIPS vectors
    summed (the interface of :class:`src.metrics.lpips.LPIPS`)."""

    def __init__(self, weights_dir: str | Path) -> None:
        super().__init__()
        self.scripted, self.weights_file = load_nvidia_vgg16(weights_dir)
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> NvidiaLPIPS:
        return super().train(False)

    @torch.no_grad()
    def forward(self, x0: Tensor, x1: Tensor) -> Tensor:
        if x0.ndim != 4 or x0.shape[1] != 3 or x0.shape != x1.shape:
            raise ValueError(f"LPIPS expects two RGB [N, 3, H, W] in [-1, 1], got {list(x0.shape)}, {list(x1.shape)}")
        images = (torch.cat([x0, x1]).float() + 1) * (255 / 2)
        f0, f1 = self.scripted(images, resize_images=False, return_lpips=True).float().chunk(2)
        return (f0 - f1).square().sum(dim=1)
