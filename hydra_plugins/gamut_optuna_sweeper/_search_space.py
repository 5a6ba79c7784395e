"""The search space of gamut's Optuna sweeper: ``hydra.sweeper.params`` and the command line's sweeps,
parsed with Hydra's override grammar into Optuna distributions (:func:`parse_search_space`).

Each searched key becomes a :class:`Param` (its distribution, and how a drawn value is written back as
an override); the keys set to one value are passed to every trial unchanged. A value that cannot define
a distribution raises :class:`SweepConfigError` naming the key. Optuna's distributions are imported
inside :func:`_distribution`, so importing this module does not import Optuna.

A private module (leading ``_``): Hydra's plugin scan (``Plugins._scan_all_plugins`` in
hydra/core/plugins.py) imports, and re-runs when already imported, every module of this package but
those whose name starts with ``_``, as Hydra's own optuna sweeper keeps its ``_impl.py``. Kept out of
the scan, :class:`SweepConfigError` is one class for the sweeper, its callers and the tests.
"""

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeGuard

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from hydra.errors import CompactHydraException, HydraException
from omegaconf import OmegaConf

__all__ = ["Param", "SearchSpace", "SweepConfigError", "is_int", "parse_search_space"]


class SweepConfigError(CompactHydraException):
    """A ``hydra.sweeper`` value (or a command-line sweep) that cannot be used; Hydra prints only the message."""

    def __init__(self, message: str) -> None:
        super().__init__(f"gamut: invalid config: {message}")


def is_int(x: Any) -> TypeGuard[int]:
    """An int that is not a bool (YAML's ``true`` is no count of trials)."""
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class Param:
    """One searched key: its Optuna distribution and how a drawn value is written back as an override."""

    name: str  # the parameter's name in the study: the config key or group
    key: str  # the override's key as written (with a leading + or ++ when it had one)
    distribution: Any  # an optuna.distributions.BaseDistribution
    texts: tuple[str, ...] = ()  # categorical only: each choice written in the override grammar

    def override(self, value: Any) -> str:
        if self.texts:  # the choice's own text (lists, dicts, quoted strings survive as written)
            for choice, text in zip(self.distribution.choices, self.texts):
                if type(choice) is type(value) and choice == value:
                    return f"{self.key}={text}"
            raise ValueError(f"{self.name}: {value!r} is not one of {self.distribution.choices}")
        return f"{self.key}={value!r}" if isinstance(value, float) else f"{self.key}={value}"


@dataclass
class SearchSpace:
    """What a sweep searches (``params``) and the overrides every trial gets unchanged (``fixed``)."""

    params: dict[str, Param] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)

    @property
    def distributions(self) -> dict[str, Any]:
        return {name: p.distribution for name, p in self.params.items()}

    def overrides(self, values: Mapping[str, Any]) -> list[str]:
        """A trial's overrides: the fixed ones, then one per searched key with the trial's value."""
        return [*self.fixed, *(p.override(values[name]) for name, p in self.params.items())]

    def example(self) -> dict[str, Any]:
        """One value of every searched key (the lowest, or the first choice): to check that they compose."""
        return {name: p.distribution.choices[0] if p.texts else p.distribution.low for name, p in self.params.items()}


def parse_search_space(
    params: Mapping[str, Any] | None, arguments: Sequence[str] = (), parser: OverridesParser | None = None
) -> SearchSpace:
    """The search space of ``hydra.sweeper.params`` and the command line's overrides.

    Each ``params`` entry ``key: value`` is parsed as the override ``key=value``:

    - ``interval(a, b)``: a float, uniform in [a, b); ``tag(log, interval(a, b))``: log-uniform;
    - ``int(interval(a, b))`` or ``tag(int, interval(a, b))``: an integer in [a, b] (with ``log`` too);
    - ``range(a, b, step)``: ``a, a + step, ...`` below ``b``, as Python's range and Hydra's basic
      sweeper count (int or float steps);
    - ``choice(x, y, ...)`` or ``x,y,...``: categorical; a config group too (``model: choice(stylegan2, segan)``);
    - any other value: fixed, the same for every trial.

    Nested mappings count as dotted keys (``+hydra.sweeper.params.model.optim.g_lr=...`` on the command
    line makes one). Of ``arguments`` (the command line's overrides), a sweep joins the search space and
    anything else is passed to every trial as written; either way it replaces a ``params`` entry for
    the same key. A value that cannot define a distribution raises :class:`SweepConfigError` naming the
    key, e.g. ``hydra.sweeper.params.model.optim.g_lr: interval(0.01, 0.001): low must be below high``.
    """
    parser = parser or OverridesParser.create()
    configured: dict[str, tuple[str, Override, str]] = {}
    for key, value in _flatten(params or {}):
        text = _value_text(value)
        override = _parse(parser, f"{key}={text}", f"hydra.sweeper.params.{key}: {text}")
        configured[override.key_or_group] = (f"hydra.sweeper.params.{key}: {text}", override, f"{key}={text}")
    given = [(arg, _parse(parser, arg, arg)) for arg in arguments]
    named = {o.key_or_group for _, o in given}

    space = SearchSpace()
    for name, (where, override, text) in configured.items():
        if name not in named:  # the command line wins
            _add(space, where, override, text)
    for arg, override in given:
        _add(space, arg, override, arg)
    return space


