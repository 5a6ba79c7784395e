"""Metric names and the protocol each one stands for: NVIDIA's names (stylegan2-ada-pytorch
``metrics/metric_main.py``) with their image counts, plus gamut's configurable names. The names
are answered by the kinds registered in :mod:`src.metrics.registry` (one module each under
:mod:`src.metrics.kinds`); this module is the front end :mod:`src.train`, :mod:`src.eval` and the
suite use.

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

from collections.abc import Iterable, Sequence

from src.metrics.registry import Protocol, expand, find, metric_kinds

__all__ = ["EXAMPLES", "Protocol", "higher_is_better", "known_names", "parse_metrics", "protocol", "result_keys"]

EXAMPLES = ("fid50k_full", "kid50k_full", "pr50k3_full", "is50k", "ppl2_wend", "fid10k_full", "fid", "kid", "ppl")


def protocol(name: str, settings: dict | None = None) -> Protocol | None:
    """The protocol of metric ``name`` (None when the name is unknown).

    ``settings``: the suite's ``num_gen``, ``num_real`` and ``ppl`` dict, for the configurable names.
    """
    return find(name, settings)


def known_names() -> list[str]:
    """The names an unknown-name error lists: :data:`EXAMPLES`, then every registered kind's examples."""
    names = list(EXAMPLES)
    for kind in metric_kinds():
        names += [n for n in kind.examples if n not in names]
    return names


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
        for m in expand(n):
            p = protocol(m, settings)
            if p is None:
                raise ValueError(
                    f"{key}: unknown metric {m!r}; known: {', '.join(known_names())}, "
                    f"and any count in place of 50k (fid10k_full, kid5k, pr10k3_full, is10k, fid500)"
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
        keys += p.entry.keys(p, intra_fid)
    return keys


def higher_is_better(key: str) -> bool:
    """Direction of a metric key, as its kind registered it: FID, KID and PPL fall as models
    improve; IS (``_mean``), precision and recall rise. Keys no kind claims rise when they are the
    colorization scores (``val/psnr``, ``val/ssim``, ``val/psnr_gain``) and fall otherwise."""
    name = key.rpartition("/")[2]
    for kind in metric_kinds():
        higher = kind.direction(name)
        if higher is not None:
            return higher
    return name.startswith(("psnr", "ssim"))
