"""The metric registry: one entry per metric kind, found by the names it answers to, carrying the
kind's protocol rule, feature network, result keys, direction and compute function.

As NVlabs/stylegan3 ``metrics/metric_main.py`` registers each metric as one function carrying its
protocol (``@register_metric def fid50k_full(opts)``), a gamut metric is one function plus one
:func:`register_metric` call in one module of :mod:`src.metrics.kinds` (every module there is
imported the first time a name is looked up; a module elsewhere registers when it is imported).
Where stylegan3 registers each name, gamut registers a kind with a name pattern, so one rule gives
``fid50k_full``, ``fid10k_full``, ``fid500`` and the configurable ``fid``::

    @register_metric("fid", r"fid(?:(?P<n>\\d+k?)(?P<full>_full)?)?", network=INCEPTION, needs_reals=True)
    def fid(ctx: MetricContext) -> Computed:
        return Computed({ctx.protocol.name: fid_from_features(ctx.real, ctx.fake[:, :2048])})

:class:`src.metrics.suite.MetricSuite` looks entries up instead of branching on the kind: it runs
one generation pass and one pass over the reals for every network the *shared-pass* kinds name,
then calls each kind's function with a :class:`MetricContext` holding its features; a kind with
``shared_pass=False`` (PPL) runs its own pass from the context's module. docs/evaluation.md
("Adding a metric") walks through a new one.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from src.metrics.ppl import STANDARD_EPS

if TYPE_CHECKING:
    from src.metrics.suite import MetricSuite

KINDS_PACKAGE = "src.metrics.kinds"


@dataclass(frozen=True)
class Protocol:
    """What one metric name computes: the kind, its image counts and its settings.

    ``num_gen``: generated images (FID/KID/PR/IS). ``max_real``: cap on the reals (None: all).
    ``nhood``: PR's k. ``splits``: IS splits. PPL: ``space`` (a key of ``src.metrics.ppl.SPACES``),
    ``epsilons``, ``num_samples``, ``crop``. ``configurable``: counts come from the suite's settings.
    ``mirror_reals``: the reals include their x-flips when the data set is mirrored (``data.xflip``).
    Only NVIDIA's legacy names (``fid50k``, ``kid50k``, ``pr50k3``) read the mirrored data set:
    stylegan2-ada-pytorch ``metrics/metric_main.py`` sets ``xflip=False`` for every ``*_full``
    metric and ``is50k``, so those see each real image once, unflipped, whatever the data's
    ``xflip``; gamut's configurable names follow the ``*_full`` rule.
    """

    name: str
    kind: str  # a registered kind: fid, kid, pr, is, ppl, ...
    num_gen: int = 0
    max_real: int | None = None
    nhood: int = 3
    splits: int = 10
    space: str = ""
    epsilons: tuple[float, ...] = field(default=(STANDARD_EPS,))
    num_samples: int = 0
    crop: bool = False
    configurable: bool = False
    mirror_reals: bool = False

    @property
    def entry(self) -> MetricKind:
        """The registered kind this protocol belongs to."""
        return metric_kind(self.kind)

    @property
    def needs_reals(self) -> bool:
        return self.entry.needs_reals

    @property
    def network(self) -> str:
        """The feature network's name: ``inception`` (FID, KID, IS), ``vgg16`` (PR), ``lpips`` (PPL), ..."""
        return self.entry.network.name

    def result_keys(self) -> list[str]:
        """The flat keys this metric reports (loggers, ``trainer.callback_metrics``, sweeps)."""
        return self.entry.keys(self)


