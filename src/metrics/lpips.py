"""LPIPS-VGG16 distance (Zhang et al. 2018, v0.1 linear heads) without the ``lpips`` package.

The trunk is torchvision's VGG-16 ``features`` loaded from ``vgg16-397923af.pth`` in
``paths.weights_dir``, fetched there on first use (:mod:`src.pretrained.weights`; only the
``features.*`` tensors are used).
The five 1x1 linear heads come from the file torchmetrics ships in its wheel
(``torchmetrics/functional/image/lpips_models/vgg.pth``), or from ``lpips-vgg-v0.1.pth`` in
``paths.weights_dir``. The distance: each of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 is
unit-normalised over channels, the squared difference is weighted per channel by the head,
averaged over space, and the five layers are summed. Used by PPL (Zhang et al. 2018, LPIPS).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from src.pretrained.weights import WEIGHTS, MissingWeightsError, load_weights

# Cut points of torchvision's vgg16().features after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
VGG_CUTS = (4, 9, 16, 23, 30)
VGG_CHANNELS = (64, 128, 256, 512, 512)
HEADS_FILENAME = "lpips-vgg-v0.1.pth"
# LPIPS' input scaling: images in [-1, 1] -> roughly ImageNet-normalised (its "ScalingLayer").
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def heads_file(weights_dir: str | Path) -> Path:
    """Where the LPIPS linear heads are read from: ``weights_dir`` first, then torchmetrics' wheel."""
    own = Path(weights_dir).expanduser() / HEADS_FILENAME
    if own.is_file():
        return own
    try:
        import torchmetrics

        shipped = Path(torchmetrics.__file__).parent / "functional" / "image" / "lpips_models" / "vgg.pth"
    except ImportError:
        shipped = None
    if shipped is not None and shipped.is_file():
        return shipped
    raise MissingWeightsError(
        f"LPIPS linear heads not found: neither {own} nor torchmetrics' bundled lpips_models/vgg.pth. "
        "Install torchmetrics (it ships them), or copy lpips/weights/v0.1/vgg.pth from "
        f"https://github.com/richzhang/PerceptualSimilarity to {own}."
    )


def _load_heads(path: Path) -> list[Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    heads = []
    for i, c in enumerate(VGG_CHANNELS):
        key = next((k for k in (f"lin{i}.model.1.weight", f"lin{i}.weight") if k in state), None)
        if key is None or tuple(state[key].shape) != (1, c, 1, 1):
            raise MissingWeightsError(f"{path}: expected LPIPS head lin{i}.model.1.weight of shape [1, {c}, 1, 1]")
        heads.append(state[key].float())
    return heads


def normalize_channels(x: Tensor, eps: float = 1e-10) -> Tensor:
    """Divide each spatial position's feature vector by its L2 norm (over channels)."""
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """``d(x0, x1)`` per image for RGB ``[N, 3, H, W]`` in [-1, 1]; H, W >= 16. Frozen, eval mode."""

    shift: Tensor  # buffers (register_buffer in __init__), as head0..head4, reached by name
    scale: Tensor

    def __init__(self, trunk: nn.Sequential, heads: list[Tensor]) -> None:
        super().__init__()
        bounds = (0, *VGG_CUTS)
        self.slices = nn.ModuleList(nn.Sequential(*trunk[a:b]) for a, b in zip(bounds[:-1], bounds[1:]))
        for i, w in enumerate(heads):
            self.register_buffer(f"head{i}", w)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    @classmethod
    def from_weights_dir(cls, weights_dir: str | Path) -> LPIPS:
        state = load_weights("vgg16", weights_dir)
        trunk = torchvision.models.vgg16(weights=None).features[: VGG_CUTS[-1]]
        own = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        missing = sorted(set(trunk.state_dict()) - set(own))
        if missing:
            raise MissingWeightsError(
                f"{Path(weights_dir).expanduser() / WEIGHTS['vgg16'].filename} lacks VGG-16 trunk tensors "
                f"(e.g. features.{missing[0]}); it is not torchvision's VGG-16 file"
            )
        trunk.load_state_dict({k: own[k] for k in trunk.state_dict()})
        return cls(trunk, _load_heads(heads_file(weights_dir)))

    def train(self, mode: bool = True) -> LPIPS:
        return super().train(False)

    def features(self, x: Tensor) -> list[Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS expects RGB [N, 3, H, W] in [-1, 1], got {list(x.shape)}")
        if min(x.shape[-2:]) < 16:
            raise ValueError(f"LPIPS-VGG needs images of at least 16x16 px, got {x.shape[-2]}x{x.shape[-1]}")
        h = (x.float() - self.shift) / self.scale
        out = []
        for s in self.slices:
            h = s(h)
            out.append(normalize_channels(h))
        return out

    def forward(self, x0: Tensor, x1: Tensor) -> Tensor:
        total: Tensor | None = None
        for i, (f0, f1) in enumerate(zip(self.features(x0), self.features(x1))):
            w = getattr(self, f"head{i}")
            term = ((f0 - f1).square() * w).sum(dim=1).mean(dim=(1, 2))
            total = term if total is None else total + term
        assert total is not None  # five VGG layers
        return total
