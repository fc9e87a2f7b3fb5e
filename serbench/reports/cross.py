"""Cross-corpus tables and the heat map, from the results store (every number recomputed from predictions).

:func:`collect_cross` finds, for a set of corpora, every stored cross-corpus run trained on one of
them and tested on another (``<runs>/<test>/<name>-from-<train>[-adapt-...]/``), the latest
complete run per *series* (the system's own stored name, ``adapt`` and the emotions) and pair, and
the in-corpus run each was planned against (``config.cross.in_corpus``: the identity of the
corpus's LOSO run on the same emotions and settings, ``-spknorm`` for ``adapt=speaker``).

Tables (:func:`long_table` is the one source of the others):

* the matrix per series: train rows x test columns, UA with its 95 % CI (speaker bootstrap of the
  test corpus), the diagonal from the in-corpus runs (their speakers resampled the same way);
* the drop per pair: in-corpus UA of the test corpus (and of the training corpus) minus the
  cross-corpus UA;
* McNemar's exact test between every two series on the same pair (the same test utterances);
* the leaderboard: mean UA over the off-diagonal pairs per series, ranked (1 = best);
* UA per test speaker.

:func:`write_cross_tables` writes them as markdown and CSV with a heat map PNG of each series'
UA matrix; :func:`cross_html` is the section the HTML report shows (empty when no cross run).
"""
from __future__ import annotations

import base64
import html
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from serbench.errors import SerbenchError
from serbench.experiments.cross import BOOT_SEED, N_BOOT, cross_metrics, is_cross_name, parse_stored_name
from serbench.experiments.store import RUN_JSON, RunResult, StoreError, load_run
from serbench.io import atomic_write_bytes, atomic_write_text
from serbench.settings import runs_root


class CrossReportError(SerbenchError):
    """Nothing to tabulate, or a corpus named badly."""


@dataclass(frozen=True)
class Series:
    """One line of results: a system's stored name (``IS10-svm-linear``), ``adapt`` and the emotions used."""

    base: str
    adapt: str
    emotions: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.base + ("" if self.adapt == "none" else f" +adapt {self.adapt}")


@dataclass
class CrossCollection:
    """The cross-corpus runs among ``corpora``: ``cross[(series, train, test)]`` and ``diagonal[(series, corpus)]``."""

    corpora: list[str]
    root: Path
    cross: dict = field(default_factory=dict)
    diagonal: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    n_boot: int = N_BOOT
    seed: int = BOOT_SEED
    _metrics: dict = field(default_factory=dict, repr=False)

    @property
    def series(self) -> list[Series]:
        return sorted({k[0] for k in self.cross}, key=lambda s: (s.base, s.adapt != "none", s.adapt, s.emotions))

    def metrics(self, run: RunResult) -> dict:
        """:func:`~serbench.experiments.cross.cross_metrics` of a run (computed once per call of the tables)."""
        key = str(run.path)
        if key not in self._metrics:
            self._metrics[key] = cross_metrics(run.predictions, n_boot=self.n_boot, seed=self.seed)
        return self._metrics[key]

    def run(self, series: Series, train: str, test: str) -> RunResult | None:
        return self.diagonal.get((series, train)) if train == test else self.cross.get((series, train, test))


def _latest_complete(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.endswith(".partial")
                   and not p.name.startswith(".") and (p / RUN_JSON).is_file()), reverse=True)


def collect_cross(corpora: Sequence[str], runs: str | Path | None = None, *, n_boot: int = N_BOOT,
                  seed: int = BOOT_SEED) -> CrossCollection:
    """Every cross-corpus run among ``corpora`` in the store, with its in-corpus counterparts (module docstring)."""
    from serbench.corpora import check_corpus_name
    from serbench.systems.runner import stored_identities

    try:
        names = [check_corpus_name(c) for c in corpora]
    except SerbenchError as exc:
        raise CrossReportError(f"--corpus: {exc}") from None
    if len(set(names)) < 2:
        raise CrossReportError("--corpus: give at least two different corpora")
    root = runs_root(runs)
    out = CrossCollection(names, root, n_boot=n_boot, seed=seed)
    in_corpus: dict[tuple[Series, str], str] = {}
    for test in names:
        base_dir = root / test
        if not base_dir.is_dir():
            continue
        for folder in sorted(p for p in base_dir.iterdir() if p.is_dir() and is_cross_name(p.name)):
            _base, train, _adapt = parse_stored_name(folder.name)  # type: ignore[misc]
            if train not in names:
                continue
            for path in _latest_complete(folder):
                try:
                    run = load_run(path, warnings=out.notes)
                except StoreError as exc:
                    out.notes.append(f"skipped {path}: {exc}")
                    continue
                if run.status != "complete":
                    continue
                info = run.config.get("cross") or {}
                series = Series(str(info.get("base") or _base), str(info.get("adapt") or _adapt),
                                tuple(sorted(info.get("emotions") or run.labels)))
                key = (series, train, test)
                if key in out.cross:
                    out.notes.append(f"{folder.name} on {test}: using the latest run {out.cross[key].run_id}; "
                                     f"{run.run_id} is older")
                    continue
                out.cross[key] = run
                for c, h in (info.get("in_corpus") or {}).items():
                    in_corpus.setdefault((series, str(c)), str(h))
    stored = {c: stored_identities(c, runs) for c in names}
    for (series, corpus), ident in in_corpus.items():
        found = sorted((p for _n, p, st in stored.get(corpus, {}).get(ident, []) if st == "complete"),
                       key=lambda p: p.name, reverse=True)
        if not found:
            out.notes.append(f"{series.label}: no in-corpus run of {corpus} on {', '.join(series.emotions)} "
                             f"(identity {ident}) in the store; its diagonal cell is empty (serbench cross runs it)")
            continue
        out.diagonal[(series, corpus)] = load_run(found[0], warnings=out.notes)
    return out


