"""Per-phase timing and FLOP counting for the training step, and the device's measured peak.

A module calls ``with self.phase("Gmain"):`` around each phase (see ``GANModule.phase``); with no
recorder attached that is a no-op, so training pays nothing. The benchmark (``scripts/benchmark.py``,
:mod:`src.benchmark`) attaches a :class:`PhaseRecorder` to time every phase (synchronising the
device at its edges) or, for one iteration, to count its FLOPs with :class:`FlopCount` (forward and
every backward, double backward included), from which it reports the fraction of the device's peak.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from contextlib import contextmanager

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

# Dense peak TFLOP/s by (GPU name fragment, dtype family): the vendors' data-sheet figures for the
# SXM parts, used for model FLOP utilization on GPU. fp32 means plain (non-tensor-core) float32.
GPU_PEAK_TFLOPS = {
    ("H200", "bf16"): 989.0,
    ("H200", "fp16"): 989.0,
    ("H200", "tf32"): 494.0,
    ("H200", "fp32"): 67.0,
    ("H100", "bf16"): 989.0,
    ("H100", "fp16"): 989.0,
    ("H100", "tf32"): 494.0,
    ("H100", "fp32"): 67.0,
    ("A100", "bf16"): 312.0,
    ("A100", "fp16"): 312.0,
    ("A100", "tf32"): 156.0,
    ("A100", "fp32"): 19.5,
}


def synchronize(device: torch.device | str) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class FlopCount(TorchDispatchMode):
    """Counts the FLOPs of every op that has a formula in PyTorch's ``flop_registry`` (matmuls,
    convolutions and their backward ops), the way ``FlopCounterMode`` does, but without its module
    hooks, which ``torch.autograd.grad`` on a leaf (R1, path length) does not support."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        formula = flop_registry.get(func._overloadpacket)
        if formula is None:  # a composite op (conv2d under inference_mode): count what it decomposes into
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = func(*args, **kwargs)
        if formula is not None:
            self.total += int(formula(*args, **kwargs, out_val=out))
        return out


class PhaseRecorder:
    """Wall time (and, while ``counting``, FLOPs) per named phase.

    ``seconds[name]`` and ``calls[name]`` accumulate while ``timing`` is on; ``flops[name]`` holds
    the FLOPs of the last counted call of each phase.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.timing = False
        self.counting = False
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.flops: dict[str, int] = {}

    @contextmanager
    def __call__(self, name: str):
        if self.counting:
            counter = FlopCount()
            with counter:
                yield
            self.flops[name] = counter.total
            return
        if not self.timing:
            yield
            return
        synchronize(self.device)
        t0 = time.perf_counter()
        yield
        synchronize(self.device)
        self.seconds[name] += time.perf_counter() - t0
        self.calls[name] += 1

    def mean_seconds(self) -> dict[str, float]:
        return {k: self.seconds[k] / self.calls[k] for k in self.seconds if self.calls[k]}


_PEAKS: dict[tuple[str, torch.dtype], float] = {}


def measured_peak_gflops(
    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, size: int | None = None, repeats: int = 5
) -> float:
    """The best GFLOP/s of a square matmul on ``device`` (what "peak" means on a CPU here).

    The best over every measurement this process has made, so a busy moment cannot lower it. A report
    written earlier saw fewer measurements: :func:`src.benchmark.report.on_common_peak` puts the reports
    of one run on the same peak afterwards.
    """
    device = torch.device(device)
    size = size or (2048 if device.type == "cpu" else 8192)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    key = (str(device), dtype)
    _PEAKS[key] = max(_PEAKS.get(key, 0.0), 2 * size**3 / best / 1e9)
    return _PEAKS[key]


def datasheet_peak_tflops(device_name: str, precision: str) -> float | None:
    """Data-sheet dense peak for a known GPU at a Lightning ``precision`` string, else None."""
    family = "bf16" if "bf16" in precision else "fp16" if precision.startswith("16") else "fp32"
    if family == "fp32" and torch.backends.cuda.matmul.allow_tf32:
        family = "tf32"
    for (fragment, fam), value in GPU_PEAK_TFLOPS.items():
        if fragment in device_name and fam == family:
            return value
    return None


def peak_gflops(device: torch.device, precision: str) -> tuple[float, str]:
    """The peak the FLOP fractions are taken against, and where it comes from."""
    if device.type == "cuda":
        sheet = datasheet_peak_tflops(torch.cuda.get_device_name(device), precision)
        if sheet is not None:
            return sheet * 1000, "data sheet, dense"
    dtype = torch.bfloat16 if "bf16" in precision else torch.float16 if precision.startswith("16") else torch.float32
    if device.type == "cpu":
        dtype = torch.float32 if dtype is torch.float16 else dtype
    return measured_peak_gflops(device, dtype), f"best {dtype} matmul measured here"


def significant(x: float, digits: int = 3) -> float:
    """``x`` to ``digits`` significant digits: small networks' fractions of peak stay visible (not 0.0)."""
    return float(f"{x:.{digits}g}")


