"""Inception-v3 features for FID, KID and IS, and the feature bank every metric pass fills.

The network is torch-fidelity's port of the TF Inception graph of 2015-12-05 that NVIDIA's
metrics use (same weights file, same TF1-style bilinear resize to 299 px), fed uint8 RGB images
of any size. :class:`FeatureBank` collects any network's features over processes, so one pass
serves every metric and a cached real set; the formulas on them are in :mod:`src.metrics.formulas`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from src.pretrained.weights import load_weights, weights_path


class InceptionFeatures(nn.Module):
    """uint8 RGB ``[N, 3, H, W]`` -> pool3 features ``[N, 2048]`` float32; always in eval mode.

    ``forward(images, probs=True)`` appends the class probabilities ``[N, 1008]`` the Inception Score
    uses: softmax of the logits without the fc bias (torch-fidelity's ``logits_unbiased``, as the
    original TF Inception Score code computes them).

    Weights: ``weights-inception-2015-12-05-6726825d.pth`` in ``weights_dir``, fetched there on first
    use with its sha256 checked (:mod:`src.pretrained.weights`).
    """

    num_features = 2048

    def __init__(self, weights_dir: str | Path) -> None:
        super().__init__()
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "FID/KID need the torch-fidelity package (its Inception-v3 port); "
                "install it with `pip install torch-fidelity`"
            ) from None
        load_weights("inception", weights_dir)  # checks the file is a plain state dict (weights_only)
        path = weights_path("inception", weights_dir)
        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path)
        )
        self.net.requires_grad_(False)
        self.weights_file = path

    def train(self, mode: bool = True) -> InceptionFeatures:
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor, probs: bool = False) -> Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"Inception expects uint8 [N, 3, H, W], got {images.dtype} {list(images.shape)}")
        pool, logits = self.net(images)
        if not probs:
            return pool.float()
        return torch.cat([pool.float(), logits.float().softmax(dim=1)], dim=1)


_LOADED: dict[tuple, InceptionFeatures] = {}


def load_inception(weights_dir: str | Path) -> InceptionFeatures:
    """:class:`InceptionFeatures` for ``weights_dir``, built once per process and weights file
    (building it costs seconds); a changed file (size or mtime) is loaded again."""
    path = weights_path("inception", weights_dir).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _LOADED:
        _LOADED.clear()  # keep at most one copy in memory
        _LOADED[key] = InceptionFeatures(path.parent)
    return _LOADED[key]


class FeatureBank(Metric):
    """Collect features of images (or given features) on every process; ``compute`` gathers them all.

    ``update(images, index)`` runs ``extractor`` (when given) and keeps float32 features with each
    image's global number ``index``; ``compute`` returns the union of every rank's features ordered by
    that number (without ``index``: in the order they came), so the first ``n`` rows are images
    ``0..n-1`` however many processes made them.
    """

    full_state_update = False
    # states (add_state in __init__, "cat"): lists of batches; one Tensor while a synced compute() runs
    features: list[Tensor]
    index: list[Tensor]

    def __init__(self, extractor: nn.Module | None = None, num_features: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.extractor = extractor
        if num_features is None:
            assert extractor is not None, "FeatureBank needs an extractor or num_features"
            # an int class attribute (InceptionFeatures, VGG16Features); Module.__getattr__ types it Tensor | Module
            num_features = int(extractor.num_features)  # type: ignore[arg-type]
        self.num_features = int(num_features)
        self.add_state("features", default=[], dist_reduce_fx="cat")
        self.add_state("index", default=[], dist_reduce_fx="cat")
        self._seen = 0

    def update(self, x: Tensor, index: Tensor | None = None) -> None:
        feats = self.extractor(x) if self.extractor is not None else x
        if feats.ndim != 2 or feats.shape[1] != self.num_features:
            raise ValueError(f"expected features [N, {self.num_features}], got {list(feats.shape)}")
        if index is None:
            index = torch.arange(self._seen, self._seen + feats.shape[0])
        self._seen += feats.shape[0]
        self.features.append(feats.float())
        self.index.append(index.to(device=feats.device, dtype=torch.int64))

    def compute(self) -> Tensor:
        if isinstance(self.features, list) and not self.features:
            return torch.zeros(0, self.num_features, device=self.device)
        return dim_zero_cat(self.features)[dim_zero_cat(self.index).argsort()]
