"""VGG-16 fc2 features for improved precision and recall (Kynkäänniemi et al. 2019).

NVIDIA's ``pr50k3_full`` feeds uint8 images to ``vgg16.pt`` (stylegan2-ada-pytorch
``metrics/precision_recall.py``, ``return_features=True``): the 4096-d second fully connected layer of
an ImageNet VGG-16. That file is a TorchScript archive, a program rather than a state dict, so it
cannot be read with ``torch.load(weights_only=True)``. gamut therefore has two feature networks:

``torchvision`` (default)
    torchvision's ImageNet VGG-16 (``vgg16-397923af.pth``, the file PPL's LPIPS already uses; read
    as a plain state dict): TF1-style bilinear resize to 224 px, ImageNet mean/std normalisation,
    fc2 after its ReLU (4096-d). Different ImageNet weights from NVIDIA's (torchvision's training vs
    the VGG authors' converted weights), so precision/recall are close to, not equal to, NVIDIA's:
    compare them among gamut runs, or use ``nvidia``.
``nvidia``
    NVIDIA's ``vgg16.pt`` itself, opened with ``torch.jit.load`` (TorchScript runs only the program
    stored in the file, not arbitrary Python, but only load the file from NVIDIA's URL).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from src.pretrained.weights import MissingWeightsError, load_weights, weights_path

FEATURE_NETS = ("torchvision", "nvidia")
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class VGG16Features(nn.Module):
    """uint8 RGB ``[N, 3, H, W]`` -> fc2 features ``[N, 4096]`` float32 (always in eval mode)."""

    num_features = 4096

    def __init__(self, weights_dir: str | Path | None = None, feature_net: str = "torchvision") -> None:
        super().__init__()
        if feature_net not in FEATURE_NETS:
            raise ValueError(f"feature_net={feature_net!r}: allowed values are {', '.join(FEATURE_NETS)}")
        self.feature_net = feature_net
        self.scripted = None
        self.weights_file: Path | None = None
        if feature_net == "nvidia":
            if weights_dir is None:
                raise ValueError("feature_net='nvidia' reads vgg16.pt from weights_dir; none was given")
            path = weights_path("vgg16_nvidia", weights_dir)
            try:
                with warnings.catch_warnings():  # torch marks TorchScript deprecated; NVIDIA ships it
                    warnings.simplefilter("ignore", FutureWarning)
                    self.scripted = torch.jit.load(str(path), map_location="cpu").eval()
            except Exception as e:  # truncated download, an HTML page, not TorchScript
                raise MissingWeightsError(f"{path} is not a TorchScript archive ({type(e).__name__}: {e})") from None
            self.weights_file = path
        else:
            import torchvision

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
        if self.scripted is not None:
            return self.scripted(images, return_features=True).float()
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        x = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(224, 224), align_corners=False)
        mean = x.new_tensor(_MEAN).view(1, 3, 1, 1) * 255
        std = x.new_tensor(_STD).view(1, 3, 1, 1) * 255
        x = self.avgpool(self.features((x - mean) / std))
        return self.fc(torch.flatten(x, 1)).float()
