"""Run a set of metrics on a generator: the one front end of ``src.eval``, the metrics callback and sweeps.

Metric names and their protocols: :mod:`src.metrics.protocols` (NVIDIA's ``fid50k_full``,
``kid50k_full``, ``pr50k3_full``, ``is50k``, ``ppl2_wend`` and shorter counts; gamut's configurable
``fid``, ``kid``, ``ppl*``). One pass of G_ema's images feeds every feature network the metrics need
(the first ``n`` images serve a metric of ``n``), one pass over the reals likewise, and the reals'
features are cached per data set, protocol and network. Each result is a record with its values
and its protocol; :func:`flatten` gives the flat keys loggers, ``trainer.callback_metrics`` and
sweeps use (e.g. ``fid50k_full``, ``pr50k3_full_precision``, ``is50k_mean``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from src.metrics import cache as feature_cache
from src.metrics.generated import generated_images, num_real_images, real_images
from src.metrics.inception import (
    FeatureBank,
    InceptionFeatures,
    fid_from_features,
    inception_score,
    kid_from_features,
    load_inception,
)
from src.metrics.lpips import LPIPS, heads_file
from src.metrics.ppl import SPACES, ppl_metrics
from src.metrics.precision_recall import precision_recall
from src.metrics.progress import Progress
from src.metrics.protocols import Protocol, parse_metrics, result_keys
from src.metrics.vgg16 import FEATURE_NETS, VGG16Features
from src.pretrained.weights import weights_path

log = logging.getLogger("gamut.metrics")
NETWORK_NAMES = {"inception": "Inception-v3 pool3", "vgg16": "VGG-16 fc2", "lpips": "LPIPS-VGG16"}


def needs_reals(metrics: Sequence[str | Protocol]) -> bool:
    return any((m.needs_reals if isinstance(m, Protocol) else parse_metrics([m])[0].needs_reals) for m in metrics)


def check_weights(metrics: Sequence[str | Protocol], weights_dir: str | Path, feature_net: str = "torchvision") -> None:
    """Fail before any work when a pretrained file the metrics need is missing (names the file and URL)."""
    protocols = [m if isinstance(m, Protocol) else parse_metrics([m])[0] for m in metrics]
    networks = {p.network for p in protocols}
    if "inception" in networks:
        weights_path("inception", weights_dir)
    if "vgg16" in networks:
        weights_path("vgg16_nvidia" if feature_net == "nvidia" else "vgg16", weights_dir)
    if "lpips" in networks:
        weights_path("vgg16", weights_dir)
        heads_file(weights_dir)


def _positive(key: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{key}={value!r}: expected a positive integer")
    return value


class MetricSuite:
    """Holds the settings and the (lazily loaded, reused) networks and real features.

    Args:
        metrics: names (:mod:`src.metrics.protocols`).
        weights_dir: ``paths.weights_dir``. cache_dir: ``paths.cache_dir`` (None: no disk cache).
        num_gen / num_real: the counts of the configurable ``fid`` / ``kid`` (num_real None: all reals).
        batch_size: images per forward. seed: latents, labels, noise, KID subsets.
        noise_mode: G_ema noise for every metric (``random``: NVIDIA's default).
        kid: ``{subsets, max_subset_size}``. ppl: ``{num_samples, epsilons, crop, batch_size}`` (the
        configurable ``ppl_*``; ``batch_size`` serves ``ppl2_wend`` too).
        pr: ``{feature_net: torchvision | nvidia, block}`` (:mod:`src.metrics.vgg16`).
        intra_fid: also report FID per class and its mean (``<name>_intra``) for conditional models.
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
        pr: dict | None = None,
        intra_fid: bool = False,
        num_workers: int = 0,
    ) -> None:
        self.weights_dir = str(weights_dir)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.num_gen = _positive("num_gen", num_gen)
        self.num_real = None if num_real is None else int(num_real)
        self.batch_size, self.seed, self.noise_mode = _positive("batch_size", batch_size), int(seed), noise_mode
        self.kid = {"subsets": 100, "max_subset_size": 1000, **dict(kid or {})}
        self.ppl = {"num_samples": 50000, "epsilons": [1e-4, 1e-2], "crop": False, "batch_size": 8, **dict(ppl or {})}
        self.pr = {"feature_net": "torchvision", "block": 4096, **dict(pr or {})}
        self.intra_fid = bool(intra_fid)
        self.num_workers = int(num_workers)
        _positive("ppl.num_samples", self.ppl["num_samples"])
        _positive("ppl.batch_size", self.ppl["batch_size"])
        if self.pr["feature_net"] not in FEATURE_NETS:
            raise ValueError(f"pr.feature_net={self.pr['feature_net']!r}: allowed values are {', '.join(FEATURE_NETS)}")
        settings = {"num_gen": self.num_gen, "num_real": self.num_real, "ppl": self.ppl}
        self.protocols = parse_metrics(metrics, settings=settings)
        self.metrics = [p.name for p in self.protocols]
        for p in self.protocols:
            if p.kind in ("fid", "kid") and p.num_gen < 2:
                raise ValueError(f"{p.name}: FID/KID need at least 2 generated images (num_gen={p.num_gen})")
        self._inception: InceptionFeatures | None = None
        self._vgg: VGG16Features | None = None
        self._lpips: LPIPS | None = None
        self._reals: dict[str, Tensor] = {}  # identity json -> features, kept between calls
        self.last_cache: dict = {}

    def result_keys(self) -> list[str]:
        """The flat keys :meth:`run` reports, known before anything runs (for ``optimized_metric``)."""
        return result_keys(self.protocols, self.intra_fid)

    # -- networks ------------------------------------------------------------------------------

    def network(self, name: str, device):
        if name == "inception":
            if self._inception is None:
                self._inception = load_inception(self.weights_dir)
            return self._inception.to(device)
        if name == "vgg16":
            if self._vgg is None:
                self._vgg = VGG16Features(self.weights_dir, self.pr["feature_net"])
            return self._vgg.to(device)
        if self._lpips is None:
            self._lpips = LPIPS.from_weights_dir(self.weights_dir)
        return self._lpips.to(device)

    def network_label(self, name: str) -> str:
        if name == "vgg16" and self.pr["feature_net"] == "nvidia":
            return "VGG-16 fc2 (NVIDIA's vgg16.pt)"
        return NETWORK_NAMES[name]

    # -- what will run -------------------------------------------------------------------------

    def real_count(self, p: Protocol, dataset: Dataset, mirror: bool) -> int:
        return num_real_images(dataset, p.max_real, mirror)

    def plan(self, dataset: Dataset | None, mirror: bool, device) -> list[str]:
        """One line per metric: how many images it uses, from which network, on which device."""
        lines = []
        for p in self.protocols:
            net = self.network_label(p.network)
            if p.kind == "ppl":
                crop = ", face crop" if p.crop else ""
                lines.append(
                    f"{p.name}: {p.num_samples} pairs ({2 * p.num_samples} images) in {SPACES[p.space][0].upper()}, "
                    f"{'t=0' if SPACES[p.space][1] == 'end' else 't~U[0,1)'}{crop}, {net}, on {device}"
                )
                continue
            text = f"{p.name}: {p.num_gen} generated (psi 1, noise {self.noise_mode})"
            if p.needs_reals and dataset is not None:
                n = self.real_count(p, dataset, mirror)
                flips = f", {len(dataset)} images + x-flips" if mirror else ""
                text += f" vs {n} reals{flips}"
            lines.append(f"{text}, {net}, on {device}")
        return lines

    # -- features ------------------------------------------------------------------------------

    def _extract(self, name: str, device, images: Tensor, with_probs: bool) -> Tensor:
        net = self.network(name, device)
        return net(images, probs=True) if (name == "inception" and with_probs) else net(images)

    def _width(self, name: str, with_probs: bool = False) -> int:
        return {"inception": 2048 + (1008 if with_probs else 0), "vgg16": 4096}[name]

    def real_features(
        self,
        networks: Sequence[str],
        dataset: Dataset,
        colorspace,
        counts: dict[str, int],
        device,
        rank: int = 0,
        world_size: int = 1,
        is_global_zero: bool = True,
        mirror: bool = False,
    ) -> dict[str, Tensor]:
        """Features of the first ``counts[net]`` reals for each network, with the label as the last
        column: from memory, the disk cache, or one pass over the data (then cached)."""
        out: dict[str, Tensor] = {}
        todo: dict[str, tuple[str, Path | None]] = {}
        self.last_cache = {}
        for name in networks:
            net = self.network(name, device)
            ident = feature_cache.dataset_identity(
                dataset, colorspace.name, counts[name], net.weights_file, self._cache_network(name), mirror
            )
            key = json.dumps(ident, sort_keys=True)
            path = None if self.cache_dir is None else feature_cache.cache_file(self.cache_dir, ident)
            feats = self._reals.get(key)
            hit: bool | str = "memory" if feats is not None else False
            if feats is None and path is not None:
                feats = feature_cache.load_features(path, ident)
                hit = feats is not None
            self.last_cache[name] = {"file": str(path) if path else None, "hit": hit}
            if feats is not None:
                self._reals[key] = feats.cpu()
                out[name] = feats.to(device)
            else:
                todo[name] = (key, path)
        if todo:
            num = max(counts[n] for n in todo)
            banks = {n: FeatureBank(num_features=self._width(n) + 1).to(device) for n in todo}
            label = " + ".join(self.network_label(n) for n in todo)
            with Progress(f"real images -> {label}", num, enabled=is_global_zero) as bar:
                for index, images, labels in real_images(
                    dataset, colorspace, num, self.batch_size, self.num_workers, device, rank, world_size, mirror
                ):
                    for n, bank in banks.items():
                        keep = index < counts[n]
                        if keep.any():
                            feats = self._extract(n, device, images[keep], False)
                            bank.update(torch.cat([feats, labels[keep, None].float()], dim=1), index[keep])
                    bar.update(images.shape[0] * world_size)
            for n, bank in banks.items():
                feats = bank.compute()
                key, path = todo[n]
                if path is not None and is_global_zero:
                    feature_cache.save_features(path, json.loads(key), feats)
                    log.info("cached real %s features of %d images in %s", n, feats.shape[0], path)
                self._reals[key] = feats.cpu()
                out[n] = feats
        return out

    def _cache_network(self, name: str) -> str:
        return f"vgg16-{self.pr['feature_net']}" if name == "vgg16" else name

    def generated_features(
        self,
        module,
        counts: dict[str, int],
        with_probs: bool,
        rank: int,
        world_size: int,
        is_global_zero: bool,
        class_label: int | None = None,
        seed: int | None = None,
        show: bool = True,
    ) -> dict[str, Tensor]:
        """Features of G_ema's first ``counts[net]`` images for each network, from one generation pass."""
        num = max(counts.values())
        banks = {
            n: FeatureBank(num_features=self._width(n, with_probs and n == "inception")).to(module.device)
            for n in counts
        }
        label = " + ".join(self.network_label(n) for n in counts)
        seed = self.seed if seed is None else seed
        with Progress(f"generated images -> {label}", num, enabled=is_global_zero and show) as bar:
            for index, images in generated_images(
                module, num, self.batch_size, seed, self.noise_mode, rank, world_size, class_label
            ):
                for n, bank in banks.items():
                    keep = index < counts[n]
                    if keep.any():
                        bank.update(self._extract(n, module.device, images[keep], with_probs), index[keep])
                bar.update(images.shape[0] * world_size)
        return {n: bank.compute() for n, bank in banks.items()}

    # -- run -----------------------------------------------------------------------------------

    def run(
        self,
        module,
        dataset: Dataset | None = None,
        rank: int = 0,
        world_size: int = 1,
        is_global_zero: bool = True,
        mirror: bool = False,
    ) -> dict[str, dict]:
        """Evaluate every metric on ``module.G_ema``; returns ``{name: record}`` where a record holds
        ``values`` (flat key -> number), ``protocol`` (counts, mirror, psi, network, ...) and ``time_s``.

        Runs under its own RNG state (seeded with ``seed``), so training's random stream is untouched.
        ``mirror``: the reals include their x-flips (the data's ``xflip``, NVIDIA's ``--mirror=1``).
        """
        device = module.device
        if any(p.needs_reals for p in self.protocols) and dataset is None:
            raise ValueError(f"{', '.join(p.name for p in self.protocols if p.needs_reals)} need the real images")
        if is_global_zero:
            for line in self.plan(dataset, mirror, device):
                log.info("metric %s", line)
        results: dict[str, dict] = {}
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            images = [p for p in self.protocols if p.kind != "ppl"]
            if images:
                results.update(self._image_metrics(module, images, dataset, rank, world_size, is_global_zero, mirror))
            for p in self.protocols:
                if p.kind == "ppl":
                    results.update(self._ppl(module, p, rank, world_size, is_global_zero))
        return {p.name: results[p.name] for p in self.protocols}

    def _image_metrics(self, module, protocols, dataset, rank, world_size, is_global_zero, mirror) -> dict[str, dict]:
        device = module.device
        gen_counts: dict[str, int] = {}
        real_counts: dict[str, int] = {}
        for p in protocols:
            gen_counts[p.network] = max(gen_counts.get(p.network, 0), p.num_gen)
            if p.needs_reals:
                n = self.real_count(p, dataset, mirror)
                if n < 2:
                    raise ValueError(f"{p.name} needs at least 2 real images; the data set has {len(dataset)}")
                real_counts[p.network] = max(real_counts.get(p.network, 0), n)
        with_probs = any(p.kind == "is" for p in protocols)
        start = time.perf_counter()
        real = {}
        if real_counts:
            real = self.real_features(
                list(real_counts),
                dataset,
                module.colorspace,
                real_counts,
                device,
                rank,
                world_size,
                is_global_zero,
                mirror,
            )
        took_real = time.perf_counter() - start
        start = time.perf_counter()
        fake = self.generated_features(module, gen_counts, with_probs, rank, world_size, is_global_zero)
        took_gen = time.perf_counter() - start
        results = {}
        for p in protocols:
            start = time.perf_counter()
            g = fake[p.network][: p.num_gen]
            protocol = {
                "kind": p.kind,
                "num_gen": int(g.shape[0]),
                "psi": 1.0,
                "noise_mode": self.noise_mode,
                "seed": self.seed,
                "network": self.network_label(p.network),
            }
            values: dict[str, float] = {}
            extra: dict = {}
            if p.needs_reals:
                r = real[p.network][: self.real_count(p, dataset, mirror)]
                feats, labels = r[:, :-1], r[:, -1].long()
                protocol.update(
                    num_real=int(r.shape[0]),
                    max_real=p.max_real,
                    mirror=bool(mirror),
                    real_cache=dict(self.last_cache.get(p.network, {})),
                )
            if p.kind == "fid":
                values[p.name] = fid_from_features(feats, g[:, :2048])
                if self.intra_fid and module.num_classes:
                    per_class = self._intra_fid(module, p, feats, labels, rank, world_size, is_global_zero)
                    extra["per_class"] = per_class
                    if per_class:
                        values[f"{p.name}_intra"] = sum(per_class.values()) / len(per_class)
            elif p.kind == "kid":
                mean, std, m = kid_from_features(
                    feats, g[:, :2048], int(self.kid["subsets"]), int(self.kid["max_subset_size"]), self.seed
                )
                values[p.name], values[f"{p.name}_std"] = mean, std
                protocol.update(subsets=int(self.kid["subsets"]), subset_size=m)
            elif p.kind == "pr":
                precision, recall = precision_recall(feats, g, p.nhood, int(self.pr["block"]))
                values[f"{p.name}_precision"], values[f"{p.name}_recall"] = precision, recall
                protocol.update(nhood=p.nhood, feature_net=self.pr["feature_net"])
            elif p.kind == "is":
                mean, std = inception_score(g[:, 2048:], p.splits)
                values[f"{p.name}_mean"], values[f"{p.name}_std"] = mean, std
                protocol.update(splits=p.splits)
            took = took_gen + (took_real if p.needs_reals else 0.0) + time.perf_counter() - start
            results[p.name] = {"values": values, "protocol": protocol, **extra, "time_s": round(took, 3)}
        return results

    def _intra_fid(self, module, p: Protocol, real: Tensor, labels: Tensor, rank, world_size, is_global_zero):
        """FID per class: each class's reals against as many G_ema images of that class (at least 2)."""
        per_class: dict[int, float] = {}
        classes = sorted(int(c) for c in labels.unique())
        with Progress(f"{p.name} per class", len(classes), unit="classes", enabled=is_global_zero) as bar:
            for c in classes:
                rows = real[labels == c]
                if rows.shape[0] >= 2:
                    fake = self.generated_features(
                        module,
                        {"inception": rows.shape[0]},
                        False,
                        rank,
                        world_size,
                        is_global_zero,
                        class_label=c,
                        seed=self.seed + 1 + c,
                        show=False,
                    )["inception"]
                    per_class[c] = fid_from_features(rows, fake)
                bar.update(1)
        return per_class

    def _ppl(self, module, p: Protocol, rank, world_size, is_global_zero) -> dict[str, dict]:
        start = time.perf_counter()
        lpips = self.network("lpips", module.device)
        with Progress(f"{p.name} pairs", p.num_samples, unit="pairs", enabled=is_global_zero) as bar:
            values = ppl_metrics(
                module,
                lpips,
                [p.space],
                list(p.epsilons),
                p.num_samples,
                int(self.ppl["batch_size"]),
                self.seed,
                p.crop,
                self.noise_mode,
                rank,
                world_size,
                progress=bar.update,
            )
        kind, sampling = SPACES[p.space]
        if not p.configurable:  # ppl2_wend: one eps, named after the protocol
            values = {p.name: next(iter(values.values()))}
        protocol = {
            "kind": "ppl",
            "space": kind,
            "sampling": sampling,
            "epsilons": list(p.epsilons),
            "num_samples": p.num_samples,
            "crop": p.crop,
            "percentiles": [1, 99],
            "noise": "fixed per pair",
            "seed": self.seed,
            "network": self.network_label("lpips"),
        }
        return {p.name: {"values": values, "protocol": protocol, "time_s": round(time.perf_counter() - start, 3)}}


def flatten(results: dict[str, dict]) -> dict[str, float]:
    """``{"fid50k_full": 3.1, "kid50k_full": 0.001, "kid50k_full_std": 1e-4, "pr50k3_full_precision": 0.7, ...}``."""
    flat: dict[str, float] = {}
    for record in results.values():
        flat.update({k: float(v) for k, v in record["values"].items()})
    return flat
