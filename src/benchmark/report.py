"""The JSON report of a timed training iteration, and two reports side by side.

:func:`training_report` turns a fit timed by :func:`src.benchmark.harness.fit_timed` into the
benchmark's fields: throughput, parameter counts, per-phase seconds, FLOPs and the fraction of the
device's peak (when a :class:`~src.profiling.measure.PhaseRecorder` was attached), and peak memory.
:func:`side_by_side` puts gamut's report beside NVIDIA's (``nvidia=PATH``) with the speed-up.
"""

from __future__ import annotations

import platform
import types
from typing import Any

import torch

from src.benchmark.harness import IterationTimer
from src.modules.base import GANModule
from src.profiling.measure import memory_report, peak_gflops, phase_report, significant

__all__ = ["on_common_peak", "side_by_side", "training_report"]


def training_report(
    name: str,
    model: GANModule,
    timer: IterationTimer,
    args: types.SimpleNamespace,
    res: tuple[int, int],
    **extra: Any,
) -> dict:
    """The report of ``model`` timed by ``timer``; ``extra`` fields go after the run's settings."""
    it = timer.seconds_per_iteration()
    out = {
        "model": name,
        "device": str(model.device),
        "precision": args.precision,
        "resolution": list(res),
        "batch": args.batch,
        "compile": args.compile,
        "channels_last": args.channels_last,
        "malloc_cache": not args.system_malloc,
        **extra,
        "timed_iterations": timer.timed,
        "sec_per_iteration": round(it, 4),
        "images_per_sec": round(args.batch / it, 3),
        "sec_per_kimg": round(1000 / args.batch * it, 1),
        "params_G": sum(p.numel() for p in model.G.parameters()),
        "params_D": sum(p.numel() for p in model.D.parameters()),
    }
    rec = model.phase_recorder
    if rec is not None and rec.calls:
        peak, source = peak_gflops(model.device, args.precision)
        out.update(phase_report(rec, model.phase_intervals(), peak, it))
        out["peak_gflops"], out["peak_source"] = round(peak, 1), source
    out.update(memory_report(model.device))
    out["torch"] = torch.__version__
    out["machine"] = platform.machine()
    return out


def on_common_peak(*reports: dict) -> None:
    """Re-express every fraction of the peak in ``reports`` (and in their ``inference`` parts) against the
    highest ``peak_gflops`` among those measured the same way (``peak_source``), in place.

    On a CPU the peak is the best matmul this process has timed (:func:`~src.profiling.measure.measured_peak_gflops`):
    the report written first saw only the measurements made before it, and on a shared machine the same
    matmul can run at two thirds of its best speed for minutes. Without this, gamut's report and
    NVIDIA's in one run would divide by different peaks (a fraction above 1 has been seen).
    """
    parts = [part for report in reports for part in (report, report.get("inference")) if isinstance(part, dict)]
    parts = [part for part in parts if "peak_gflops" in part]
    for source in {part["peak_source"] for part in parts}:
        same = [part for part in parts if part["peak_source"] == source]
        peak = max(part["peak_gflops"] for part in same)
        for part in same:
            part["peak_gflops"] = peak
            for row in part.get("phases", {}).values():
                if "gflops" in row:
                    row["peak_fraction"] = significant(row["gflops"] / peak)
            if "gflops" in part:  # an inference report
                part["peak_fraction"] = significant(part["gflops"] / peak)
            elif "gflop_per_iteration" in part:
                part["peak_fraction"] = significant(part["gflop_per_iteration"] / part["sec_per_iteration"] / peak)


def side_by_side(ours: dict, theirs: dict, key: str) -> dict:
    """Both reports, their fractions of the peak against one peak (:func:`on_common_peak`), and how many
    times faster gamut is (``theirs[key] / ours[key]``)."""
    on_common_peak(ours, theirs)
    return {
        "gamut": ours,
        "nvidia": theirs,
        "speedup": round(theirs[key] / ours[key], 3),
        "same_parameter_counts": all(ours.get(k) == theirs.get(k) for k in ("params_G", "params_D") if k in theirs),
    }