def phase_table(rec: PhaseRecorder, intervals: dict[str, int], peak: float) -> tuple[dict, float]:
    """Per phase: mean seconds, GFLOP, GFLOP/s and fraction of ``peak``; and the amortized iteration
    (each phase's mean over its interval). ``intervals`` maps a phase to how often it runs."""
    rows, amortized = {}, 0.0
    for name, secs in rec.mean_seconds().items():
        row = {"sec": round(secs, 4), "calls": rec.calls[name], "every": intervals.get(name, 1)}
        if name in rec.flops:
            gflop = rec.flops[name] / 1e9
            rate = gflop / secs
            row.update(gflop=significant(gflop), gflops=significant(rate), peak_fraction=significant(rate / peak))
        rows[name] = row
        amortized += secs / row["every"]
    return rows, amortized


def phase_report(rec: PhaseRecorder, intervals: dict[str, int], peak: float, sec_per_iteration: float) -> dict:
    """The per-phase part of a training report (gamut's and NVIDIA's alike): the phase table, the
    amortized iteration from it and, with FLOPs counted, the GFLOP per iteration and fraction of peak."""
    table, amortized = phase_table(rec, intervals, peak)
    out = {"phases": table, "sec_per_iteration_from_phases": round(amortized, 4)}
    if rec.flops:
        gflop = sum(rec.flops[k] / intervals.get(k, 1) for k in rec.flops) / 1e9
        out["gflop_per_iteration"] = significant(gflop)
        out["peak_fraction"] = significant(gflop / sec_per_iteration / peak)
    return out


def peak_rss_bytes() -> int | None:
    """This process's peak resident memory in bytes: ``getrusage`` where the OS has it (``ru_maxrss`` is
    KiB on Linux, bytes on macOS), the peak working set on Windows (through psutil), None if neither."""
    try:
        import resource
    except ImportError:  # Windows
        try:
            import psutil  # type: ignore[import-untyped]

            return int(psutil.Process().memory_info().peak_wset)
        except (ImportError, AttributeError):
            return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss) if sys.platform == "darwin" else int(rss) * 1024


def memory_report(device: torch.device) -> dict:
    if device.type == "cuda":
        return {
            "peak_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
            "gpu": torch.cuda.get_device_name(device),
        }
    # peak RSS of the process (covers everything this process ran before, too)
    return {
        "peak_memory_mb": round((peak_rss_bytes() or 0) / 2**20, 1),
        "cpu_threads": torch.get_num_threads(),
    }


class LossHistory:
    """The losses of a run, one row per iteration (:meth:`start`, then :meth:`add`), summarised as means
    over equal windows of iterations (:meth:`summary`): how a benchmark that also trains reports its
    losses next to its timings, the same way for gamut's run and a reference's."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def start(self) -> None:
        self.rows.append({})

    def add(self, name: str, value: torch.Tensor | float) -> None:
        """Record ``value`` (a tensor: its mean) under ``name`` for the current iteration."""
        v = value.detach().float().mean() if isinstance(value, torch.Tensor) else value
        self.rows[-1][name] = float(v)

    def summary(self, windows: int = 4) -> dict:
        """``{name: [mean over window 1, ...]}`` over ``windows`` consecutive equal spans of the
        iterations (iterations where a loss was not computed, e.g. R1 between its intervals, are skipped)."""
        n = len(self.rows)
        spans = [(n * k // windows, n * (k + 1) // windows) for k in range(windows)]
        names = sorted({key for row in self.rows for key in row})
        out: dict = {"iterations": n, "windows": [[a, b] for a, b in spans]}
        for name in names:
            means = []
            for a, b in spans:
                values = [row[name] for row in self.rows[a:b] if name in row]
                means.append(significant(sum(values) / len(values), 4) if values else None)
            out[name] = means
        return out
