"""The benchmark's side-by-side report (src/benchmark/report.py): gamut's and NVIDIA's fractions of the
peak are taken against one peak, the best either report measured.

On the 2-core CPU the same 2048-square matmul measured 107 GFLOP/s before gamut's side of a run and 179
after NVIDIA's (2026-12-07), and gamut's Dmain came out at "157% of the peak" against the first.
"""

from __future__ import annotations

import pytest

from src.benchmark.report import on_common_peak, side_by_side

CPU = "best torch.float32 matmul measured here"


def training(peak: float, sec: float, phases: dict[str, float], gflop: float, source: str = CPU) -> dict:
    """A training report as :func:`src.benchmark.report.training_report` writes one (the fields read here)."""
    rows = {name: dict(sec=1.0, gflops=rate, peak_fraction=round(rate / peak, 3)) for name, rate in phases.items()}
    return dict(
        sec_per_iteration=sec,
        phases=rows,
        gflop_per_iteration=gflop,
        peak_fraction=round(gflop / sec / peak, 3),
        peak_gflops=peak,
        peak_source=source,
    )


def test_both_sides_are_divided_by_the_higher_peak() -> None:
    ours = training(100.0, 20.0, dict(Gmain=129.0, Dmain=168.0), 2730.0)
    ours["inference"] = dict(gflops=102.0, peak_fraction=1.02, peak_gflops=100.0, peak_source=CPU)
    theirs = training(180.0, 22.0, dict(Gmain=124.0, Dmain=126.0), 2730.0)
    out = side_by_side(ours, theirs, "sec_per_iteration")
    assert out["speedup"] == pytest.approx(1.1)
    for side in (ours, theirs):
        assert side["peak_gflops"] == 180.0
    assert ours["phases"]["Gmain"]["peak_fraction"] == pytest.approx(129 / 180, abs=1e-3)
    assert ours["phases"]["Dmain"]["peak_fraction"] == pytest.approx(168 / 180, abs=1e-3)
    assert theirs["phases"]["Dmain"]["peak_fraction"] == pytest.approx(0.7, abs=1e-3)
    assert ours["peak_fraction"] == pytest.approx(2730 / 20 / 180, abs=1e-3)  # 0.758, not 1.365
    assert theirs["peak_fraction"] == pytest.approx(2730 / 22 / 180, abs=1e-3)
    assert ours["inference"]["peak_fraction"] == pytest.approx(102 / 180, abs=1e-3)


def test_peaks_measured_differently_are_not_mixed() -> None:
    """A GPU report on its data sheet's peak keeps it; only reports of the same source share a peak."""
    gpu = training(989_000.0, 1.0, dict(Gmain=400_000.0), 400_000.0, source="data sheet, dense")
    low, high = training(100.0, 2.0, dict(Gmain=50.0), 100.0), training(150.0, 2.0, dict(Gmain=60.0), 120.0)
    on_common_peak(gpu, low, high)
    assert gpu["peak_gflops"] == 989_000.0
    assert gpu["phases"]["Gmain"]["peak_fraction"] == pytest.approx(400 / 989, abs=1e-3)
    assert low["peak_gflops"] == high["peak_gflops"] == 150.0
    assert low["phases"]["Gmain"]["peak_fraction"] == pytest.approx(1 / 3, abs=1e-3)
    assert high["phases"]["Gmain"]["peak_fraction"] == pytest.approx(0.4, abs=1e-3)


def test_a_report_without_flops_is_left_alone() -> None:
    """A report that counted no FLOPs (no ``peak_gflops``) passes through unchanged."""
    plain = dict(sec_per_iteration=3.0, phases=dict(Gmain=dict(sec=1.0)))
    other = training(100.0, 2.0, dict(Gmain=50.0), 100.0)
    on_common_peak(plain, other)
    assert plain == dict(sec_per_iteration=3.0, phases=dict(Gmain=dict(sec=1.0)))
    assert other["phases"]["Gmain"]["peak_fraction"] == 0.5
