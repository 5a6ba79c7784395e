"""Inception-v3 features and the FID / KID / IS formulas on them (Heusel et al. 2017; Binkowski et al.
2018; Salimans et al. 2016).

The network is torch-fidelity's port of the TF Inception graph of 2015-12-05 that NVIDIA's
metrics use (same weights file, same TF1-style bilinear resize to 299 px), fed uint8 RGB images
of any size. FID and KID themselves are torchmetrics' ``FrechetInceptionDistance`` and
``KernelInceptionDistance``, given features computed once by :class:`FeatureBank` through a
pass-through extractor, so one Inception pass serves both metrics and a cached real set.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities import dim_zero_cat

from src.pretrained.weights import load_weights, weights_path


class InceptionFeatures(nn.Module):
    """uint8 RGB ``[N, 3, H, W]`` -> pool3 features ``[N, 2048]`` float32; always in eval mode.

    ``forward(images, probs=True)`` appends the class probabilities ``[N, 1008]`` the Inception Score
    uses: softmax of the logits without the fc bias (torch-fidelity's ``logits_unbiased``, as the
    original TF Inception Score code computes them).

    Weights: ``weights-inception-2015-12-05-6726825d.pth`` in ``weights_dir``
    (:mod:`src.pretrained.weights`).
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


class Precomputed(nn.Module):
    """A feature extractor for torchmetrics that returns its input: the features are already made."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, features: Tensor) -> Tensor:
        return features


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


def fid_from_features(real: Tensor, fake: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (torchmetrics, float64 sums).

    ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 sqrtm(S_r S_g))`` (Heusel et al. 2017). Needs >= 2 rows each.
    """
    for name, f in (("real", real), ("generated", fake)):
        if f.shape[0] < 2:
            raise ValueError(f"FID needs at least 2 {name} samples, got {f.shape[0]}")
    fid = FrechetInceptionDistance(feature=Precomputed(real.shape[1]), sync_on_compute=False).to(real.device)
    fid.update(real, real=True)
    fid.update(fake.to(real.device), real=False)
    return float(fid.compute())


def kid_from_features(
    real: Tensor, fake: Tensor, subsets: int = 100, max_subset_size: int = 1000, seed: int = 0
) -> tuple[float, float, int]:
    """KID: unbiased MMD^2 with kernel ``(x.y/d + 1)^3``, mean (and std) over ``subsets`` random subsets
    of size ``min(max_subset_size, n_real, n_gen)`` (NVIDIA's KID). Returns (mean, std, subset size).

    The subsets are drawn from a generator seeded with ``seed``; the global RNG is left as it was.
    """
    m = min(max_subset_size, real.shape[0], fake.shape[0])
    if m < 2:
        raise ValueError(f"KID needs at least 2 real and 2 generated samples, got {real.shape[0]} and {fake.shape[0]}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Metric `Kernel Inception Distance`.*")
        kid = KernelInceptionDistance(
            feature=Precomputed(real.shape[1]), subsets=subsets, subset_size=m, sync_on_compute=False
        ).to(real.device)
    kid.update(real.double(), real=True)  # float64 like NVIDIA's numpy code: the MMD terms nearly cancel
    kid.update(fake.to(real.device).double(), real=False)
    with torch.random.fork_rng(devices=[]):  # torchmetrics draws the subsets with CPU randperm
        torch.manual_seed(seed)
        mean, std = kid.compute()
    return float(mean), float(std), m


def inception_score(probs: Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) of class probabilities ``[N, C]``: mean and std over splits.

    Per split: ``exp(mean_x KL(p(y|x) || p(y)))`` with ``p(y)`` the split's mean; NVIDIA's
    ``metrics/inception_score.py`` splits ``[i*N/splits, (i+1)*N/splits)`` and reports mean and std.
    """
    n = probs.shape[0]
    if n < splits:
        raise ValueError(f"Inception Score with {splits} splits needs at least {splits} images, got {n}")
    p = probs.double()
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        kl = torch.special.xlogy(part, part) - torch.special.xlogy(part, part.mean(dim=0, keepdim=True))
        scores.append(torch.exp(kl.sum(dim=1).mean()))
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(unbiased=False))
