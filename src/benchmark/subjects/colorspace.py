"""``benchmark.py colorspace``: milliseconds per batch for ``encode`` and ``decode`` of each color space
(``space=all`` or one name) on ``device`` (median of ``repeats``), and, when scikit-image is installed
(``pip install scikit-image``, or the ``bench`` extra), the same round trip with skimage on the CPU for
comparison."""

from __future__ import annotations

import platform
import statistics
import time
import types
from collections.abc import Callable
from typing import Any

import torch

from src.benchmark.harness import device_of, resolution_of
from src.benchmark.options import BASE, Sizes, Subject
from src.colorspaces import COLORSPACE_NAMES, get_colorspace
from src.profiling.measure import synchronize

__all__ = ["SUBJECT"]


def _skimage_pairs() -> dict[str, tuple[Callable, Callable]] | None:
    """skimage's forward/inverse for each space (HWC float arrays in [0, 1]); None when not installed."""
    try:
        import skimage.color as SC
    except ImportError:
        return None
    return {
        "gray": (SC.rgb2gray, SC.gray2rgb),
        "hsv": (SC.rgb2hsv, SC.hsv2rgb),
        "lab": (SC.rgb2lab, SC.lab2rgb),
        "ycbcr": (SC.rgb2ycbcr, SC.ycbcr2rgb),
    }


def _median_ms(fn: Callable[[], Any], repeats: int, device: torch.device | None = None) -> float:
    times = []
    for _ in range(repeats):
        if device is not None:
            synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device is not None:
            synchronize(device)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 3)


def run(args: types.SimpleNamespace) -> dict:
    res = resolution_of(args)
    device = device_of(args)
    spaces = list(COLORSPACE_NAMES) if args.space == "all" else [args.space]
    sk = _skimage_pairs()
    g = torch.Generator().manual_seed(0)
    rows = []
    for name in spaces:
        cs = get_colorspace(name, "space")
        x = torch.rand(args.batch, cs.input_channels, *res, generator=g).to(device)
        with torch.no_grad():
            y = cs.encode(x)
            for _ in range(args.warmup):
                cs.decode(cs.encode(x))
            row: dict[str, Any] = {
                "space": name,
                "encode_ms": _median_ms(lambda: cs.encode(x), args.repeats, device),
                "decode_ms": _median_ms(lambda: cs.decode(y), args.repeats, device),
            }
        row["encode_decode_ms"] = round(row["encode_ms"] + row["decode_ms"], 3)
        if sk is None:
            row["skimage_cpu_ms"] = "unavailable (scikit-image not installed)"
        elif name not in sk:
            row["skimage_cpu_ms"] = "n/a (no skimage equivalent)"
        else:
            fwd, inv = sk[name]
            imgs = [a for a in x[:, :3].cpu().permute(0, 2, 3, 1).double().numpy()]

            def roundtrip() -> None:
                for a in imgs:
                    inv(fwd(a))

            row["skimage_cpu_ms"] = _median_ms(roundtrip, max(1, args.repeats // 2))
            row["skimage_encode_ms"] = _median_ms(lambda: [fwd(a) for a in imgs], max(1, args.repeats // 2))
        rows.append(row)
    return {
        "what": "colorspace",
        "device": str(device),
        "resolution": list(res),
        "batch": args.batch,
        "repeats": args.repeats,
        "results": rows,
        "skimage": sk is not None,
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
    }


def check(args: types.SimpleNamespace) -> None:
    if args.space != "all":
        get_colorspace(args.space, "space")  # a bad space= fails before anything is timed


SUBJECT = Subject(
    "colorspace", run, BASE | dict(space="all", repeats=10, threads=None), Sizes([256], 16, None, 2), check
)
