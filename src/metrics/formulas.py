"""The formulas of NVIDIA's metric set on feature arrays, computed as stylegan2-ada-pytorch's
``metrics/`` modules compute them, so a gamut number equals NVIDIA's on the same features: FID
(Heusel et al. 2017; ``frechet_inception_distance.py`` with ``metric_utils.FeatureStats``), KID
(Binkowski et al. 2018; ``kernel_inception_distance.py``) and the Inception Score (Salimans et al.
2016; ``inception_score.py``). Precision/recall: :mod:`src.metrics.precision_recall`.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch
from torch import Tensor


def mean_cov(features: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ``[N, D]`` features as NVIDIA's ``FeatureStats.get_mean_cov``
    (stylegan2-ada-pytorch ``metrics/metric_utils.py``): float64 sums, both divided by N (the
    maximum-likelihood covariance, not the unbiased N - 1)."""
    x = features.detach().cpu().float().numpy().astype(np.float64)
    n = x.shape[0]
    mean = x.sum(axis=0) / n
    cov = (x.T @ x) / n - np.outer(mean, mean)
    return mean, cov


def frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 sqrtm(S_b S_a))`` (Heusel et al. 2017), with scipy's
    ``sqrtm`` of the product in NVIDIA's order (generated times real) and its real part, as
    ``metrics/frechet_inception_distance.py`` computes it."""
    m = float(np.square(mu_a - mu_b).sum())
    with warnings.catch_warnings():  # fewer samples than features: a singular product, as NVIDIA's gets too
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root, _ = scipy.linalg.sqrtm(np.dot(cov_b, cov_a), disp=False)
    return float(np.real(m + np.trace(cov_a + cov_b - root * 2)))


def fid_from_features(real: Tensor, fake: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets, exactly as NVIDIA computes FID
    (:func:`mean_cov`, :func:`frechet_distance`). Needs >= 2 rows each."""
    for name, f in (("real", real), ("generated", fake)):
        if f.shape[0] < 2:
            raise ValueError(f"FID needs at least 2 {name} samples, got {f.shape[0]}")
    mu_r, cov_r = mean_cov(real)
    mu_g, cov_g = mean_cov(fake)
    return frechet_distance(mu_r, cov_r, mu_g, cov_g)


def kid_from_features(
    real: Tensor, fake: Tensor, subsets: int = 100, max_subset_size: int = 1000, seed: int = 0
) -> tuple[float, float, int]:
    """KID (Binkowski et al. 2018) as NVIDIA's ``metrics/kernel_inception_distance.py``: the unbiased
    MMD^2 with kernel ``(x.y/d + 1)^3`` on ``subsets`` pairs of random subsets of size
    ``m = min(max_subset_size, n_real, n_gen)``, in float32 like NVIDIA's arrays. Returns (mean,
    std over the subsets, m); NVIDIA reports the mean.

    Each subset draws ``m`` generated rows, then ``m`` real rows, without replacement, from
    ``numpy.random.RandomState(seed)`` — NVIDIA's draws from numpy's global state in that order, so
    seeding that state with ``seed`` reproduces NVIDIA's subsets exactly. The global RNGs are untouched.
    """
    m = min(max_subset_size, real.shape[0], fake.shape[0])
    if m < 2:
        raise ValueError(f"KID needs at least 2 real and 2 generated samples, got {real.shape[0]} and {fake.shape[0]}")
    x_all = fake.detach().cpu().float().numpy()
    y_all = real.detach().cpu().float().numpy()
    d = y_all.shape[1]
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        x = x_all[rng.choice(x_all.shape[0], m, replace=False)]
        y = y_all[rng.choice(y_all.shape[0], m, replace=False)]
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        values.append(((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m) / m)
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std()), m


def inception_score(probs: Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) of class probabilities ``[N, C]``: mean and std over splits.

    Per split: ``exp(mean_x KL(p(y|x) || p(y)))`` with ``p(y)`` the split's mean; NVIDIA's
    ``metrics/inception_score.py`` splits ``[i*N/splits, (i+1)*N/splits)`` and reports mean and std.
    """
    n = probs.shape[0]
    if n < splits:
        raise ValueError(f"Inception Score with {splits} splits needs at least {splits} images, got {n}")
    p = probs.detach().cpu().float()  # float32, as NVIDIA's arrays
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        # xlogy: 0 log 0 = 0 where NVIDIA's np.log gives nan (a probability that underflowed to 0)
        kl = torch.special.xlogy(part, part) - torch.special.xlogy(part, part.mean(dim=0, keepdim=True))
        scores.append(float(torch.exp(kl.sum(dim=1).mean())))
    return float(np.mean(scores)), float(np.std(scores))