@dataclass(frozen=True)
class Network:
    """A feature network the metrics share: loaded once per suite, fed by the suite's image passes.

    ``load(weights_dir, settings)``: the network in eval mode; ``net(images)`` maps uint8 RGB
    ``[N, 3, H, W]`` to ``[N, width]`` features (``net(images, probs=True)`` appends
    ``probs_width`` more columns, for kinds registered with ``probs=True``). A network whose
    features of reals are cached has a ``weights_file`` attribute (a :class:`~pathlib.Path`), whose
    name, size and mtime key the cache. ``width`` 0: not fed by the shared passes (LPIPS).
    ``label``: the name in the plan and the records (a function of the suite's settings where
    they change it). ``check(weights_dir, settings)``: raise
    :class:`~src.pretrained.weights.MissingWeightsError` for a missing file, before any work.
    ``cache_name``: the network part of the cache file name (default: ``name``).
    """

    name: str
    load: Callable[[str, Mapping[str, Any]], nn.Module]
    label: str | Callable[[Mapping[str, Any]], str]
    width: int = 0
    probs_width: int = 0
    check: Callable[[str, Mapping[str, Any]], None] | None = None
    cache_name: str | Callable[[Mapping[str, Any]], str] | None = None

    def label_for(self, settings: Mapping[str, Any]) -> str:
        return self.label(settings) if callable(self.label) else self.label

    def cache_key(self, settings: Mapping[str, Any]) -> str:
        if self.cache_name is None:
            return self.name
        return self.cache_name(settings) if callable(self.cache_name) else self.cache_name

    def check_weights(self, weights_dir: str | Path, settings: Mapping[str, Any]) -> None:
        if self.check is not None:
            self.check(str(weights_dir), settings)


@dataclass(frozen=True)
class Computed:
    """What a kind's function returns: ``values`` (flat key -> number), ``protocol`` (entries laid
    over the suite's record of the run: counts, seed, network, ...) and ``extra`` (further fields of
    the record, e.g. intra-FID's ``per_class``)."""

    values: dict[str, float]
    protocol: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _empty() -> Tensor:
    return torch.empty(0)


@dataclass
class MetricContext:
    """Everything a kind's function may use. ``fake``: the first ``num_gen`` generated images'
    features ``[num_gen, width (+ probs_width)]``; ``real`` / ``labels``: the reals' features and
    labels (kinds with ``needs_reals``); empty for a kind with ``shared_pass=False``, which draws
    its own images from ``module`` (G_ema, ``sample``, ``colorspace``, ``device``). ``suite``: the
    settings (``seed``, ``noise_mode``, ``kid``, ``pr``, ``ppl``, ``intra_fid``, ...) and its
    networks and passes."""

    protocol: Protocol
    suite: MetricSuite
    module: Any
    fake: Tensor = field(default_factory=_empty)
    real: Tensor = field(default_factory=_empty)
    labels: Tensor = field(default_factory=_empty)
    rank: int = 0
    world_size: int = 1
    is_global_zero: bool = True

    def network(self) -> nn.Module:
        """The kind's feature network, loaded by the suite (once) on the module's device."""
        return self.suite.network(self.protocol.network, self.module.device)


ProtocolRule = Callable[["MetricKind", re.Match[str], Mapping[str, Any]], "Protocol | None"]


def image_count(text: str) -> int:
    """``50k`` -> 50000, ``500`` -> 500 (the counts in NVIDIA's names)."""
    return int(text.removesuffix("k")) * (1000 if text.endswith("k") else 1)


def counted(kind: MetricKind, match: re.Match[str], settings: Mapping[str, Any]) -> Protocol | None:
    """The default name rule, from the pattern's named groups: ``n`` the generated images (``50k``,
    at least 2); ``full`` present: reals capped at the kind's ``full_reals`` (None: all), never
    x-flipped; absent: the first ``n`` reals of the data set as the data reads it, x-flips included
    when mirrored (NVIDIA's legacy names); ``nhood``: PR's k (at least 1). A name without ``n`` is
    configurable: ``num_gen`` / ``num_real`` come from the suite's settings, reals unflipped."""
    name, groups = match.string, match.groupdict()
    if groups.get("n") is None:
        return Protocol(
            name,
            kind.kind,
            int(settings.get("num_gen", 50000)),
            settings.get("num_real") if kind.needs_reals else None,
            configurable=True,
        )
    n = image_count(groups["n"])
    if n < 2:
        return None
    extra: dict[str, Any] = {}
    if groups.get("nhood") is not None:
        extra["nhood"] = int(groups["nhood"])
        if extra["nhood"] < 1:
            return None
    legacy = kind.needs_reals and groups.get("full") is None
    max_real = (n if legacy else kind.full_reals) if kind.needs_reals else None
    return Protocol(name, kind.kind, n, max_real, mirror_reals=legacy, **extra)