# ---------------------------------------------------------------- tables

LONG_COLUMNS = ["series", "system", "adapt", "emotions", "train", "test", "kind", "wa", "ua", "ua_low", "ua_high",
                "n", "n_speakers", "run_id", "path"]


def long_table(col: CrossCollection) -> pd.DataFrame:
    """One row per cell (fractions): series, system, adapt, emotions, train, test, kind (cross | in-corpus), wa,
    ua, ua_low, ua_high, n, n_speakers, run_id, path."""
    rows = []
    for series in col.series:
        for train in col.corpora:
            for test in col.corpora:
                run = col.run(series, train, test)
                if run is None:
                    continue
                m = col.metrics(run)
                rows.append({"series": series.label, "system": series.base, "adapt": series.adapt,
                             "emotions": ",".join(series.emotions), "train": train, "test": test,
                             "kind": "in-corpus" if train == test else "cross", "wa": m["wa"], "ua": m["ua"],
                             "ua_low": m["ua_low"], "ua_high": m["ua_high"], "n": m["n"],
                             "n_speakers": m["bootstrap"]["n_speakers"], "run_id": run.run_id,
                             "path": str(run.path)})
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def _cell(ua: float, low: float, high: float) -> str:
    return f"{100 * ua:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def matrix_tables(col: CrossCollection, long: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Series label -> train x test table of ``UA [low, high]`` (percent; '–' where nothing is stored)."""
    long = long_table(col) if long is None else long
    out = {}
    for series in col.series:
        sub = long[long["series"] == series.label]
        table = pd.DataFrame("–", index=pd.Index(col.corpora, name="train \\ test"), columns=col.corpora)
        for r in sub.itertuples():
            table.loc[r.train, r.test] = _cell(r.ua, r.ua_low, r.ua_high)
        out[series.label] = table
    return out


