"""Augmentation over a run: ADA's p and the overfitting heuristic r_t against kimg.

Reads the metrics a run logged with the CSV logger (``<run>/csv/<version>/metrics.csv``, every
version in order, so a resumed run reads as one): ``augment/p`` and ``augment/rt`` (ADA) and
``D/real_sign`` (each batch's r_t, logged with or without augmentation). :func:`plot_augment`
draws one or more runs side by side, e.g. the same data with and without ADA.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from src.utils.io import atomic_write

COLUMNS = ("augment/p", "augment/rt", "D/real_sign")


def read_run(run_dir: str | Path) -> dict[str, list[tuple[float, float]]]:
    """``{column: [(kimg, value), ...]}`` for :data:`COLUMNS` from the run's CSV metrics."""
    run_dir = Path(run_dir)
    files = sorted((run_dir / "csv").glob("*/metrics.csv"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no csv/*/metrics.csv (train with logger=csv, or logger=many)")
    series: dict[str, dict[float, float]] = {c: {} for c in COLUMNS}
    for path in files:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if not row.get("step"):
                    continue
                kimg = float(row["step"]) / 1000
                for c in COLUMNS:
                    if row.get(c) not in (None, ""):
                        series[c][kimg] = float(row[c])
    return {c: sorted(v.items()) for c, v in series.items()}


def _smooth(points: list[tuple[float, float]], window: int) -> list[tuple[float, float]]:
    """Trailing mean over ``window`` points (a batch's r_t is noisy; ADA averages it too)."""
    out = []
    for i, (x, _) in enumerate(points):
        chunk = [v for _, v in points[max(0, i - window + 1) : i + 1]]
        out.append((x, sum(chunk) / len(chunk)))
    return out


def plot_augment(runs: dict[str, str | Path], path: str | Path, target: float = 0.6, window: int = 10) -> Path:
    """r_t (top: each batch's, smoothed over ``window`` logged points, and ADA's own where logged)
    and p (bottom) against kimg for each named run -> PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), dpi=100, sharex=True)
    for i, (name, run_dir) in enumerate(runs.items()):
        series = read_run(run_dir)
        color = f"C{i}"
        if series["D/real_sign"]:
            x, y = zip(*_smooth(series["D/real_sign"], window))
            top.plot(x, y, color=color, lw=1.6, label=f"{name}: r_t (batches, smoothed)")
        if series["augment/rt"]:
            x, y = zip(*series["augment/rt"])
            top.plot(x, y, color=color, lw=0.8, ls=":", label=f"{name}: r_t (ADA's)")
        if series["augment/p"]:
            x, y = zip(*series["augment/p"])
            bottom.plot(x, y, color=color, lw=1.6, label=f"{name}: p")
        else:
            bottom.plot([], [], color=color, lw=1.6, label=f"{name}: no augmentation")
    top.axhline(target, color="gray", ls="--", lw=1, label=f"target {target}")
    top.set_ylabel("r_t = E[sign D(real)]")
    top.set_ylim(-1.05, 1.05)
    bottom.set_ylabel("augmentation p")
    bottom.set_xlabel("kimg")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))
