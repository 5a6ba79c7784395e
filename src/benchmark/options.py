"""What one benchmark subject declares, the key groups subjects share, and the check of their values.

A subject (one module under :mod:`src.benchmark.subjects`) ends with one :class:`Subject`: its name
(the command line's first argument), the ``key=value`` items it takes with their defaults (``None``:
the subject's own size from :class:`Sizes`), its default sizes, the function that times it and an
optional early check of the arguments. :func:`check_values` gives one line naming the key for a value
of the wrong kind, whatever subject takes that key.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "AUGMENT",
    "BASE",
    "CHOICES",
    "INTS",
    "NUMBERS",
    "STYLEGAN",
    "TRAINING",
    "Sizes",
    "Subject",
    "check_values",
]

# Keys every subject takes; ``None``: the subject's own default (its Sizes).
BASE: dict[str, Any] = dict(device="cpu", resolution=None, batch=None, warmup=None, system_malloc=False)
# The subjects that time a training step or a generator.
TRAINING: dict[str, Any] = dict(precision="32-true", compile=False, channels_last=False, steps=None)
# The StyleGAN2-type architecture (StyleGAN2, SEGAN, their generators).
STYLEGAN: dict[str, Any] = dict(channel_base=16384, channel_max=512, map_depth=8, z_dim=512)
# D's augmentation: model.augment's mode, p and pipeline.
AUGMENT: dict[str, Any] = dict(augment="none", augment_p=0.5, augment_pipeline="bgc")

CHOICES: dict[str, tuple[Any, ...]] = {
    "device": ("cpu", "cuda", "gpu", "auto"),
    "modconv": ("scaled", "grouped"),
    "mode": (0, 1, 2, 3),
    "source": ("folder", "zip"),
    "augment": ("none", "ada", "fixed", "diffaugment"),
    "cfg": ("t", "r"),
    "data": ("random", "shapes"),
}
INTS: tuple[str, ...] = (
    "batch",
    "steps",
    "warmup",
    "channel_base",
    "channel_max",
    "map_depth",
    "z_dim",
    "images",
    "workers",
    "repeats",
    "threads",
    "infer_steps",
    "quality",
)
NUMBERS: tuple[str, ...] = ("width", "augment_p", "gamma")  # ints or floats


class Sizes(NamedTuple):
    """A subject's defaults for the keys :data:`BASE` leaves ``None`` (``steps``: None where it has none)."""

    resolution: list[int]
    batch: int
    steps: int | None
    warmup: int


@dataclass(frozen=True)
class Subject:
    """One thing the benchmark times: ``python scripts/benchmark.py <name> key=value ...``."""

    name: str
    run: Callable[[types.SimpleNamespace], dict]  # the parsed arguments -> the JSON report
    keys: Mapping[str, Any]  # the keys it takes, with their defaults
    sizes: Sizes
    check: Callable[[types.SimpleNamespace], None] | None = None  # raises before any setup on a bad value


def check_values(prog: str, cfg: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """One line naming the key for a value of the wrong kind (SystemExit); ``defaults`` has every key's
    default, whose type (bool) a value must share."""

    def bad(key: str, expected: str) -> SystemExit:
        return SystemExit(f"{prog}: {key}={cfg[key]!r}: expected {expected}")

    for key, value in cfg.items():
        if value is None and defaults[key] is None:
            continue
        if key in CHOICES and value not in CHOICES[key]:
            raise bad(key, "one of " + ", ".join(map(str, CHOICES[key])))
        if key in INTS and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad(key, "an integer")
        if isinstance(defaults[key], bool) and not isinstance(value, bool):
            raise bad(key, "true or false")
        if key in NUMBERS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise bad(key, "a number")
    res = cfg["resolution"]
    if res is not None and not (
        isinstance(res, int)
        and not isinstance(res, bool)
        or isinstance(res, list)
        and len(res) in (1, 2)
        and all(type(s) is int for s in res)
    ):
        raise bad("resolution", "R or [H,W] (integers)")
