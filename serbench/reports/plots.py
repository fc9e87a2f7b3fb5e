"""The report's figures, each drawn from the results store and returned with the numbers it shows.

Every function returns a :class:`Plot`: the matplotlib figure (object API, Agg canvas, no
pyplot state), the long-form ``data`` the figure draws (so a reader, and a test, can check
each number), a caption and an alt text. :func:`png_bytes` renders a figure without the
PNG's software tag, so an embedded image carries no URL.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from serbench.reports.collect import Collection, RunResult
from serbench.reports.figures import confusion_table, figure_path
from serbench.reports.significance import MCNEMAR, T_TEST, compare
from serbench.reports.tables import deep_runs, model_label, paper_best_segments, reported

DPI = 96
# Above this many systems the significance cells are too small for their p values.
MAX_ANNOTATED = 28


@dataclass
class Plot:
    """A figure and the numbers it draws (``data``: one row per drawn value)."""

    key: str
    figure: Figure
    data: pd.DataFrame
    caption: str
    alt: str
    extra: dict = field(default_factory=dict)


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG, without matplotlib's "Software" tag (it holds a URL)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _fold_ua(run: RunResult) -> pd.Series:
    return 100 * run.fold_series("ua")


# ---------------------------------------------------------------- UA against N (Table II)

def segments_plot(col: Collection) -> Plot | None:
    """UA against the number of segments N for every segmented deep model, per-fold dots, paper's values.

    Lines join the pooled UA of each model (solid: the paper's protocol, dotted: per-speaker
    normalized); small dots are the per-fold UA; the paper's CNN+SRU (Tables I-II) is a dashed
    grey line and its CNN / SRU (Table III, at its best N) hollow markers. None without any run.
    """
    models = sorted({(r.spec.model, r.spec.speaker_norm) for r in col.runs.values()
                     if r.spec.kind == "deep" and r.spec.model and r.spec.segments is not None},
                    key=lambda m: (m[1], {"cnn-sru": 0, "cnn": 1, "sru": 2}.get(m[0], 3), m[0]))
    if not models:
        return None
    fig = new_figure(7.5, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    colors = _palette(len(models))
    rows: list[dict] = []
    offsets = np.linspace(-0.12, 0.12, len(models)) if len(models) > 1 else [0.0]
    for (model, spk), color, off in zip(models, colors, offsets):
        runs = deep_runs(col, model, spk)
        ns = sorted(runs)
        label = model_label(model, runs[ns[0]]) + (" (speaker norm)" if spk else "")
        pooled = [100 * runs[n].metrics["ua"] for n in ns]
        ax.plot(ns, pooled, marker="o", color=color, linestyle=":" if spk else "-", label=label, zorder=3)
        for n, ua in zip(ns, pooled):
            rows.append({"model": label, "N": n, "what": "pooled", "fold": "", "ua": ua, "system": runs[n].system})
            folds = _fold_ua(runs[n])
            ax.scatter(np.full(len(folds), n + off), folds.to_numpy(), s=12, color=color, alpha=0.45,
                       linewidths=0, zorder=2)
            rows += [{"model": label, "N": n, "what": "fold", "fold": f, "ua": v, "system": runs[n].system}
                     for f, v in folds.items()]
    paper = _paper_curve(col)
    if paper:
        ns, ua = zip(*paper)
        ax.plot(ns, ua, linestyle="--", color="0.35", marker="s", markersize=4, label="CNN+SRU, paper")
        rows += [{"model": "CNN+SRU, paper", "N": n, "what": "paper", "fold": "", "ua": v, "system": ""}
                 for n, v in paper]
    best_n = paper_best_segments(col)
    for name, marker in (("CNN", "^"), ("SRU", "v")):
        entry = reported(col).get((col.corpus.lower(), "III", name))
        if entry and entry.get("ua") is not None and best_n is not None:
            ax.scatter([best_n], [entry["ua"]], marker=marker, facecolors="none", edgecolors="0.35", s=40,
                       label=f"{name}, paper (N={best_n})", zorder=4)
            rows.append({"model": f"{name}, paper", "N": best_n, "what": "paper", "fold": "", "ua": entry["ua"],
                         "system": ""})
    data = pd.DataFrame(rows)
    ax.set_xticks(sorted(set(data["N"])))
    ax.set_xlabel("number of segments N")
    ax.set_ylabel("UA %")
    ax.set_ylim(_ylim(data["ua"]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_title(f"UA against N, {col.corpus}: lines = pooled UA, dots = per fold", fontsize=10)
    fig.tight_layout()
    caption = ("UA against the number of segments N (Table II as a plot). Lines join the pooled UA; the small dots "
               "beside each point are the per-fold UA (the spread over speakers)."
               + (" Dashed grey: the paper's CNN+SRU (Tables I and II); hollow triangles: its CNN and SRU "
                  "(Table III)." if paper else " The paper reports nothing for this corpus."))
    return Plot("segments", fig, data, caption, f"UA against N on {col.corpus} for {len(models)} model(s)")


def _paper_curve(col) -> list[tuple[int, float]]:
    out = []
    for (c, table, row), entry in reported(col).items():
        if c == col.corpus.lower() and table in ("I", "II") and entry.get("ua") is not None:
            out.append((1 if table == "I" else int(row.split("=")[1]), float(entry["ua"])))
    return sorted(out)


def _ylim(values: pd.Series) -> tuple[float, float]:
    lo, hi = float(values.min()), float(values.max())
    return max(0.0, math.floor(lo / 10) * 10 - 5), min(100.0, math.ceil(hi / 10) * 10 + 5)


def _palette(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ---------------------------------------------------------------- per-fold UA by speaker

def fold_dots_plot(col: Collection) -> Plot:
    """Per-fold UA of every system, one dot per fold coloured by speaker; a tick marks the pooled UA.

    Systems run top (best pooled UA) to bottom; speakers are ordered hardest first (lowest mean
    UA over the systems) in the legend, so a reader sees at once which speakers are hard.
    """
    runs = sorted(col.runs.values(), key=lambda r: (-r.metrics["ua"], r.system))
    rows = [{"system": r.system, "fold": f, "ua": v} for r in runs for f, v in _fold_ua(r).items()]
    data = pd.DataFrame(rows, columns=["system", "fold", "ua"])
    difficulty = data.groupby("fold")["ua"].mean().sort_values()
    folds = list(difficulty.index)
    height = 1.6 + 0.3 * len(runs)
    fig = new_figure(9.0, height)
    ax = fig.add_subplot(1, 1, 1)
    many = len(folds) > 20
    if many:
        from matplotlib import colormaps

        cmap = colormaps["viridis"]
        colors = {f: cmap(i / max(1, len(folds) - 1)) for i, f in enumerate(folds)}
    else:
        colors = dict(zip(folds, _palette(len(folds))))
    spread = np.linspace(-0.22, 0.22, len(folds)) if len(folds) > 1 else [0.0]
    y_of = {r.system: len(runs) - 1 - i for i, r in enumerate(runs)}
    for f, off in zip(folds, spread):
        sub = data[data["fold"] == f]
        ax.scatter(sub["ua"], [y_of[s] + off for s in sub["system"]], s=18, color=colors[f], zorder=3,
                   label=None if many else f"{f} ({difficulty[f]:.0f})")
    pooled = [100 * r.metrics["ua"] for r in runs]
    ax.scatter(pooled, [y_of[r.system] for r in runs], marker="|", s=260, color="black", zorder=4,
               label="pooled UA")
    ax.set_yticks([y_of[r.system] for r in runs], labels=[r.system for r in runs], fontsize=8)
    ax.set_ylim(-0.7, len(runs) - 0.3)
    ax.set_xlabel("UA % of the fold")
    ax.set_xlim(0, 100)
    ax.grid(axis="x", alpha=0.3)
    for y in range(len(runs)):
        ax.axhline(y + 0.5, color="0.9", linewidth=0.6, zorder=1)
    title = "fold (mean UA over systems), hardest first"
    if many:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        sm = ScalarMappable(norm=Normalize(0, len(folds) - 1), cmap=cmap)
        cb = fig.colorbar(sm, ax=ax, fraction=0.03, pad=0.02)
        cb.set_label("fold rank, hardest (0) to easiest")
    else:
        ax.legend(fontsize=8, title=title, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  frameon=False)
    fig.tight_layout()
    hardest = ", ".join(f"{f} ({difficulty[f]:.1f})" for f in folds[:3])
    caption = (f"Per-fold UA of every system (one dot per fold, a fold being a speaker under LOSO); the black tick "
               f"is the pooled UA. Systems are ordered by pooled UA. Hardest folds by mean UA over the systems: "
               f"{hardest}.")
    return Plot("folds", fig, data, caption, f"per-fold UA of {len(runs)} systems on {col.corpus}",
                extra={"difficulty": difficulty})


# ---------------------------------------------------------------- significance matrix

def significance_matrix(col: Collection) -> pd.DataFrame:
    """Every pair of systems: paired t-test on per-fold UA and McNemar's exact test on utterances.

    One row per ordered pair (a, b) and test: ``diff`` = a minus b in points (mean per-fold UA for
    the t-test, WA for McNemar), ``p`` two-sided (NaN when the test could not run: too few folds,
    zero variance, unpaired folds or utterances; ``note`` says which).
    """
    runs = sorted(col.runs.values(), key=lambda r: (-r.metrics["ua"], r.system))
    rows = []
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            for t in compare(a, b, tests=(T_TEST, MCNEMAR)):
                p = float("nan") if t.p is None else t.p
                diff = float("nan") if t.mean_diff is None else t.mean_diff
                rows.append({"a": a.system, "b": b.system, "test": t.test, "diff": diff, "p": p, "note": t.note})
                rows.append({"a": b.system, "b": a.system, "test": t.test, "diff": -diff, "p": p, "note": t.note})
    return pd.DataFrame(rows, columns=["a", "b", "test", "diff", "p", "note"])


@dataclass
class SignificanceGrid:
    """The significance figure's cells: systems ``names`` (best pooled UA first); k x k frames indexed by name.

    ``p``: the primary test's p (paired t-test on per-fold UA; NaN on the diagonal and where it could not
    run); ``p_second``: McNemar's exact p on the pooled utterances; ``diff``: mean per-fold UA of the row
    system minus the column's, in points; ``marks``: what each cell prints first: the sign of ``diff``
    (``+`` / ``−``), ``*`` p < 0.05 or ``**`` p < 0.01, ``†`` where the two tests disagree at 0.05
    (× = not testable, "" on the diagonal); ``disagree``: bool.
    """

    names: list[str]
    p: pd.DataFrame
    p_second: pd.DataFrame
    diff: pd.DataFrame
    marks: pd.DataFrame
    disagree: pd.DataFrame


def significance_grid(col: Collection, data: pd.DataFrame | None = None) -> SignificanceGrid:
    """The cells of :func:`significance_plot` (see :class:`SignificanceGrid`), from :func:`significance_matrix`."""
    from serbench.reports.summary import disagree as tests_disagree, stars

    names = [r.system for r in sorted(col.runs.values(), key=lambda r: (-r.metrics["ua"], r.system))]
    data = significance_matrix(col) if data is None else data
    empty = lambda value: pd.DataFrame(value, index=names, columns=names)   # noqa: E731
    p, p2, diff = empty(np.nan), empty(np.nan), empty(np.nan)
    for row in data.itertuples(index=False):
        target = p if row.test == T_TEST else p2 if row.test == MCNEMAR else None
        if target is not None:
            target.loc[row.a, row.b] = row.p
        if row.test == T_TEST:
            diff.loc[row.a, row.b] = row.diff
    marks, split = empty(""), empty(False)
    for a in names:
        for b in names:
            if a == b:
                continue
            pt, pm, d = p.loc[a, b], p2.loc[a, b], diff.loc[a, b]
            if math.isnan(pt):
                marks.loc[a, b] = "×"
                continue
            sign = "+" if d > 0 else "−" if d < 0 else "±"
            split.loc[a, b] = tests_disagree(pt, None if math.isnan(pm) else pm)
            marks.loc[a, b] = sign + stars(pt) + ("†" if split.loc[a, b] else "")
    return SignificanceGrid(names, p, p2, diff, marks, split.astype(bool))


def significance_pairs(col: Collection, data: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per pair (a above b in pooled UA): ΔUA and the t-test's p, ΔWA and McNemar's p, and whether the
    two tests disagree at 0.05: the numbers behind the significance figure (its details and CSV)."""
    from serbench.reports.summary import disagree as tests_disagree

    data = significance_matrix(col) if data is None else data
    names = [r.system for r in sorted(col.runs.values(), key=lambda r: (-r.metrics["ua"], r.system))]
    order = {n: i for i, n in enumerate(names)}
    one_way = data[[order[a] < order[b] for a, b in zip(data["a"], data["b"])]]
    rows = []
    for (a, b), g in one_way.groupby(["a", "b"], sort=False):
        t = g[g["test"] == T_TEST].iloc[0]
        m = g[g["test"] == MCNEMAR].iloc[0]
        pt = None if math.isnan(t["p"]) else float(t["p"])
        pm = None if math.isnan(m["p"]) else float(m["p"])
        rows.append({"a": a, "b": b, "ΔUA a−b (points, per-fold mean)": t["diff"], "p t-test (UA, folds)": t["p"],
                     "ΔWA a−b (points)": m["diff"], "p McNemar (WA, utterances)": m["p"],
                     "tests disagree": "yes" if tests_disagree(pt, pm) else "",
                     "note": "; ".join(n for n in (t["note"], m["note"]) if n)})
    return pd.DataFrame(rows, columns=["a", "b", "ΔUA a−b (points, per-fold mean)", "p t-test (UA, folds)",
                                       "ΔWA a−b (points)", "p McNemar (WA, utterances)", "tests disagree", "note"])


