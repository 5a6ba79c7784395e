"""Run a set of metrics on a generator: the shared core of ``src.eval`` and the metrics callback.

Metric names (choose any; ``ppl`` means all three PPL spaces):

================  ===============================================================================
``fid``           FID, Inception pool3, ``num_gen`` G_ema images vs ``num_real`` reals (null: all)
``kid``           KID (mean; ``kid_std`` alongside), same features as FID
``ppl_zfull``     PPL, slerp in Z, t ~ U[0, 1)           (SEGan_Pytorch README)
``ppl_wfull``     PPL, lerp in W, t ~ U[0, 1)            (SEGan_Pytorch README)
``ppl_wend``      PPL, lerp in W, t = 0                  (StyleGAN2 paper's PPL)
================  ===============================================================================

Each PPL name yields one result per eps (:func:`src.metrics.ppl.result_key`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from src.metrics import cache as feature_cache
from src.metrics.generated import generated_images, num_real_images, real_images
from src.metrics.inception import FeatureBank, InceptionFeatures, fid_from_features, kid_from_features, load_inception
from src.metrics.lpips import LPIPS, heads_file
from src.metrics.ppl import SPACES, ppl_metrics
from src.pretrained.weights import weights_path

log = logging.getLogger(__name__)

METRIC_NAMES: tuple[str, ...] = ("fid", "kid", "ppl", *(f"ppl_{s}" for s in SPACES))


def parse_metrics(names: str | Iterable[str] | None, key: str = "metrics") -> list[str]:
    """Validate metric names; expand ``ppl`` to its three spaces; keep the order, drop repeats."""
    if names is None:
        names = []
    if isinstance(names, str):
        names = [n for n in names.replace(",", " ").split() if n]
    out: list[str] = []
    for n in names:
        if n not in METRIC_NAMES:
            raise ValueError(f"{key}: unknown metric {n!r}; valid choices: {', '.join(METRIC_NAMES)}")
        for m in [f"ppl_{s}" for s in SPACES] if n == "ppl" else [n]:
            if m not in out:
                out.append(m)
    if not out:
        raise ValueError(f"{key} is empty; valid choices: {', '.join(METRIC_NAMES)}")
    return out


def needs_reals(metrics: Sequence[str]) -> bool:
    return any(m in ("fid", "kid") for m in metrics)


def check_weights(metrics: Sequence[str], weights_dir: str | Path) -> None:
    """Fail before any work when a pretrained file the metrics need is missing (names the file)."""
    if needs_reals(metrics):
        weights_path("inception", weights_dir)
    if any(m.startswith("ppl_") for m in metrics):
        weights_path("vgg16", weights_dir)
        heads_file(weights_dir)


class MetricSuite:
    """Holds the settings and the (lazily loaded, reused) networks and real features.

    Args:
        metrics: names (see module docstring).
        weights_dir: ``paths.weights_dir``. cache_dir: ``paths.cache_dir`` (None: no disk cache).
        num_gen: generated images for FID/KID. num_real: reals (None: the whole data set).
        batch_size: images per forward. seed: latents, labels, noise, KID subsets.
        noise_mode: G_ema noise for FID/KID images and PPL (``random``: NVIDIA's default).
        kid: ``{subsets, max_subset_size}``. ppl: ``{num_samples, epsilons, crop, batch_size}``.
        num_workers: data loader workers for the reals.
    """

    def __init__(
        self,
        metrics: Sequence[str],
        weights_dir: str | Path,
        cache_dir: str | Path | None = None,
        num_gen: int = 50000,
        num_real: int | None = None,
        batch_size: int = 32,
        seed: int = 0,
        noise_mode: str = "random",
        kid: dict | None = None,
        ppl: dict | None = None,
        num_workers: int = 0,
    ) -> None:
        self.metrics = parse_metrics(metrics)
        self.weights_dir = str(weights_dir)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.num_gen, self.num_real = int(num_gen), None if num_real is None else int(num_real)
        self.batch_size, self.seed, self.noise_mode = int(batch_size), int(seed), noise_mode
        self.kid = {"subsets": 100, "max_subset_size": 1000, **dict(kid or {})}
        self.ppl = {"num_samples": 50000, "epsilons": [1e-4, 1e-2], "crop": False, "batch_size": 8, **dict(ppl or {})}
        self.num_workers = int(num_workers)
        for key, value in (
            ("num_gen", self.num_gen),
            ("batch_size", self.batch_size),
            ("ppl.num_samples", self.ppl["num_samples"]),
            ("ppl.batch_size", self.ppl["batch_size"]),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{key}={value!r}: expected a positive integer")
        if needs_reals(self.metrics) and self.num_gen < 2:
            raise ValueError(f"num_gen={self.num_gen}: FID/KID need at least 2 generated images")
        self._inception: InceptionFeatures | None = None
        self._lpips: LPIPS | None = None
        self._reals: dict[str, torch.Tensor] = {}  # identity json -> features, kept between calls
        self.last_cache: dict = {}

    # -- networks ------------------------------------------------------------------------------

    def inception(self, device) -> InceptionFeatures:
        if self._inception is None:
            self._inception = load_inception(self.weights_dir)
        return self._inception.to(device)

    def lpips(self, device) -> LPIPS:
        if self._lpips is None:
            self._lpips = LPIPS.from_weights_dir(self.weights_dir)
        return self._lpips.to(device)

    # -- features ------------------------------------------------------------------------------

    def real_features(
        self, dataset: Dataset, colorspace, device, rank: int = 0, world_size: int = 1, is_global_zero: bool = True
    ) -> torch.Tensor:
        """Inception features of the reals: from memory, the disk cache, or computed (then cached)."""
        n = num_real_images(dataset, self.num_real)
        if n < 2:
            raise ValueError(f"FID/KID need at least 2 real images; the data set has {len(dataset)}")
        extractor = self.inception(device)
        identity = feature_cache.dataset_identity(dataset, colorspace.name, n, extractor.weights_file)
        key = json.dumps(identity, sort_keys=True)
        path = None if self.cache_dir is None else feature_cache.cache_file(self.cache_dir, identity)
        if key in self._reals:
            self.last_cache = {"file": str(path) if path else None, "hit": "memory"}
            return self._reals[key].to(device)
        feats = None if path is None else feature_cache.load_features(path, identity)
        if feats is not None:
            self.last_cache = {"file": str(path), "hit": True}
        else:
            bank = FeatureBank(extractor).to(device)
            for images in real_images(
                dataset, colorspace, n, self.batch_size, self.num_workers, device, rank, world_size
            ):
                bank.update(images)
            feats = bank.compute()
            if path is not None and is_global_zero:
                feature_cache.save_features(path, identity, feats)
                log.info("cached real features of %d images in %s", feats.shape[0], path)
            self.last_cache = {"file": str(path) if path else None, "hit": False}
        self._reals[key] = feats.cpu()
        return feats.to(device)

    # -- run -----------------------------------------------------------------------------------

    def run(
        self, module, dataset: Dataset | None = None, rank: int = 0, world_size: int = 1, is_global_zero: bool = True
    ) -> dict[str, dict]:
        """Evaluate every metric on ``module.G_ema``; returns ``{name: {"value": ..., settings...}}``.

        Runs under its own RNG state (seeded with ``seed``), so training's random stream is untouched.
        """
        device = module.device
        results: dict[str, dict] = {}
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            if needs_reals(self.metrics):
                if dataset is None:
                    raise ValueError("FID/KID need the real images: no data set given")
                start = time.perf_counter()
                real = self.real_features(dataset, module.colorspace, device, rank, world_size, is_global_zero)
                bank = FeatureBank(self.inception(device)).to(device)
                for images in generated_images(
                    module, self.num_gen, self.batch_size, self.seed, self.noise_mode, rank, world_size
                ):
                    bank.update(images)
                fake = bank.compute()
                common = {
                    "num_gen": int(fake.shape[0]),
                    "num_real": int(real.shape[0]),
                    "psi": 1.0,
                    "noise_mode": self.noise_mode,
                    "seed": self.seed,
                    "real_cache": dict(self.last_cache),
                }
                if "fid" in self.metrics:
                    results["fid"] = {"value": fid_from_features(real, fake), **common}
                if "kid" in self.metrics:
                    mean, std, m = kid_from_features(
                        real, fake, int(self.kid["subsets"]), int(self.kid["max_subset_size"]), self.seed
                    )
                    results["kid"] = {
                        "value": mean,
                        "std": std,
                        "subsets": int(self.kid["subsets"]),
                        "subset_size": m,
                        **common,
                    }
                took = time.perf_counter() - start
                for k in ("fid", "kid"):
                    if k in results:
                        results[k]["time_s"] = round(took, 3)  # one shared feature pass
            spaces = [m.removeprefix("ppl_") for m in self.metrics if m.startswith("ppl_")]
            if spaces:
                lpips = self.lpips(device)
                epsilons = [float(e) for e in self.ppl["epsilons"]]
                for space in spaces:
                    start = time.perf_counter()
                    values = ppl_metrics(
                        module,
                        lpips,
                        [space],
                        epsilons,
                        int(self.ppl["num_samples"]),
                        int(self.ppl["batch_size"]),
                        self.seed,
                        bool(self.ppl["crop"]),
                        self.noise_mode,
                        rank,
                        world_size,
                    )
                    took = time.perf_counter() - start
                    kind, sampling = SPACES[space]
                    for (key, value), eps in zip(values.items(), epsilons):
                        results[key] = {
                            "value": value,
                            "space": kind,
                            "sampling": sampling,
                            "epsilon": eps,
                            "num_samples": int(self.ppl["num_samples"]),
                            "crop": bool(self.ppl["crop"]),
                            "percentiles": [1, 99],
                            "noise": "fixed per pair",
                            "seed": self.seed,
                            "time_s": round(took, 3),
                        }
        return results


def flatten(results: dict[str, dict]) -> dict[str, float]:
    """``{"fid": 12.3, "kid": 0.01, "kid_std": 0.001, "ppl_wend": 140.2, ...}``."""
    flat = {}
    for name, r in results.items():
        flat[name] = float(r["value"])
        if "std" in r:
            flat[f"{name}_std"] = float(r["std"])
    return flat
