"""The StyleGAN3 side of importing: a foreign generator's stored schedule and filters against gamut's.

:mod:`src.pretrained.nvidia_stylegan3` reads what NVIDIA's networks stored about every synthesis layer
(``Imported.layout``: channels, canvas sizes, sampling rates, cutoffs, half widths, factors, taps, padding,
fp16 flag; the Fourier input's size, rate and bandwidth) and the lowpass filters (``up_filter`` /
``down_filter`` buffers). :func:`check_stylegan3` compares them with what gamut's
:class:`~src.modules.stylegan3.networks.StyleGAN3Generator` lays out and designs for the imported
arguments (:mod:`src.modules.stylegan3.filters`), before any tensor is copied, and raises
:class:`~src.pretrained.types.UnsupportedNetworkError` naming the layer, the value and both numbers when
gamut would compute a different network. :mod:`src.checkpoints.importing` calls it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from src.modules.stylegan3.module import StyleGAN3
from src.modules.stylegan3.networks import StyleGAN3Generator
from src.pretrained.types import Imported, UnsupportedNetworkError

__all__ = ["FILTER_RTOL", "FILTER_ATOL", "check_stylegan3"]

# Filters are designed in float64 and stored as float32 by both; these only absorb scipy versions' rounding.
FILTER_RTOL, FILTER_ATOL = 1e-5, 1e-7


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _check_layout(g: StyleGAN3Generator, layout: dict[str, dict[str, Any]]) -> None:
    syn = g.synthesis
    ours: dict[str, dict[str, Any]] = {
        "synthesis.input": dict(
            channels=syn.input.channels,
            size=syn.input.size,
            sampling_rate=syn.input.sampling_rate,
            bandwidth=syn.input.bandwidth,
        )
    }
    for i, layer in enumerate(syn.typed_layers()):
        ours[f"synthesis.layers.{i}"] = dataclasses.asdict(layer.spec)
    if set(layout) != set(ours):
        raise UnsupportedNetworkError(
            f"the source's synthesis has {len(layout) - 1} layers, gamut's has {len(ours) - 1} for these arguments"
        )
    for path, stored in layout.items():
        for key, value in stored.items():
            if key in ours[path] and not _same(value, ours[path][key]):
                name = f" ({stored['name']})" if "name" in stored else ""
                raise UnsupportedNetworkError(
                    f"G.{path}{name}: the source stores {key}={value}, gamut's StyleGAN3 computes "
                    f"{ours[path][key]} for the imported arguments; gamut cannot reproduce this network"
                )


def _check_filters(g: StyleGAN3Generator, tensors: dict[str, torch.Tensor], what: str, names: dict[str, str]) -> None:
    for key, designed in g.state_dict().items():
        if not key.endswith(("up_filter", "down_filter")):
            continue
        stored = tensors.get(key)
        source = names.get(f"{what}.{key}", f"{what}.{key}")
        if stored is None:
            raise UnsupportedNetworkError(f"{what}.{key}: gamut designs this filter, the source has none ({source})")
        if tuple(stored.shape) != tuple(designed.shape) or not torch.allclose(
            stored.float(), designed.float(), rtol=FILTER_RTOL, atol=FILTER_ATOL
        ):
            diff = (
                f"max abs difference {float((stored.float() - designed.float()).abs().max()):.3g}"
                if stored.shape == designed.shape
                else f"shape {list(stored.shape)} against {list(designed.shape)}"
            )
            raise UnsupportedNetworkError(
                f"{what}.{key} ({source}) differs from the filter gamut designs for this layer ({diff})"
            )


def check_stylegan3(model: StyleGAN3, imported: Imported) -> None:
    """The source's schedule and filters equal those of ``model`` (built from ``imported.hparams``, not
    yet filled); raises naming the first layer or filter that differs."""
    if imported.layout:
        _check_layout(model.G_ema, imported.layout)
    parts = {"G_ema": imported.G_ema, "G": imported.G if imported.G is not None else imported.G_ema}
    for what, tensors in parts.items():
        _check_filters(model.G_ema, tensors, what, imported.source_names)
