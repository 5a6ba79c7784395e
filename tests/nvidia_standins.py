"""Stand-ins in the format of NVIDIA's metric detectors, with random weights, for tests and the
metric parity check (tests/parity/nvidia_metrics.py): NVIDIA's files cannot be fetched here.

:class:`NvidiaVGG16StandIn` has the call interface stylegan2-ada-pytorch's metrics use on
``vgg16.pt`` (``metrics/precision_recall.py``: ``return_features=True`` on uint8 images;
``metrics/perceptual_path_length.py``: ``resize_images=False, return_lpips=True`` on float images
in [0, 255], whose vectors' squared differences sum to an LPIPS-like distance) and is saved as
TorchScript, like the real file. Its layers are small and random: only the interface is NVIDIA's.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class NvidiaVGG16StandIn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 4096)

    def forward(
        self, img: Tensor, resize_images: bool = True, return_lpips: bool = False, return_features: bool = False
    ) -> Tensor:
        x = img.to(torch.float32)
        if resize_images:
            x = F.interpolate(x, size=[32, 32], mode="area")
        x = (x - 127.5) / 127.5
        h1 = F.relu(self.conv1(x))
        h2 = F.relu(self.conv2(h1))
        if return_lpips:
            parts = []
            for h in (h1, h2):
                unit = h / (h.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
                parts.append((unit / (h.shape[2] * h.shape[3]) ** 0.5).flatten(1))
            return torch.cat(parts, dim=1)
        features = self.fc(F.adaptive_avg_pool2d(h2, [4, 4]).flatten(1))
        if return_features:
            return features
        return features.softmax(dim=1)


def save_nvidia_vgg16(path: Path, seed: int = 0) -> Path:
    """Write a random :class:`NvidiaVGG16StandIn` as a TorchScript archive at ``path``."""
    torch.manual_seed(seed)
    torch.jit.script(NvidiaVGG16StandIn().eval()).save(str(path))
    return path