def _flatten(node: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _value_text(value: Any) -> str:
    """A ``params`` value as override text: strings are already in the grammar, the rest is encoded."""
    if isinstance(value, str):
        return value
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    return Transformer.str(value)


def _parse(parser: OverridesParser, text: str, where: str) -> Override:
    try:
        (override,) = parser.parse_overrides([text])
    except HydraException as e:
        lines = [ln.strip() for ln in str(e).splitlines()]
        reason = [ln for ln in lines if ln and not ln.startswith(("Error parsing override", "See https://"))]
        raise SweepConfigError(f"{where}: cannot be parsed ({'; '.join(reason or lines[:1])})") from None
    return override


def _add(space: SearchSpace, where: str, override: Override, text: str) -> None:
    if override.is_hydra_override():
        raise SweepConfigError(f"{where}: a hydra.* key cannot be searched")
    if not override.is_sweep_override():
        space.fixed.append(text)
        return
    distribution, texts = _distribution(override, where)
    name = override.key_or_group
    space.params[name] = Param(name, override.get_key_element(), distribution, texts)


def _distribution(override: Override, where: str) -> tuple[Any, tuple[str, ...]]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    tags = set(getattr(value, "tags", None) or ())
    if isinstance(value, IntervalSweep):
        assert value.start is not None and value.end is not None  # the grammar's interval(a, b) has both
        low, high, log_scale = value.start, value.end, "log" in tags
        integer = "int" in tags or (is_int(low) and is_int(high))
        if integer:
            low, high = math.ceil(low), math.floor(high)
        if not low < high:
            raise SweepConfigError(f"{where}: low must be below high")
        if log_scale and low <= 0:
            raise SweepConfigError(f"{where}: a log interval needs low > 0")
        if integer:
            return IntDistribution(int(low), int(high), log=log_scale), ()
        return FloatDistribution(float(low), float(high), log=log_scale), ()
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        assert start is not None and stop is not None  # range(b) parses as range(0, b)
        if "log" in tags:
            raise SweepConfigError(f"{where}: a range has a step and cannot be log; use tag(log, interval(a, b))")
        if not step > 0:
            raise SweepConfigError(f"{where}: step must be positive")
        if not start < stop:
            raise SweepConfigError(f"{where}: empty range (start must be below stop)")
        count = math.ceil((Decimal(str(stop)) - Decimal(str(start))) / Decimal(str(step)))
        if is_int(start) and is_int(stop) and is_int(step):
            return IntDistribution(start, start + (count - 1) * step, step=step), ()
        last = Decimal(str(start)) + (count - 1) * Decimal(str(step))
        return FloatDistribution(float(start), float(last), step=float(step)), ()
    # choice(...), a,b,c, or glob(...) over a config group's options (in the order listed)
    elements = list(value.list) if isinstance(value, ChoiceSweep) else list(override.sweep_iterator())
    if not elements:
        raise SweepConfigError(f"{where}: empty choice")
    texts = tuple(Transformer.str(e) for e in elements)
    if len(set(texts)) < len(texts):
        raise SweepConfigError(f"{where}: a choice is listed twice")
    choices: list[Any] = [Transformer.encode(e) for e in elements]  # lists and dicts as their text
    return CategoricalDistribution(choices), texts
