"""Metric names and the protocol each one stands for: NVIDIA's names (stylegan2-ada-pytorch
``metrics/metric_main.py``) with their image counts, plus gamut's configurable names.

=====================  ==========================================================================
``fid50k_full``        FID: 50k generated vs every real image (x-flips included when mirrored)
``kid50k_full``        KID: 50k generated vs up to 1M reals
``pr50k3_full``        improved precision and recall (Kynkäänniemi et al. 2019), k = 3, 50k
                       generated vs up to 200k reals, VGG-16 features
``is50k``              Inception Score of 50k generated images, 10 splits
``ppl2_wend``          PPL in W at the end points, eps 1e-4, whole image (no crop), 50k pairs
``fid50k``, ``kid50k``, ``pr50k3``   the same against the first 50k reals only (NVIDIA's legacy names)
=====================  ==========================================================================

Any count works in place of ``50k`` for quick looks: ``fid10k_full``, ``kid5k``, ``pr10k3_full``,
``is10k``, ``fid500`` (500 images). The configurable names take their counts from the suite's
settings instead: ``fid`` / ``kid`` (``num_gen`` generated vs ``num_real`` reals) and ``ppl`` /
``ppl_zfull`` / ``ppl_wfull`` / ``ppl_wend`` (``ppl.num_samples`` pairs, ``ppl.epsilons``,
``ppl.crop``). NVIDIA's own ``ppl_wend`` crops to the face; gamut's is the whole image unless
``ppl.crop=true``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from src.metrics.ppl import SPACES, STANDARD_EPS, result_key

_COUNTED = re.compile(r"^(fid|kid|is)(\d+)(k?)(_full)?$")
_PR = re.compile(r"^pr(\d+?)(k?)(\d)(_full)?$")
# NVIDIA's caps on the reals of the *_full protocols (metric_main.py): None = all of them.
FULL_REALS = {"fid": None, "kid": 1_000_000, "pr": 200_000}
EXAMPLES = ("fid50k_full", "kid50k_full", "pr50k3_full", "is50k", "ppl2_wend", "fid10k_full", "fid", "kid", "ppl")
CONFIGURABLE = ("fid", "kid", "ppl", *(f"ppl_{s}" for s in SPACES))
LOWER_IS_BETTER = ("fid", "kid", "ppl")


@dataclass(frozen=True)
class Protocol:
    """What one metric name computes: the kind, its image counts and its settings.

    ``num_gen``: generated images (FID/KID/PR/IS). ``max_real``: cap on the reals (None: all).
    ``nhood``: PR's k. ``splits``: IS splits. PPL: ``space`` (a key of :data:`SPACES`),
    ``epsilons``, ``num_samples``, ``crop``. ``configurable``: counts come from the suite's settings.
    """

    name: str
    kind: str  # fid, kid, pr, is, ppl
    num_gen: int = 0
    max_real: int | None = None
    nhood: int = 3
    splits: int = 10
    space: str = ""
    epsilons: tuple[float, ...] = field(default=(STANDARD_EPS,))
    num_samples: int = 0
    crop: bool = False
    configurable: bool = False

    @property
    def needs_reals(self) -> bool:
        return self.kind in ("fid", "kid", "pr")

    @property
    def network(self) -> str:
        """The feature network: ``inception`` (FID, KID, IS), ``vgg16`` (PR) or ``lpips`` (PPL)."""
        return {"pr": "vgg16", "ppl": "lpips"}.get(self.kind, "inception")

    def result_keys(self) -> list[str]:
        """The flat keys this metric reports (loggers, ``trainer.callback_metrics``, sweeps)."""
        if self.kind == "pr":
            return [f"{self.name}_precision", f"{self.name}_recall"]
        if self.kind == "is":
            return [f"{self.name}_mean", f"{self.name}_std"]
        if self.kind == "kid":
            return [self.name, f"{self.name}_std"]
        if self.kind == "ppl":
            if not self.configurable:
                return [self.name]
            return [result_key(self.space, e) for e in self.epsilons]
        return [self.name]


def _count(digits: str, k: str) -> int:
    return int(digits) * (1000 if k else 1)


def protocol(name: str, settings: dict | None = None) -> Protocol | None:
    """The protocol of metric ``name`` (None when the name is unknown).

    ``settings``: the suite's ``num_gen``, ``num_real`` and ``ppl`` dict, for the configurable names.
    """
    s = settings or {}
    ppl = s.get("ppl") or {}
    if name in ("fid", "kid"):
        return Protocol(name, name, int(s.get("num_gen", 50000)), s.get("num_real"), configurable=True)
    if name.startswith("ppl_") and name.removeprefix("ppl_") in SPACES:
        return Protocol(
            name,
            "ppl",
            space=name.removeprefix("ppl_"),
            epsilons=tuple(float(e) for e in ppl.get("epsilons", [STANDARD_EPS])),
            num_samples=int(ppl.get("num_samples", 50000)),
            crop=bool(ppl.get("crop", False)),
            configurable=True,
        )
    if name == "ppl2_wend":
        return Protocol(name, "ppl", space="wend", num_samples=50000, crop=False)
    m = _COUNTED.match(name)
    if m:
        kind, digits, k, full = m.groups()
        n = _count(digits, k)
        if n < 2 or (kind == "is" and full):
            return None
        if kind == "is":
            return Protocol(name, "is", n, splits=10)
        return Protocol(name, kind, n, FULL_REALS[kind] if full else n)
    m = _PR.match(name)
    if m:
        digits, k, nhood, full = m.groups()
        n = _count(digits, k)
        if n < 2 or int(nhood) < 1:
            return None
        return Protocol(name, "pr", n, FULL_REALS["pr"] if full else n, nhood=int(nhood))
    return None


def parse_metrics(
    names: str | Iterable[str | Protocol] | None, key: str = "metrics", settings: dict | None = None
) -> list[Protocol]:
    """Validate metric names (``ppl`` = its three spaces); keep the order, drop repeats.

    An unknown name raises ``ValueError`` naming ``key`` and listing the names gamut knows.
    """
    if names is None:
        names = []
    if isinstance(names, str):
        names = [n for n in names.replace(",", " ").split() if n]
    out: list[Protocol] = []
    for n in names:
        n = n.name if isinstance(n, Protocol) else str(n)
        for m in [f"ppl_{s}" for s in SPACES] if n == "ppl" else [n]:
            p = protocol(m, settings)
            if p is None:
                raise ValueError(
                    f"{key}: unknown metric {m!r}; known: {', '.join(EXAMPLES)}, "
                    f"ppl_zfull, ppl_wfull, ppl_wend, and any count in place of 50k "
                    f"(fid10k_full, kid5k, pr10k3_full, is10k, fid500)"
                )
            if all(p.name != q.name for q in out):
                out.append(p)
    if not out:
        raise ValueError(f"{key} is empty; e.g. {key}=[fid50k_full]")
    return out


def result_keys(protocols: Sequence[Protocol], intra_fid: bool = False) -> list[str]:
    """Every flat key the metrics report (with ``<fid name>_intra`` when ``intra_fid``)."""
    keys = []
    for p in protocols:
        keys += p.result_keys()
        if intra_fid and p.kind == "fid":
            keys.append(f"{p.name}_intra")
    return keys


def higher_is_better(key: str) -> bool:
    """Direction of a metric key: FID, KID and PPL fall as models improve; IS, precision and recall
    rise, and so do the colorization scores (``val/psnr``, ``val/ssim``, ``val/psnr_gain``)."""
    name = key.rpartition("/")[2]
    return (
        name.endswith(("_precision", "_recall"))
        or re.match(r"^is\d+k?_mean$", name) is not None
        or (name.startswith(("psnr", "ssim")))
    )
