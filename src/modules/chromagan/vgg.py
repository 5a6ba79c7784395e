"""VGG-16 in ChromaGAN: the generator's trunk (conv1_1 ... conv4_3 + ReLU) and the frozen teacher.

Both read torchvision's ImageNet file ``vgg16-397923af.pth`` from ``paths.weights_dir`` through the
one weights loader (:mod:`src.pretrained.weights`), which fetches it there on first use (sha256
checked) unless ``paths.download_weights=false`` or ``GAMUT_OFFLINE=1``. The trunk's layer indices
equal torchvision's ``vgg16().features[:23]``, so ``features.<i>.*`` tensors load into ``trunk.<i>``.

Input scaling (``model.vgg_input_norm``): ``imagenet`` standardises the tiled ``[L/100]x3``
image with torchvision's mean/std, what the ImageNet weights expect; ``none`` reproduces the
official code, which feeds ``[0, 1]`` straight in.
"""

from __future__ import annotations

import torch
import torchvision
from torch import Tensor, nn

from src.pretrained.weights import MissingWeightsError, load_weights

__all__ = ["VGG_INPUT_NORMS", "vgg16_trunk", "load_trunk_weights", "to_vgg_input", "Teacher"]

VGG_INPUT_NORMS = ("imagenet", "none")
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
# torchvision's vgg16 "D" configuration up to conv4_3: channels, "M" = 2x2 max-pool.
_CONV4_3 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)


def vgg16_trunk(width: float = 1.0) -> nn.Sequential:
    """VGG-16 ``features[:23]`` (ends with the ReLU after conv4_3): ``[N, 3, H, W] -> [N, 512w, H/8, W/8]``.

    ``width`` scales every channel count (1.0 = VGG-16; other widths cannot load ImageNet weights).
    """
    layers: list[nn.Module] = []
    c_in = 3
    for item in _CONV4_3:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            c_out = max(1, round(int(item) * width))
            layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c_in = c_out
    trunk = nn.Sequential(*layers)
    for m in trunk.modules():  # torchvision's VGG init
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:  # always: every trunk conv has a bias
                nn.init.zeros_(m.bias)
    return trunk


def _load_vgg16(weights_dir: str, purpose: str) -> dict[str, Tensor]:
    try:
        return load_weights("vgg16", weights_dir)
    except MissingWeightsError as e:
        raise MissingWeightsError(f"{e} [{purpose}]") from None


def load_trunk_weights(trunk: nn.Sequential, weights_dir: str) -> None:
    """Copy torchvision's ImageNet ``features.0 ... features.21`` into ``trunk``."""
    state = _load_vgg16(weights_dir, "ChromaGAN's VGG-16 trunk; model.trunk_pretrained=false trains it from scratch")
    own = trunk.state_dict()
    try:
        trunk.load_state_dict({k: state[f"features.{k}"] for k in own})
    except (KeyError, RuntimeError) as e:
        raise MissingWeightsError(
            f"the VGG-16 file in paths.weights_dir={weights_dir!r} does not fit ChromaGAN's "
            f"trunk ({type(e).__name__}: {e}); it must be torchvision's vgg16-397923af.pth "
            "and model.width must be 1.0"
        ) from None


def to_vgg_input(l_in: Tensor, norm: str) -> Tensor:
    """``L_in [N, 1, H, W]`` in ``[0, 1]`` -> ``[N, 3, H, W]`` VGG input (tiled, optionally standardised)."""
    if norm not in VGG_INPUT_NORMS:
        raise ValueError(f"model.vgg_input_norm={norm!r}: allowed values are {', '.join(VGG_INPUT_NORMS)}")
    x = l_in.expand(-1, 3, -1, -1)
    if norm == "imagenet":
        mean = torch.tensor(_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
    return x


class Teacher:
    """The frozen ImageNet VGG-16 classifier whose class distribution the student head matches.

    Deliberately not an ``nn.Module`` attribute of the LightningModule: it is never trained, never
    synced across ranks and never written into checkpoints (138M parameters the file can be re-read
    for). It stays in eval mode (torchvision's VGG has dropout) and runs under ``no_grad``.

    Args:
        weights_dir: folder holding ``vgg16-397923af.pth``.
        columns: ImageNet-1k class indices to keep (e.g. TinyImageNet's 200), or ``None`` for all 1000.
        input_norm: see :func:`to_vgg_input`.
    """

    def __init__(self, weights_dir: str, columns: Tensor | None = None, input_norm: str = "imagenet") -> None:
        net = torchvision.models.vgg16(weights=None)
        state = _load_vgg16(
            weights_dir, "ChromaGAN's class-distribution teacher; model.loss.lambda_kl=0 runs without it"
        )
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise MissingWeightsError(
                f"the VGG-16 file in paths.weights_dir={weights_dir!r} is not torchvision's "
                f"full VGG-16 classifier ({e})"
            ) from None
        self.net = net.eval().requires_grad_(False)
        self.columns = None if columns is None else columns.clone().long()
        self.input_norm = input_norm

    @torch.no_grad()
    def __call__(self, l_in: Tensor) -> Tensor:
        """Teacher logits ``[N, K]`` over the kept columns for ``L_in [N, 1, H, W]``."""
        p = next(self.net.parameters())
        if p.device != l_in.device:
            self.net.to(l_in.device)
        logits = self.net(to_vgg_input(l_in.float(), self.input_norm))
        if self.columns is not None:
            logits = logits.index_select(1, self.columns.to(logits.device))
        return logits.float()
