"""Feature-network files with random weights, in the formats the metrics read, for tests and the
metric parity check (tests/parity/nvidia_metrics.py): the real files cannot be fetched here.

:func:`save_random_inception` writes torch-fidelity's Inception-v3 state dict (the layout of
``weights-inception-2015-12-05-6726825d.pth``).

:class:`NvidiaVGG16StandIn` has the call interface stylegan2-ada-pytorch's metrics use on
``vgg16.pt`` (``metrics/precision_recall.py``: ``return_features=True`` on uint8 images;
``metrics/perceptual_path_length.py``: ``resize_images=False, return_lpips=True`` on float images
in [0, 255], whose vectors' squared differences sum to an LPIPS-like distance) and is saved as
TorchScript, like the real file. Its layers are small and random: only the interface is NVIDIA's.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def save_random_inception(path: Path, seed: int = 0, varied: bool = False) -> Path:
    """Write a randomly initialised torch-fidelity Inception-v3 state dict at ``path`` (nothing is
    downloaded). ``varied``: variance-preserving convolutions and a sharper classifier, so that 40
    layers deep the features of different images still differ and the Inception Score is above 1
    (the parity check needs values that can disagree; plumbing tests do not)."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    torch.manual_seed(seed)
    cls = tf_inception.FeatureExtractorInceptionV3
    with (
        mock.patch.object(tf_inception, "load_state_dict_from_url", lambda *a, **k: {}),
        mock.patch.object(cls, "load_state_dict", lambda self, state: None),
    ):
        net = cls("inception-v3-compat", ["2048"])
    if varied:
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        with torch.no_grad():
            net.fc.weight.mul_(30.0)
    torch.save(net.state_dict(), path)
    return path


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
