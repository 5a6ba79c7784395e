"""Side-by-side check of gamut's filtered leaky ReLU against NVIDIA's reference (StyleGAN3).

Runs NVlabs/stylegan3's ``torch_utils/ops/filtered_lrelu.py:_filtered_lrelu_ref`` (from a checkout given
with ``--reference``, outside this repository; nothing of it is copied here) and
:func:`src.modules.stylegan3.filtered_lrelu.filtered_lrelu` on the same inputs, for the configurations of
``tests/test_stylegan3_filtered_lrelu.py``:

1. every (up, down, taps, padding, separable/radial) combination configs T and R use at 16..1024 px,
   at its smallest layer, with random asymmetric filters, flip_filter False and True, clamp active;
2. every distinct layer of the T and R generators at 256 and 1024 px at its own size, with the filters
   NVIDIA designs for it (``SynthesisLayer.design_lowpass_filter``, the schedule's cutoffs and widths),
   clamp 256 as in training.

Both in float64 and float32: output, gradient w.r.t. ``x`` and w.r.t. ``b`` for a random output gradient.
Prints one JSON line per case (max absolute difference, and relative to the reference's largest
magnitude) and a summary. ``--bench`` instead measures forward+backward time and peak memory of both on
typical 256-px layers, each run in a fresh process (peak resident memory above the inputs' baseline).
NVIDIA's code imports ``pkg_resources`` (``parse_version``), which recent setuptools no longer ships; a
stand-in from ``packaging`` is installed for the import.

    python -m tests.parity.filtered_lrelu --reference /path/to/stylegan3
    OMP_NUM_THREADS=2 python -m tests.parity.filtered_lrelu --reference /path/to/stylegan3 --bench
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path
from typing import Any

import packaging.version
import torch

from src.modules.stylegan3.filtered_lrelu import filtered_lrelu
from tests.test_stylegan3_filtered_lrelu import COMBOS, Geometry, filters, schedule

ROOT = Path(__file__).resolve().parents[2]

# Typical 256-px layers for --bench: (config, layer index).
BENCH_LAYERS = [("t", 8), ("r", 8), ("t", 7), ("r", 7)]


def import_reference(path: str) -> tuple[Any, Any]:
    """NVIDIA's ``_filtered_lrelu_ref`` and ``SynthesisLayer`` (for its filter design)."""
    if "pkg_resources" not in sys.modules:
        shim = types.ModuleType("pkg_resources")
        shim.parse_version = packaging.version.parse  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    root = Path(path).resolve()
    if ROOT in root.parents or root == ROOT:
        raise SystemExit("--reference must be a checkout outside this repository")
    sys.path.insert(0, str(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_utils.ops.filtered_lrelu import _filtered_lrelu_ref  # type: ignore[import-not-found]
        from training.networks_stylegan3 import SynthesisLayer
    return _filtered_lrelu_ref, SynthesisLayer


def design(layer_cls: Any, res: int, cfg: str) -> list[tuple[torch.Tensor | None, torch.Tensor | None]]:
    """NVIDIA's up/down filters of each layer (the schedule's f_c and f_h, networks_stylegan3.py)."""
    n, crit = 14, 2
    exps = [min(i / (n - crit), 1.0) for i in range(n + 1)]
    cutoffs = [2 * (res / 2 / 2) ** e for e in exps]
    stops = [2**2.1 * (res / 2 * 2**0.3 / 2**2.1) ** e for e in exps]
    rates = [2 ** math.ceil(math.log2(min(2 * t, res))) for t in stops]
    half = [max(t, s / 2) - c for t, s, c in zip(stops, rates, cutoffs, strict=True)]
    out = []
    for i, g in enumerate(schedule(res, cfg)):
        prev, tmp = max(i - 1, 0), max(rates[max(i - 1, 0)], rates[i]) * (1 if g.torgb else 2)
        fu = layer_cls.design_lowpass_filter(g.taps_up, cutoffs[prev], half[prev] * 2, tmp)
        fd = layer_cls.design_lowpass_filter(g.taps_down, cutoffs[i], half[i] * 2, tmp, radial=g.radial)
        out.append((fu, fd))
    return out


def compare(
    ref_op: Any,
    g: Geometry,
    fu: Any,
    fd: Any,
    dtype: torch.dtype,
    clamp: float,
    flip: bool,
    seed: int,
    nc: tuple[int, int],
) -> dict:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*nc, *g.in_size, generator=gen).to(dtype)
    b = (torch.randn(nc[1], generator=gen) * 0.5).to(dtype)
    kw: dict[str, Any] = dict(up=g.up, down=g.down, padding=list(g.padding), clamp=clamp, flip_filter=flip)
    if g.torgb:
        kw.update(gain=1, slope=1)
    results = []
    for op in (ref_op, filtered_lrelu):
        xr, br = x.clone().requires_grad_(), b.clone().requires_grad_()
        y = op(xr, fu=fu, fd=fd, b=br, **kw)
        dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed + 1)).to(dtype)
        y.backward(dy)
        results.append((y.detach(), xr.grad, br.grad))
    row: dict[str, Any] = {}
    for name, theirs, mine in zip(("out", "dx", "db"), results[0], results[1], strict=True):
        assert theirs is not None and mine is not None
        diff = (mine.double() - theirs.double()).abs().max().item()
        row[f"{name}_abs"] = diff
        row[f"{name}_rel"] = diff / max(theirs.double().abs().max().item(), 1e-30)
    return row


