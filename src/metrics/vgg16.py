"""torchvision's VGG-16 fc2 features, for the ``*_torchvision`` precision/recall names
(``pr50k3_full_torchvision``; Kynkäänniemi et al. 2019).

NVIDIA's ``pr50k3_full`` feeds uint8 images to NVIDIA's own ``vgg16.pt`` (stylegan2-ada-pytorch
``metrics/precision_recall.py``; :mod:`src.metrics.vgg16_nvidia`). This network is the same
architecture with torchvision's ImageNet weights (``vgg16-397923af.pth``, the file ChromaGAN already
uses; read as a plain state dict, fetched on first use with its sha256 checked): TF1-style bilinear
resize to 224 px, ImageNet mean/std normalisation, fc2 after its ReLU (4096-d). The weights differ
from NVIDIA's (torchvision's training vs the VGG authors' converted weights), so its
precision/recall are close to, not equal to, NVIDIA's, and carry a name of their own.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from src.pretrained.weights import load_weights, weights_path

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class VGG16Features(nn.Module):
    """uint8 RGB ``[N, 3, H, W]`` -> fc2 features ``[N, 4096]`` float32 (always in eval mode);
    random weights when ``weights_dir`` is None."""

    num_features = 4096

    def __init__(self, weights_dir: str | Path | None = None) -> None:
        super().__init__()
        self.weights_file: Path | None = None
        net = torchvision.models.vgg16(weights=None)
        if weights_dir is not None:
            net.load_state_dict(load_weights("vgg16", weights_dir))
            self.weights_file = weights_path("vgg16", weights_dir)
        self.features, self.avgpool = net.features, net.avgpool
        self.fc = nn.Sequential(*list(net.classifier)[:5])  # fc1, relu, dropout, fc2, relu
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG16Features:
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"VGG-16 expects uint8 [N, 3, H, W], got {images.dtype} {list(images.shape)}")
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        x = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(224, 224), align_corners=False)
        mean = x.new_tensor(_MEAN).view(1, 3, 1, 1) * 255
        std = x.new_tensor(_STD).view(1, 3, 1, 1) * 255
        x = self.avgpool(self.features((x - mean) / std))
        return self.fc(torch.flatten(x, 1)).float()