#: The significance figure's colour scale: -log10 p from 0 (p = 1) to this cap (p <= 0.001).
SIG_CAP = 3.0


def significance_plot(col: Collection) -> Plot | None:
    """Heat map of one test between every pair of systems: the paired t-test on per-fold UA.

    Colour = p alone (a sequential scale on -log10 p, capped at p = 0.001; the matrix is symmetric),
    never the direction; each cell prints the direction as a sign (+: the row system's per-fold UA is
    higher), ``*`` p < 0.05 / ``**`` p < 0.01 with the cell outlined, ``†`` where McNemar's test on the
    utterances disagrees (one p < 0.05, the other not), and p. ``extra["grid"]`` is the
    :class:`SignificanceGrid`; ``data`` every test of every ordered pair. None with fewer than two systems.
    """
    runs = sorted(col.runs.values(), key=lambda r: (-r.metrics["ua"], r.system))
    if len(runs) < 2:
        return None
    data = significance_matrix(col)
    grid = significance_grid(col, data)
    names = grid.names
    k = len(names)
    strength = np.full((k, k), np.nan)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            p = grid.p.iat[i, j]
            if i != j and not math.isnan(p):
                strength[i, j] = min(-math.log10(max(p, 1e-300)), SIG_CAP)
    size = max(5.5, 0.62 * k + 3.2)
    fig = new_figure(size + 1.6, size)
    ax = fig.add_subplot(1, 1, 1)
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    cmap = colormaps["YlGnBu"].with_extremes(bad="0.93")
    im = ax.imshow(np.ma.masked_invalid(strength), cmap=cmap, norm=Normalize(0.0, SIG_CAP))
    fs = 10 if k <= 6 else 9 if k <= 10 else 7.5 if k <= 16 else 6.5
    ax.set_xticks(range(k), labels=names, rotation=45, ha="right", fontsize=fs)
    ax.set_yticks(range(k), labels=names, fontsize=fs)
    ax.set_xlabel("column system", fontsize=fs)
    ax.set_ylabel("row system", fontsize=fs)
    for i in range(k):
        for j in range(k):
            p = grid.p.iat[i, j]
            if i == j or math.isnan(p):
                if i != j:
                    ax.text(j, i, "×", ha="center", va="center", fontsize=fs, color="0.35")
                continue
            if p < 0.05:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black",
                                       linewidth=2.6 if p < 0.01 else 1.4, zorder=3))
            if grid.disagree.iat[i, j]:
                ax.add_patch(Rectangle((j - 0.42, i - 0.42), 0.84, 0.84, fill=False, edgecolor="#d95f02",
                                       linewidth=1.3, linestyle="--", zorder=3))
            if k <= MAX_ANNOTATED:
                dark = strength[i, j] > 0.6 * SIG_CAP
                text = grid.marks.iat[i, j] + ("" if k > 12 else "\n" + _short_p(p))
                ax.text(j, i, text, ha="center", va="center", fontsize=fs, linespacing=1.1,
                        color="white" if dark else "black", zorder=4)
    ticks = [0, -math.log10(0.5), 1, -math.log10(0.05), 2, SIG_CAP]
    cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.03, ticks=ticks)
    cb.ax.set_yticklabels(["1", ".5", ".1", ".05", ".01", "≤.001"], fontsize=fs - 1)
    cb.set_label("p, paired t-test on per-fold UA", fontsize=fs - 1)
    n_folds = max((len(r.metrics.get("folds") or []) for r in runs), default=0)
    ax.set_title(f"Paired t-test on per-fold UA ({n_folds} folds), row vs column\n"
                 "sign: + row higher, − column higher;  * p < .05, ** p < .01 (outlined);  "
                 "† McNemar disagrees", fontsize=fs)
    fig.tight_layout()
    n_pairs = k * (k - 1) // 2
    split = int(grid.disagree.to_numpy().sum() // 2)
    caption = (f"Significance between every pair of systems (ordered by pooled UA), one test: the two-sided paired "
               f"t-test on per-fold UA. Colour = p only (darker = smaller p); the sign is the direction (+: the row "
               f"system's mean per-fold UA is higher); * p < 0.05 and ** p < 0.01, outlined; × = not testable. "
               f"† and a dashed orange box: McNemar's exact test on the pooled utterances (accuracy) disagrees, one "
               f"p < 0.05 and the other not ({split} of {n_pairs} pairs); its p values are in the details. "
               f"{n_pairs} comparisons, uncorrected: at 0.05 about one in 20 pairs that do not differ is marked.")
    return Plot("significance", fig, data, caption, f"significance matrix of {k} systems on {col.corpus}",
                extra={"grid": grid})


def _short_p(p: float) -> str:
    if p < 0.001:
        return "<.001"
    return f"{p:.3f}".lstrip("0") if p < 0.01 else f"{p:.2f}".lstrip("0")


# ---------------------------------------------------------------- confusion matrices

def confusion_plot(run: RunResult) -> Plot:
    """A confusion matrix (row percent, counts in the data) for the report's grid of two per row: cells and
    fonts sized to be read at the page's width (about 550 px a figure)."""
    counts, percent = confusion_table(run)
    k = len(run.labels)
    size = max(5.0, 0.62 * k + 2.2)
    fig = new_figure(size, size * 0.92)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(np.nan_to_num(percent.to_numpy()), cmap="Blues", vmin=0, vmax=100)
    fs = 11 if k <= 6 else 10 if k <= 9 else 8
    ax.set_xticks(range(k), labels=run.labels, rotation=40, ha="right", fontsize=fs)
    ax.set_yticks(range(k), labels=run.labels, fontsize=fs)
    ax.set_xlabel("predicted", fontsize=fs)
    ax.set_ylabel("true", fontsize=fs)
    for i in range(k):
        for j in range(k):
            p = percent.iat[i, j]
            ax.text(j, i, "–" if np.isnan(p) else f"{p:.0f}", ha="center", va="center", fontsize=fs,
                    color="white" if not np.isnan(p) and p > 60 else "black")
    m = run.metrics
    ax.set_title(f"{run.system}\nWA {100 * m['wa']:.1f}  UA {100 * m['ua']:.1f}", fontsize=fs)
    fig.tight_layout()
    data = counts.stack().rename("count").reset_index().rename(columns={"true": "true", "predicted": "predicted"})
    data["percent_of_true"] = percent.stack(future_stack=True).to_numpy()
    return Plot(f"confusion-{run.system}", fig, data, f"{run.system}: % of each true class (rows)",
                f"confusion matrix of {run.system}")


# ---------------------------------------------------------------- training curves

def curves_data(run: RunResult) -> pd.DataFrame:
    """The run record's training curves, long form: fold, stage, epoch, metric, value.

    Metrics: ``loss`` and ``val_loss`` as recorded, ``ua`` (training), ``val_ua`` and a speaker adversary's training
    ``group_ua`` in percent. Empty when the run recorded no curves (baselines, older runs).
    """
    rows = []
    for fold in run.record.get("folds") or []:
        if not isinstance(fold, dict):
            continue
        for stage, points in (fold.get("curves") or {}).items():
            for pt in points or []:
                if not isinstance(pt, dict) or "epoch" not in pt:
                    continue
                for metric in ("loss", "val_loss", *UA_METRICS):
                    v = pt.get(metric)
                    if isinstance(v, (int, float)) and math.isfinite(v):
                        rows.append({"fold": str(fold.get("fold")), "stage": str(stage), "epoch": int(pt["epoch"]),
                                     "metric": metric, "value": 100 * v if metric.endswith("ua") else float(v)})
    return pd.DataFrame(rows, columns=["fold", "stage", "epoch", "metric", "value"])


#: The UA curves of a stage's panel: training, validation and a speaker adversary's training UA.
UA_METRICS = ("ua", "val_ua", "group_ua")
#: Line style by metric (training solid): validation dashed, a speaker adversary's UA dotted.
_LINES = {"val_loss": "--", "val_ua": "--", "group_ua": ":"}


def curves_plot(run: RunResult) -> Plot | None:
    """Loss and UA by epoch per fold for each training stage (solid: training, dashed: validation,
    dotted: a speaker adversary's training UA), UA where the record has it; an ensemble's members share
    their stage's panel. None when the run recorded no curves."""
    data = curves_data(run)
    if data.empty:
        return None
    from serbench.systems.naming import stage_family

    data = data.assign(family=data["stage"].map(stage_family))       # ensemble members share a panel
    members = data.groupby("family")["stage"].nunique().to_dict()
    stages = list(dict.fromkeys(data["family"]))
    has_ua = {s: bool(data[(data["family"] == s)]["metric"].isin(UA_METRICS).any()) for s in stages}
    panels = [(s, "loss") for s in stages] + [(s, "ua") for s in stages if has_ua[s]]
    cols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / cols)
    fig = new_figure(3.2 * cols + 1.4, 2.5 * nrows + 0.4)
    folds = sorted(set(data["fold"]))
    colors = dict(zip(folds, _palette(len(folds))))
    axes = []
    for i, (stage, what) in enumerate(panels):
        ax = fig.add_subplot(nrows, cols, i + 1)
        axes.append(ax)
        sub = data[data["family"] == stage]
        metrics = ("loss", "val_loss") if what == "loss" else UA_METRICS
        for fold in folds:
            for k, (_member, msub) in enumerate(sub[sub["fold"] == fold].groupby("stage", sort=False)):
                for metric in metrics:
                    m = msub[msub["metric"] == metric].sort_values("epoch")
                    if not m.empty:
                        ax.plot(m["epoch"], m["value"], color=colors[fold], linewidth=1.1 if members[stage] == 1
                                else 0.8, linestyle=_LINES.get(metric, "-"),
                                marker="." if len(m) < 12 else None,
                                label=fold if i == 0 and k == 0 and metric in ("loss", "ua") else None)
        shown = stage if members[stage] == 1 else f"{stage} ({members[stage]} ensemble members)"
        ax.set_title(f"{shown}: {'loss' if what == 'loss' else 'UA %'}", fontsize=8)
        ax.set_xlabel("epoch", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, title="fold", title_fontsize=7,
               loc="center right", frameon=False)
    fig.suptitle(run.system, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1 - 1.3 / (3.2 * cols + 1.4), 1))
    has_val = bool((data["metric"] == "val_loss").any())
    caption = (f"{run.system}: training loss{' and UA' if any(has_ua.values()) else ''} by epoch, one line per fold"
               + ("; dashed = validation (held out from the training fold, never the test speaker)" if has_val else
                  "; no validation split was used, so there is no validation curve")
               + ("; dotted = the speaker adversary's training UA (at chance: it cannot tell the training speakers"
                  " apart)" if (data["metric"] == "group_ua").any() else "")
               + ("." if any(has_ua.values()) else "; the record holds no per-epoch UA."))
    return Plot(f"curves-{run.system}", fig, data.drop(columns="family"), caption,
                f"training curves of {run.system}",
                extra={"panels": len(panels)})


CURVES_FILE = "curves.png"


def write_curves(run: RunResult, out_dir=None):
    """Write the run's training curves as PNG: ``<out_dir>/curves-<system>.png``, or beside the run
    (``<run>/curves.png``) when ``out_dir`` is None. Returns the path, or None for a run without curves."""
    from pathlib import Path

    from serbench.io import atomic_write_bytes

    plot = curves_plot(run)
    if plot is None:
        return None
    path = Path(run.path) / CURVES_FILE if out_dir is None else figure_path(out_dir, run.system, "curves")
    atomic_write_bytes(path, png_bytes(plot.figure))
    return path


__all__ = ["Plot", "png_bytes", "write_curves", "CURVES_FILE", "segments_plot", "fold_dots_plot", "significance_matrix",
           "significance_grid", "significance_pairs", "SignificanceGrid", "significance_plot",
           "confusion_plot", "curves_data", "curves_plot"]