def drop_table(col: CrossCollection, long: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per series and off-diagonal pair (percent): cross UA, the test corpus's and the training corpus's in-corpus
    UA, and ``drop`` = in-corpus UA of the test corpus minus the cross-corpus UA."""
    long = long_table(col) if long is None else long
    rows = []
    for r in long[long["kind"] == "cross"].itertuples():
        def diag(c: str) -> float:
            hit = long[(long["series"] == r.series) & (long["train"] == c) & (long["test"] == c)]
            return float(hit["ua"].iloc[0]) * 100 if len(hit) else float("nan")
        in_test, in_train = diag(r.test), diag(r.train)
        rows.append({"series": r.series, "train": r.train, "test": r.test, "cross_ua": 100 * r.ua,
                     "in_corpus_ua_test": in_test, "in_corpus_ua_train": in_train, "drop": in_test - 100 * r.ua,
                     "drop_from_train": in_train - 100 * r.ua})
    return pd.DataFrame(rows, columns=["series", "train", "test", "cross_ua", "in_corpus_ua_test",
                                       "in_corpus_ua_train", "drop", "drop_from_train"])


def mcnemar_table(col: CrossCollection) -> pd.DataFrame:
    """McNemar's exact test between every two series with the same emotions on each off-diagonal pair."""
    from serbench.reports.significance import FoldMismatchError, mcnemar_test

    rows = []
    for train, test in itertools.permutations(col.corpora, 2):
        present = [s for s in col.series if (s, train, test) in col.cross]
        for a, b in itertools.combinations(present, 2):
            if a.emotions != b.emotions:
                continue
            ra, rb = col.cross[(a, train, test)], col.cross[(b, train, test)]
            try:
                t = mcnemar_test(ra, rb)
            except FoldMismatchError as exc:
                rows.append({"train": train, "test": test, "a": a.label, "b": b.label, "n": None, "diff_wa": None,
                             "a_only": None, "p": None, "note": str(exc)})
                continue
            rows.append({"train": train, "test": test, "a": a.label, "b": b.label, "n": t.n,
                         "diff_wa": t.mean_diff, "a_only": t.statistic, "p": t.p, "note": t.note})
    return pd.DataFrame(rows, columns=["train", "test", "a", "b", "n", "diff_wa", "a_only", "p", "note"])


def leaderboard(col: CrossCollection, long: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per series: mean UA (percent) over its off-diagonal pairs, how many of the possible pairs it has, and its
    rank among the series with every pair (1 = best; series missing pairs are not ranked)."""
    long = long_table(col) if long is None else long
    n_pairs = len(col.corpora) * (len(col.corpora) - 1)
    rows = []
    for series in col.series:
        sub = long[(long["series"] == series.label) & (long["kind"] == "cross")]
        diag = long[(long["series"] == series.label) & (long["kind"] == "in-corpus")]
        rows.append({"series": series.label, "mean_cross_ua": 100 * float(sub["ua"].mean()) if len(sub) else np.nan,
                     "pairs": f"{len(sub)}/{n_pairs}",
                     "mean_in_corpus_ua": 100 * float(diag["ua"].mean()) if len(diag) else np.nan,
                     "complete": len(sub) == n_pairs})
    board = pd.DataFrame(rows, columns=["series", "mean_cross_ua", "pairs", "mean_in_corpus_ua", "complete"])
    ranked = board["mean_cross_ua"].where(board["complete"]).rank(ascending=False, method="min")
    board.insert(0, "rank", ranked.astype("Int64"))
    return board.sort_values(["rank", "mean_cross_ua"], ascending=[True, False], na_position="last",
                             kind="stable").drop(columns="complete").reset_index(drop=True)


def speaker_table(col: CrossCollection) -> pd.DataFrame:
    """UA and WA per test speaker of every cross-corpus run (fractions)."""
    frames = []
    for (series, train, test), run in col.cross.items():
        ps = col.metrics(run)["per_speaker"].copy()
        ps.insert(0, "test", test)
        ps.insert(0, "train", train)
        ps.insert(0, "series", series.label)
        frames.append(ps)
    cols = ["series", "train", "test", "speaker", "n", "wa", "ua"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


# ---------------------------------------------------------------- output

def markdown(frame: pd.DataFrame, *, index: bool = False, digits: int = 1) -> str:
    """A GitHub markdown table of ``frame`` (floats with ``digits`` decimals)."""
    df = frame.reset_index() if index else frame

    def text(v: object) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return "–"
        if isinstance(v, (float, np.floating)):
            return f"{v:.{digits}f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2g}"
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(text(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def heatmap_png(col: CrossCollection, long: pd.DataFrame | None = None) -> bytes:
    """One panel per series: the UA matrix (percent), train rows x test columns, each cell annotated."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    long = long_table(col) if long is None else long
    series = col.series
    k = len(col.corpora)
    n = max(1, len(series))
    ncols = min(3, n)
    nrows = (n + ncols - 1) // ncols
    size = 1.0 + 0.9 * k
    fig = Figure(figsize=(ncols * (size + 1.2), nrows * (size + 0.9)), dpi=100)
    FigureCanvasAgg(fig)
    for i, s in enumerate(series):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        grid = np.full((k, k), np.nan)
        for r in long[long["series"] == s.label].itertuples():
            grid[col.corpora.index(r.train), col.corpora.index(r.test)] = 100 * r.ua
        im = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0, vmax=100)
        ax.set_xticks(range(k), labels=col.corpora, rotation=45, ha="right")
        ax.set_yticks(range(k), labels=col.corpora)
        ax.set_xlabel("test")
        ax.set_ylabel("train")
        ax.set_title(s.label, fontsize=9)
        for a in range(k):
            for b in range(k):
                v = grid[a, b]
                ax.text(b, a, "–" if np.isnan(v) else f"{v:.1f}", ha="center", va="center", fontsize=8,
                        color="black" if not np.isnan(v) and v > 60 else "white" if not np.isnan(v) else "grey")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="UA %")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def render_markdown(col: CrossCollection) -> str:
    """All cross-corpus tables as one markdown document."""
    long = long_table(col)
    parts = [f"# Cross-corpus evaluation: {', '.join(col.corpora)}", "",
             f"UA in percent with its 95 % confidence interval from a speaker-level bootstrap of the test corpus "
             f"({col.n_boot} draws, seed {col.seed}); rows = training corpus, columns = test corpus; the diagonal is "
             "the in-corpus LOSO run on the same emotions (with per-speaker normalization for adapt speaker).", ""]
    for label, table in matrix_tables(col, long).items():
        emotions = long.loc[long["series"] == label, "emotions"]
        parts += [f"## {label}" + (f" ({emotions.iloc[0]})" if len(emotions) else ""), "", markdown(table, index=True),
                  ""]
    parts += ["## Drop from in-corpus to cross-corpus (UA points)", "", markdown(drop_table(col, long)), "",
              "## Leaderboard (mean UA over the off-diagonal pairs)", "", markdown(leaderboard(col, long)), "",
              "## McNemar's exact test between series on the same pair", "",
              markdown(mcnemar_table(col), digits=3), ""]
    if col.notes:
        parts += ["## Notes", "", *[f"- {n}" for n in col.notes], ""]
    return "\n".join(parts)