def parity(reference: str) -> None:
    ref_op, layer_cls = import_reference(reference)
    worst: dict[str, float] = {}
    cases: list[tuple[str, Geometry, Any, Any, float, bool, tuple[int, int]]] = []
    for i, (_combo, g) in enumerate(sorted(COMBOS.items())):
        fu, fd = filters(g, torch.Generator().manual_seed(i))
        for flip in (False, True):
            cases.append((f"combo{i}", g, fu, fd, 0.8, flip, (2, 3)))
    for res in (256, 1024):
        for cfg in ("t", "r"):
            seen = set()
            for i, (g, (fu, fd)) in enumerate(zip(schedule(res, cfg), design(layer_cls, res, cfg), strict=True)):
                if (g.combo, g.in_size) not in seen:
                    seen.add((g.combo, g.in_size))
                    cases.append((f"{cfg}{res}-L{i}", g, fu, fd, 256.0, False, (1, 1)))
    for name, g, fu, fd, clamp, flip, nc in cases:
        for dtype in (torch.float64, torch.float32):
            row = compare(ref_op, g, fu, fd, dtype, clamp, flip, len(name), nc)
            key = str(dtype).replace("torch.", "")
            for k, v in row.items():
                worst[f"{key}_{k}"] = max(worst.get(f"{key}_{k}", 0.0), v)
            info = dict(case=name, dtype=key, up=g.up, down=g.down, taps=[g.taps_up, g.taps_down], radial=g.radial)
            info.update(
                padding=list(g.padding), size=list(g.in_size), flip=flip, **{k: f"{v:.2e}" for k, v in row.items()}
            )
            print(json.dumps(info), flush=True)
    print(json.dumps({"cases": len(cases) * 2, "max": {k: f"{v:.2e}" for k, v in sorted(worst.items())}}))


def bench_one(reference: str, impl: str, cfg: str, index: int) -> None:
    """One forward+backward of one layer (batch 1, its real channel count), in this fresh process."""
    ref_op, layer_cls = import_reference(reference)
    g = schedule(256, cfg)[index]
    fu, fd = design(layer_cls, 256, cfg)[index]
    channels = {"t": 512, "r": 1024}[cfg]  # 256-px L7/L8 (channel_base 32768, doubled for R)
    op = ref_op if impl == "nvidia_ref" else filtered_lrelu
    torch.manual_seed(0)
    x = torch.randn(1, channels, *g.in_size, requires_grad=True)
    b = torch.zeros(channels, requires_grad=True)
    kw: dict[str, Any] = dict(up=g.up, down=g.down, padding=list(g.padding), clamp=256.0)

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    base = rss()
    times = []
    for _ in range(2):
        x.grad = b.grad = None
        t0 = time.perf_counter()
        y = op(x, fu=fu, fd=fd, b=b, **kw)
        y.backward(torch.ones_like(y))
        times.append(time.perf_counter() - t0)
        del y
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            dict(
                impl=impl,
                layer=f"{cfg}256-L{index}",
                shape=[1, channels, *g.in_size],
                up=g.up,
                down=g.down,
                radial=g.radial,
                first_s=round(times[0], 3),
                second_s=round(times[1], 3),
                peak_mib=round((peak - base) / 2**20),
            )
        )
    )


def bench(reference: str) -> None:
    for cfg, index in BENCH_LAYERS:
        for impl in ("nvidia_ref", "gamut"):
            cmd = [
                sys.executable,
                "-m",
                "tests.parity.filtered_lrelu",
                "--reference",
                reference,
                "--bench-one",
                impl,
                cfg,
                str(index),
            ]
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
            print(out.strip().splitlines()[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="a NVlabs/stylegan3 checkout outside this repository")
    parser.add_argument("--bench", action="store_true", help="time and peak memory on typical 256-px layers")
    parser.add_argument("--bench-one", nargs=3, metavar=("IMPL", "CFG", "LAYER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bench_one:
        impl, cfg, index = args.bench_one
        bench_one(args.reference, impl, cfg, int(index))
    elif args.bench:
        bench(args.reference)
    else:
        parity(args.reference)


if __name__ == "__main__":
    main()
