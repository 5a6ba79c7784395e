"""Discriminator view: D's scores on a fixed set of real images (and fixed fakes) through training.

The table is ``d_scores.csv`` in the run folder (written by :class:`src.callbacks.d_scores.DScores`):
one row per evaluation with ``kimg``, the mean and std of the real and fake scores, and each real
image's score (``real_0``, ...). :func:`plot_d_scores` draws it as a PNG.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from src.utils.io import atomic_write

SUMMARY_COLUMNS = ("kimg", "real_mean", "real_std", "fake_mean", "fake_std")


def write_table(path: str | Path, rows: list[dict]) -> Path:
    """Rows (dicts with :data:`SUMMARY_COLUMNS` and ``real_<i>``) -> CSV, atomically."""
    columns = list(SUMMARY_COLUMNS) + sorted(
        {k for r in rows for k in r if k.startswith("real_") and k not in SUMMARY_COLUMNS}, key=lambda k: int(k[5:])
    )
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r.get(k, "") for k in columns})
    return atomic_write(path, lambda f: f.write(buf.getvalue()), mode="w")


def read_table(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no D-scores table (train with callbacks=[default,d_scores])")
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def plot_d_scores(rows: list[dict], path: str | Path, title: str = "D scores on fixed images") -> Path:
    """Each real image's score (thin lines), the real and fake means (thick) against kimg -> PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError(f"{path}: no D-score rows to plot")
    kimg = [r["kimg"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    reals = sorted((k for k in rows[0] if k.startswith("real_") and k[5:].isdigit()), key=lambda k: int(k[5:]))
    for k in reals:
        ax.plot(kimg, [r.get(k, float("nan")) for r in rows], color="tab:blue", alpha=0.25, lw=0.8)
    ax.plot(kimg, [r["real_mean"] for r in rows], color="tab:blue", lw=2.2, label="reals (mean)")
    if "fake_mean" in rows[0]:
        ax.plot(kimg, [r["fake_mean"] for r in rows], color="tab:red", lw=2.2, label="fakes (mean)")
    ax.set_xlabel("kimg")
    ax.set_ylabel("D(x) (logit)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))