def write_cross_tables(col: CrossCollection, out: str | Path) -> list[Path]:
    """Write ``cross.md``, ``cross-long.csv``, ``cross-drop.csv``, ``cross-leaderboard.csv``, ``cross-mcnemar.csv``,
    ``cross-speakers.csv`` and ``cross-heatmap.png`` into ``out``; returns the paths."""
    if not col.cross:
        raise CrossReportError(f"no cross-corpus runs among {', '.join(col.corpora)} under {col.root}; run "
                               f"`serbench cross --corpus NAME=DIR ... --feature IS10` first")
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    long = long_table(col)
    files = {
        "cross.md": render_markdown(col),
        "cross-long.csv": long.to_csv(index=False),
        "cross-drop.csv": drop_table(col, long).to_csv(index=False),
        "cross-leaderboard.csv": leaderboard(col, long).to_csv(index=False),
        "cross-mcnemar.csv": mcnemar_table(col).to_csv(index=False),
        "cross-speakers.csv": speaker_table(col).to_csv(index=False),
    }
    paths = []
    for name, text in files.items():
        atomic_write_text(out / name, text, inside=out)
        paths.append(out / name)
    atomic_write_bytes(out / "cross-heatmap.png", heatmap_png(col, long), inside=out)
    paths.append(out / "cross-heatmap.png")
    return paths


def cross_html(corpora: Sequence[str], runs: str | Path | None = None) -> str:
    """The HTML report's cross-corpus section for ``corpora`` (heat map, matrices, drop, leaderboard); '' when the
    store holds no cross-corpus run among them."""
    if len(set(corpora)) < 2:
        return ""
    try:
        col = collect_cross(corpora, runs)
    except SerbenchError:
        return ""
    if not col.cross:
        return ""
    long = long_table(col)
    e = html.escape
    src = "data:image/png;base64," + base64.b64encode(heatmap_png(col, long)).decode("ascii")
    parts = ["<section id='cross-corpus'><h2>Cross-corpus</h2>",
             "<p class='summary'>Train on the row's corpus, test on the column's; UA % with its 95 % CI from a "
             "speaker-level bootstrap of the test corpus; the diagonal is the in-corpus LOSO run on the same "
             "emotions.</p>",
             f"<figure id='fig-cross-heatmap'><img src='{src}' alt='cross-corpus UA matrix'>"
             "<figcaption>UA % by training (rows) and test (columns) corpus.</figcaption></figure>"]
    for label, table in matrix_tables(col, long).items():
        parts.append(f"<h3>{e(label)}</h3>" + table.to_html(escape=True, border=0))
    parts.append("<h3>Leaderboard</h3>" + leaderboard(col, long).to_html(escape=True, border=0, index=False,
                                                                           float_format=lambda v: f"{v:.1f}",
                                                                           na_rep="–"))
    parts.append("<h3>Drop from in-corpus</h3>" + drop_table(col, long).to_html(
        escape=True, border=0, index=False, float_format=lambda v: f"{v:.1f}", na_rep="–"))
    if col.notes:
        parts.append("<ul class='notes'>" + "".join(f"<li>{e(n)}</li>" for n in col.notes) + "</ul>")
    parts.append("</section>")
    return "\n".join(parts)


__all__ = ["CrossCollection", "CrossReportError", "Series", "collect_cross", "cross_html", "drop_table",
           "heatmap_png", "leaderboard", "long_table", "markdown", "matrix_tables", "mcnemar_table",
           "render_markdown", "speaker_table", "write_cross_tables"]
