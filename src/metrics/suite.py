"""Run a set of metrics on a generator: the one front end of ``src.eval``, the metrics callback and sweeps.

Metric names and their protocols: :mod:`src.metrics.protocols` (NVIDIA's ``fid50k_full``,
``kid50k_full``, ``pr50k3_full``, ``is50k``, ``ppl2_wend`` and shorter counts; gamut's configurable
``fid``, ``kid``, ``ppl*``), each answered by a kind in :mod:`src.metrics.registry` that carries
its feature network and compute function: the suite looks the kind up, never branches on it. One
pass of G_ema's images feeds every feature network the metrics need (the first ``n`` images serve
a metric of ``n``), one pass over the reals likewise, and the reals' features are cached per data
set, protocol and network; a kind that draws its own images (PPL) runs after them. Each result is
a record with its values and its protocol; :func:`flatten` gives the flat keys loggers,
``trainer.callback_metrics`` and sweeps use (e.g. ``fid50k_full``, ``pr50k3_full_precision``, ``is50k_mean``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from src.datamodules.dataset import MapStyleDataset
from src.metrics import cache as feature_cache
from src.metrics import registry
from src.metrics.generated import generated_images, num_real_images, real_images
from src.metrics.inception import FeatureBank
from src.metrics.progress import Progress
from src.metrics.protocols import Protocol, parse_metrics, result_keys
from src.metrics.registry import Computed, MetricContext

log = logging.getLogger("gamut.metrics")


def needs_reals(metrics: Sequence[str | Protocol]) -> bool:
    return any((m.needs_reals if isinstance(m, Protocol) else parse_metrics([m])[0].needs_reals) for m in metrics)


def check_weights(metrics: Sequence[str | Protocol], weights_dir: str | Path) -> None:
    """Before any work, fetch (when allowed) every pretrained file the metrics need, or fail naming
    the file, its URL and where to place it (:mod:`src.pretrained.weights`)."""
    protocols = [m if isinstance(m, Protocol) else parse_metrics([m])[0] for m in metrics]
    needed = {p.network for p in protocols}
    for net in registry.networks():  # in registration order: inception, vgg16, ..., then any other
        if net.name in needed:
            net.check_weights(weights_dir, {})


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
        pr: ``{block}``: rows per distance block of precision/recall.
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
        self.pr = {"block": 4096, **dict(pr or {})}
        self.intra_fid = bool(intra_fid)
        self.num_workers = int(num_workers)
        _positive("ppl.num_samples", self.ppl["num_samples"])
        _positive("ppl.batch_size", self.ppl["batch_size"])
        if "feature_net" in self.pr:
            raise ValueError(
                f"pr.feature_net={self.pr['feature_net']!r} is no longer a setting: pr50k3_full and the other "
                "NVIDIA names use NVIDIA's vgg16.pt; torchvision's VGG-16 has names of its own "
                "(pr50k3_full_torchvision)"
            )
        self.protocols = parse_metrics(metrics, settings=self.settings)
        self.metrics = [p.name for p in self.protocols]
        for p in self.protocols:
            least = p.entry.min_gen
            if p.num_gen < least:
                raise ValueError(
                    f"{p.name}: {p.kind.upper()} needs at least {least} generated images (num_gen={p.num_gen})"
                )
        self._networks: dict[str, nn.Module] = {}  # name -> loaded network, reused between calls
        self._reals: dict[str, Tensor] = {}  # identity json -> features, kept between calls
        self.last_cache: dict = {}

    @property
    def settings(self) -> dict[str, Any]:
        """The settings the name rules and the feature networks read (:mod:`src.metrics.registry`)."""
        return {"num_gen": self.num_gen, "num_real": self.num_real, "kid": self.kid, "ppl": self.ppl, "pr": self.pr}

    def result_keys(self) -> list[str]:
        """The flat keys :meth:`run` reports, known before anything runs (for ``optimized_metric``)."""
        return result_keys(self.protocols, self.intra_fid)

    # -- networks ------------------------------------------------------------------------------

    def network(self, name: str, device) -> nn.Module:
        """The registered feature network ``name``, loaded once, on ``device``."""
        if name not in self._networks:
            self._networks[name] = registry.network(name).load(self.weights_dir, self.settings)
        return self._networks[name].to(device)

    def network_label(self, name: str) -> str:
        return registry.network(name).label_for(self.settings)

    # -- what will run -------------------------------------------------------------------------

    def real_count(self, p: Protocol, dataset: MapStyleDataset, mirror: bool) -> int:
        """How many reals ``p`` reads of ``dataset`` (``mirror``: the data is x-flipped, which only
        the legacy names see; :attr:`Protocol.mirror_reals`)."""
        return num_real_images(dataset, p.max_real, mirror and p.mirror_reals)

    def plan(self, dataset: MapStyleDataset | None, mirror: bool, device) -> list[str]:
        """One line per metric: how many images it uses, from which network, on which device."""
        lines = []
        for p in self.protocols:
            net = self.network_label(p.network)
            if p.entry.describe is not None:
                lines.append(f"{p.entry.describe(p)}, {net}, on {device}")
                continue
            text = f"{p.name}: {p.num_gen} generated (psi 1, noise {self.noise_mode})"
            if p.needs_reals and dataset is not None:
                n = self.real_count(p, dataset, mirror)
                flips = f", {len(dataset)} images + x-flips" if mirror and p.mirror_reals else ""
                unflipped = ", unflipped" if mirror and not p.mirror_reals else ""
                text += f" vs {n} reals{flips}{unflipped}"
            lines.append(f"{text}, {net}, on {device}")
        return lines

    # -- features ------------------------------------------------------------------------------

    def _extract(self, name: str, device, images: Tensor, with_probs: bool) -> Tensor:
        net = self.network(name, device)
        return net(images, probs=True) if (with_probs and registry.network(name).probs_width) else net(images)

    def _width(self, name: str, with_probs: bool = False) -> int:
        net = registry.network(name)
        return net.width + (net.probs_width if with_probs else 0)

    def real_features(
        self,
        networks: Sequence[str],
        dataset: MapStyleDataset,
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
        for name in networks:
            weights_file = cast(Path, self.network(name, device).weights_file)  # Network's contract
            ident = feature_cache.dataset_identity(
                dataset, colorspace.name, counts[name], weights_file, self._cache_network(name), mirror
            )
            key = json.dumps(ident, sort_keys=True)
            path = None if self.cache_dir is None else feature_cache.cache_file(self.cache_dir, ident)
            feats = self._reals.get(key)
            hit: bool | str = "memory" if feats is not None else False
            if feats is None and path is not None:
                feats = feature_cache.load_features(path, ident)
                hit = feats is not None
            self.last_cache[_cache_slot(name, mirror)] = {"file": str(path) if path else None, "hit": hit}
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
        return registry.network(name).cache_key(self.settings)

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
        banks = {n: FeatureBank(num_features=self._width(n, with_probs)).to(module.device) for n in counts}
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

    def check_module(self, module) -> None:
        """Raise ``ValueError`` (one line) when a metric cannot measure ``module`` (a kind's ``check``,
        e.g. the equivariance metrics on a generator without an input transform); :meth:`run` calls it
        first, ``src.eval`` and the metrics callback before any work."""
        for p in self.protocols:
            if p.entry.check is not None:
                p.entry.check(p, module)

    def run(
        self,
        module,
        dataset: MapStyleDataset | None = None,
        rank: int = 0,
        world_size: int = 1,
        is_global_zero: bool = True,
        mirror: bool = False,
    ) -> dict[str, dict]:
        """Evaluate every metric on ``module.G_ema``; returns ``{name: record}`` where a record holds
        ``values`` (flat key -> number), ``protocol`` (counts, mirror, psi, network, ...) and ``time_s``.

        Runs under its own RNG state (seeded with ``seed``), so training's random stream is untouched.
        ``mirror``: the data is x-flipped (the data's ``xflip``, NVIDIA's ``--mirror=1``); only the
        legacy names (``fid50k``, ``kid50k``, ``pr50k3``) then read the flips, as NVIDIA's do; the
        ``*_full`` and configurable names read each real once, unflipped (``metric_main.py``).
        """
        device = module.device
        self.check_module(module)
        if any(p.needs_reals for p in self.protocols) and dataset is None:
            raise ValueError(f"{', '.join(p.name for p in self.protocols if p.needs_reals)} need the real images")
        if is_global_zero:
            for line in self.plan(dataset, mirror, device):
                log.info("metric %s", line)
        results: dict[str, dict] = {}
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            shared = [p for p in self.protocols if p.entry.shared_pass]
            if shared:
                results.update(self._image_metrics(module, shared, dataset, rank, world_size, is_global_zero, mirror))
            for p in self.protocols:
                if not p.entry.shared_pass:
                    results[p.name] = self._own_pass(module, p, rank, world_size, is_global_zero)
        return {p.name: results[p.name] for p in self.protocols}

    def _image_metrics(self, module, protocols, dataset, rank, world_size, is_global_zero, mirror) -> dict[str, dict]:
        device = module.device
        gen_counts: dict[str, int] = {}
        real_counts: dict[bool, dict[str, int]] = {}  # mirrored -> network -> reals (one pass each)
        for p in protocols:
            gen_counts[p.network] = max(gen_counts.get(p.network, 0), p.num_gen)
            if p.needs_reals:
                n = self.real_count(p, dataset, mirror)
                if n < 2:
                    raise ValueError(f"{p.name} needs at least 2 real images; the data set has {len(dataset)}")
                counts = real_counts.setdefault(mirror and p.mirror_reals, {})
                counts[p.network] = max(counts.get(p.network, 0), n)
        with_probs = any(p.entry.probs for p in protocols)
        start = time.perf_counter()
        real: dict[bool, dict[str, Tensor]] = {}
        self.last_cache = {}
        for mirrored, counts in real_counts.items():
            real[mirrored] = self.real_features(
                list(counts),
                dataset,
                module.colorspace,
                counts,
                device,
                rank,
                world_size,
                is_global_zero,
                mirrored,
            )
        took_real = time.perf_counter() - start
        start = time.perf_counter()
        # the reals' loader draws from the global RNG, a cached pass does not: seed again so the
        # generated images (their noise, with noise_mode=random) are the same either way
        torch.manual_seed(self.seed)
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
            ctx = MetricContext(p, self, module, g, rank=rank, world_size=world_size, is_global_zero=is_global_zero)
            if p.needs_reals:
                mirrored = bool(mirror and p.mirror_reals)
                r = real[mirrored][p.network][: self.real_count(p, dataset, mirror)]
                ctx.real, ctx.labels = r[:, :-1], r[:, -1].long()
                protocol.update(
                    num_real=int(r.shape[0]),
                    max_real=p.max_real,
                    mirror=mirrored,
                    data_xflip=bool(mirror),
                    real_cache=dict(self.last_cache.get(_cache_slot(p.network, mirrored), {})),
                )
            out: Computed = p.entry.compute(ctx)
            protocol.update(out.protocol)
            took = took_gen + (took_real if p.needs_reals else 0.0) + time.perf_counter() - start
            results[p.name] = {"values": out.values, "protocol": protocol, **out.extra, "time_s": round(took, 3)}
        return results

    def _own_pass(self, module, p: Protocol, rank: int, world_size: int, is_global_zero: bool) -> dict:
        """The record of a kind that draws its own images (``shared_pass=False``: PPL)."""
        start = time.perf_counter()
        ctx = MetricContext(p, self, module, rank=rank, world_size=world_size, is_global_zero=is_global_zero)
        out: Computed = p.entry.compute(ctx)
        protocol = {"kind": p.kind, **out.protocol}
        return {
            "values": out.values,
            "protocol": protocol,
            **out.extra,
            "time_s": round(time.perf_counter() - start, 3),
        }


def _cache_slot(network: str, mirrored: bool) -> str:
    """The key of :attr:`MetricSuite.last_cache` for one pass over the reals."""
    return f"{network}-mirror" if mirrored else network


def flatten(results: dict[str, dict]) -> dict[str, float]:
    """``{"fid50k_full": 3.1, "kid50k_full": 0.001, "kid50k_full_std": 1e-4, "pr50k3_full_precision": 0.7, ...}``."""
    flat: dict[str, float] = {}
    for record in results.values():
        flat.update({k: float(v) for k, v in record["values"].items()})
    return flat