@dataclass(frozen=True)
class MetricKind:
    """One registered kind (see :func:`register_metric` for the fields)."""

    kind: str
    pattern: re.Pattern[str]
    compute: Callable[[MetricContext], Computed]
    network: Network
    result_keys: tuple[str, ...] | Callable[[Protocol], list[str]]
    higher_is_better: tuple[bool, ...]
    intra_keys: tuple[str, ...]
    needs_reals: bool
    full_reals: int | None
    min_gen: int
    probs: bool
    shared_pass: bool
    rule: ProtocolRule
    describe: Callable[[Protocol], str] | None
    examples: tuple[str, ...]
    aliases: Mapping[str, tuple[str, ...]]
    check: Callable[[Protocol, Any], None] | None = None

    def protocol(self, name: str, settings: Mapping[str, Any]) -> Protocol | None:
        """The protocol of ``name`` when it is one of this kind's names and its counts are valid."""
        match = self.pattern.match(name)
        return None if match is None else self.rule(self, match, settings)

    def keys(self, p: Protocol, intra: bool = False) -> list[str]:
        """The flat keys ``p`` reports (with the per-class keys when ``intra``)."""
        keys = self.result_keys(p) if callable(self.result_keys) else [t.format(name=p.name) for t in self.result_keys]
        return keys + ([t.format(name=p.name) for t in self.intra_keys] if intra else [])

    def direction(self, key: str) -> bool | None:
        """Whether ``key`` rises as models improve, when it is one of this kind's keys (else None).

        Template keys are matched exactly (``{name}_precision`` with ``{name}`` one of this kind's
        names); the keys of a computed ``result_keys`` are this kind's names and their ``_...`` forms.
        """
        if callable(self.result_keys):
            ends = [len(key), *(i for i, c in enumerate(key) if c == "_")]
            return self.higher_is_better[0] if any(self.pattern.match(key[:i]) for i in ends) else None
        templates = list(zip(self.result_keys, self.higher_is_better))
        templates += [(t, self.higher_is_better[0]) for t in self.intra_keys]
        for template, higher in templates:
            head, _, tail = template.partition("{name}")
            if len(key) > len(head) + len(tail) and key.startswith(head) and key.endswith(tail):
                if self.pattern.match(key[len(head) : len(key) - len(tail)]):
                    return higher
        return None


_KINDS: dict[str, MetricKind] = {}
_NETWORKS: dict[str, Network] = {}
_loaded = False


def register_network(network: Network) -> Network:
    """Make ``network`` known by its name (its weights are checked in registration order)."""
    old = _NETWORKS.get(network.name)
    if old is not None and old is not network:
        raise ValueError(f"feature network {network.name!r} is registered twice")
    _NETWORKS[network.name] = network
    return network


