"""Confusion-matrix figures like the paper's Figures 5 and 6, one PNG per system.

Uses matplotlib's object API with the Agg canvas (never pyplot), so no display is needed
and no global figure state leaks between calls.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from serbench.experiments.metrics import confusion
from serbench.io import atomic_write_bytes
from serbench.reports.collect import RunResult


def confusion_table(run: RunResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(counts, row-normalized percent) over the run's labels; rows = true, columns = predicted.

    A class with no test utterance gets a row of NaN percent rather than a division by zero.
    """
    counts = confusion(run.predictions["true"], run.predictions["predicted"], run.labels)
    totals = counts.sum(axis=1).to_numpy(dtype=float)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        percent = pd.DataFrame(np.where(totals > 0, 100.0 * counts.to_numpy() / totals, np.nan),
                               index=counts.index, columns=counts.columns)
    return counts, percent


def confusion_figure(run: RunResult, corpus: str) -> Figure:
    """The figure: cell colour = row percent, text = percent and count; title with system, corpus, WA/UA."""
    counts, percent = confusion_table(run)
    k = len(run.labels)
    size = max(4.5, 0.9 * k + 2.0)
    fig = Figure(figsize=(size + 1.0, size), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(np.nan_to_num(percent.to_numpy()), cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="% of true class")
    ax.set_xticks(range(k), labels=run.labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels=run.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            p = percent.iat[i, j]
            text = "–" if np.isnan(p) else f"{p:.0f}%\n({counts.iat[i, j]})"
            # White text on dark cells keeps the numbers readable.
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if not np.isnan(p) and p > 60 else "black")
    m = run.metrics
    ax.set_title(f"{run.system} on {corpus} (run {run.run_id})\n"
                 f"WA {100 * m['wa']:.1f}%  UA {100 * m['ua']:.1f}%  "
                 f"({len(run.predictions)} utterances, {len(m['folds'])} folds)", fontsize=9)
    fig.tight_layout()
    return fig


def figure_path(out_dir: str | Path, system: str, kind: str = "confusion") -> Path:
    """``<out>/<kind>-<system>.png``, the system name made filename-safe."""
    return Path(out_dir) / f"{kind}-{re.sub(r'[^A-Za-z0-9._+-]', '_', system)}.png"


def write_confusion(run: RunResult, corpus: str, out_dir: str | Path) -> Path:
    """Render and atomically write one system's confusion PNG; returns its path."""
    fig = confusion_figure(run, corpus)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path = figure_path(out_dir, run.system)
    atomic_write_bytes(path, buf.getvalue())
    return path