def register_metric(
    kind: str,
    names: str,
    *,
    network: Network,
    result_keys: Sequence[str] | Callable[[Protocol], list[str]] = ("{name}",),
    higher_is_better: bool | Sequence[bool] = False,
    intra_keys: Sequence[str] = (),
    needs_reals: bool = False,
    full_reals: int | None = None,
    min_gen: int = 0,
    probs: bool = False,
    shared_pass: bool = True,
    protocol: ProtocolRule = counted,
    describe: Callable[[Protocol], str] | None = None,
    examples: Sequence[str] = (),
    aliases: Mapping[str, Sequence[str]] | None = None,
    check: Callable[[Protocol, Any], None] | None = None,
) -> Callable[[Callable[[MetricContext], Computed]], Callable[[MetricContext], Computed]]:
    """Decorator registering ``fn(ctx: MetricContext) -> Computed`` as the metric kind ``kind``.

    ``names``: a regular expression every name of the kind matches in full; ``protocol`` turns the
    match into a :class:`Protocol` (default :func:`counted`: groups ``n``, ``full``, ``nhood``).
    ``network``: its :class:`Network` (registered with it). ``result_keys``: templates of the keys
    it reports (``"{name}_std"``), or a function of the protocol; ``higher_is_better``: one
    direction, or one per template. ``intra_keys``: templates added when the suite's
    ``intra_fid`` is on. ``needs_reals``: the reals' features are passed in; ``full_reals``: the
    ``_full`` cap. ``min_gen``: fewest generated images. ``probs``: the network's extra columns.
    ``shared_pass=False``: no features are passed in; the function draws its own images.
    ``describe``: its line of the plan (default: the counts). ``examples``: names the
    unknown-name error lists. ``aliases``: names that stand for several (``ppl``).
    ``check(protocol, module)``: raise ``ValueError`` (one line) for a module the metric cannot measure,
    before any work (:meth:`src.metrics.suite.MetricSuite.check_module`; the equivariance metrics).
    """
    directions = (higher_is_better,) if isinstance(higher_is_better, bool) else tuple(higher_is_better)
    if not callable(result_keys) and len(directions) not in (1, len(result_keys)):
        raise ValueError(f"metric {kind!r}: give one direction, or one per result key")
    if not callable(result_keys) and len(directions) == 1:
        directions *= len(result_keys)

    def add(fn: Callable[[MetricContext], Computed]) -> Callable[[MetricContext], Computed]:
        if not fn.__module__.startswith(f"{KINDS_PACKAGE}."):
            load_kinds()  # the built-in kinds first (their order is the unknown-name error's)
        old = _KINDS.get(kind)
        if old is not None and (old.compute.__module__, old.compute.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"metric kind {kind!r} is registered twice ({old.compute.__module__}, {fn.__module__})")
        _KINDS[kind] = MetricKind(
            kind=kind,
            pattern=re.compile(rf"^(?:{names})$"),
            compute=fn,
            network=register_network(network),
            result_keys=result_keys if callable(result_keys) else tuple(result_keys),
            higher_is_better=directions,
            intra_keys=tuple(intra_keys),
            needs_reals=needs_reals,
            full_reals=full_reals,
            min_gen=min_gen,
            probs=probs,
            shared_pass=shared_pass,
            rule=protocol,
            describe=describe,
            examples=tuple(examples),
            aliases={k: tuple(v) for k, v in (aliases or {}).items()},
            check=check,
        )
        return fn

    return add


def unregister_metric(kind: str) -> None:
    """Forget ``kind``, and its network when no other kind uses it (tests that register a kind)."""
    entry = _KINDS.pop(kind, None)
    if entry is not None and all(k.network.name != entry.network.name for k in _KINDS.values()):
        _NETWORKS.pop(entry.network.name, None)


def load_kinds() -> None:
    """Import every module of :mod:`src.metrics.kinds` once (each registers its kinds)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = importlib.import_module(KINDS_PACKAGE)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{KINDS_PACKAGE}.{info.name}")


def metric_kinds() -> list[MetricKind]:
    """Every registered kind, the built-in ones first."""
    load_kinds()
    return list(_KINDS.values())


def metric_kind(kind: str) -> MetricKind:
    load_kinds()
    try:
        return _KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown metric kind {kind!r}; registered: {', '.join(_KINDS)}") from None


def networks() -> list[Network]:
    """Every registered feature network, in registration order."""
    load_kinds()
    return list(_NETWORKS.values())


def network(name: str) -> Network:
    load_kinds()
    return _NETWORKS[name]


def find(name: str, settings: Mapping[str, Any] | None = None) -> Protocol | None:
    """The protocol of metric ``name`` (None when no kind knows it); a name two kinds claim is an error."""
    s = settings or {}
    claims = [k for k in metric_kinds() if k.pattern.match(name)]
    if len(claims) > 1:
        raise ValueError(f"metric {name!r} matches the names of {' and '.join(k.kind for k in claims)}")
    return claims[0].protocol(name, s) if claims else None


def expand(name: str) -> tuple[str, ...]:
    """The names an alias stands for (``ppl`` -> its three spaces), else ``(name,)``."""
    for k in metric_kinds():
        if name in k.aliases:
            return k.aliases[name]
    return (name,)
