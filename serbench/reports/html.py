"""One self-contained HTML page: the paper-shaped tables, the figures and the provenance of every run.

The page needs nothing but a browser: inline CSS, figures embedded as base64 PNG, no script,
no link to anything outside itself (in-page anchors only). Every number and every figure is
recomputed from the results store (:mod:`serbench.reports.collect`); each figure carries the
numbers it draws in a collapsed ``<details>`` block.

>>> from serbench.reports.html import build_report
>>> build_report(["casia"], runs="runs", out="report").path  # doctest: +SKIP
PosixPath('report/report.html')
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import html
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from serbench.experiments.store import git_commit, versions
from serbench.io import atomic_write_text
from serbench.reports.collect import Collection, EmptyStoreError, ReportError, collect
from serbench.reports.leaderboard import leaderboard
from serbench.reports.paper import paper_tables
from serbench.reports.plots import (
    Plot,
    confusion_plot,
    curves_plot,
    fold_dots_plot,
    png_bytes,
    segments_plot,
    significance_pairs,
    significance_plot,
)
from serbench.reports.render import Table, split_marks, unique_notes
from serbench.reports.tables import missing_systems
from serbench.settings import runs_root

REPORT_FILE = "report.html"


@dataclass
class HtmlReport:
    """What :func:`build_report` wrote: ``path`` of the page, its ``size`` in bytes, build ``seconds``,
    the collections it was built from (corpus -> :class:`Collection`)."""

    path: Path
    size: int
    seconds: float
    collections: dict[str, Collection] = field(default_factory=dict)

    @property
    def systems(self) -> dict[str, list[str]]:
        return {c: sorted(col.runs) for c, col in self.collections.items()}


def default_out(corpora: Sequence[str], runs: str | Path | None = None) -> Path:
    """``<runs>/<corpus>/report`` for one corpus, ``<runs>/report`` for several."""
    root = runs_root(runs)
    return root / corpora[0] / "report" if len(corpora) == 1 else root / "report"


def build_report(corpora: Sequence[str], runs: str | Path | None = None, out: str | Path | None = None, *,
                 command: str | None = None, experiment: "str | Path | object | None" = None,
                 cache: str | Path | None = None) -> HtmlReport:
    """Write ``<out>/report.html`` for ``corpora`` from the store under ``runs``.

    ``command``: how the report was asked for (shown under provenance); ``experiment``: the experiment
    file the rows are checked against and whose figures are the paper's (default ``jiang2019``);
    ``cache``: the feature cache named in the commands for missing runs. Raises
    :class:`EmptyStoreError` when a corpus has no complete run (the message lists what would
    produce them) and :class:`ReportError` for a corpus named twice or none.
    """
    t0 = time.perf_counter()
    corpora = list(corpora)
    if not corpora:
        raise ReportError("--corpus: give at least one corpus")
    dupes = sorted({c for c in corpora if corpora.count(c) > 1})
    if dupes:
        raise ReportError(f"--corpus {', '.join(dupes)}: named more than once; give each corpus once")
    from serbench.reports.collect import resolve_experiment

    exp = resolve_experiment(experiment)   # read once, for every corpus
    collections = {c: collect(c, runs, exp) for c in corpora}
    for corpus, col in collections.items():
        if not col.runs:
            from serbench.reports import produce_command

            lines = [f"no complete runs for corpus {corpus!r} under {col.root}"]
            lines += [f"  note: {n}" for n in col.notes()]
            lines.append("produce them with, e.g.:")
            lines += [f"  {produce_command(s, col, runs, cache)}" for s in missing_systems(col)[:5]]
            raise EmptyStoreError("\n".join(lines))
    out_dir = Path(out).expanduser() if out is not None else default_out(corpora, runs)
    page = render_page(collections, command=command, runs=runs, cache=cache)
    path = out_dir / REPORT_FILE
    atomic_write_text(path, page)
    return HtmlReport(path=path, size=len(page.encode("utf-8")), seconds=time.perf_counter() - t0,
                      collections=collections)


# ---------------------------------------------------------------- the page

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0 auto;
       max-width: 1180px; padding: 1.2em 1.6em 4em; color: #1d1d1f; line-height: 1.45; font-size: 15px; }
h1 { font-size: 1.7em; margin-bottom: .2em; } h2 { border-bottom: 2px solid #d0d4da; padding-bottom: .2em;
     margin-top: 2.2em; } h3 { margin-top: 1.8em; }
nav { background: #f3f5f8; padding: .5em .8em; border-radius: 6px; font-size: .92em; }
nav a { margin-right: 1em; } a { color: #0b5cad; text-decoration: none; } a:hover { text-decoration: underline; }
table { border-collapse: collapse; margin: .6em 0 .3em; font-size: .9em; }
th, td { padding: .28em .7em; border-bottom: 1px solid #e3e6ea; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #9aa3ad; background: #f7f8fa; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.missing { color: #b3261e; } td.na { color: #8a9099; }

sup { font-size: .75em; color: #b3261e; margin-left: 1px; }
.paper td:nth-child(n+2) { min-width: 4.5em; }
.footnotes { font-size: .85em; color: #444; margin: .2em 0 .8em; } .footnotes p { margin: .15em 0; }
details { margin: .4em 0 1em; } summary { cursor: pointer; color: #0b5cad; font-size: .9em; }
.scroll { overflow-x: auto; max-width: 100%; }
.details table { font-size: .8em; } .details td { white-space: nowrap; }
figure { margin: 1em 0 1.6em; } figure img { max-width: 100%; height: auto; border: 1px solid #eceef1; }
figcaption { font-size: .88em; color: #333; max-width: 60em; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 1em; }
.grid figure { margin: 0; } .grid figcaption { font-size: .8em; }
.curves { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1em; }
.curves figure.wide { grid-column: 1 / -1; }
.summary { color: #444; } .notes li { margin: .2em 0; } code { font-size: .86em; background: #f3f5f8;
          padding: .05em .3em; border-radius: 3px; word-break: break-all; }
.lb td.best { font-weight: 700; } .lb td.rank { color: #555; }
.muted { color: #6b7280; font-size: .88em; }
.summary-table tbody tr:first-child td { background: #e6f4ea; font-weight: 600; }
.summary-table { font-size: .95em; } .summary-table th, .summary-table td:nth-child(2) { white-space: nowrap; }
.summary-table th, .summary-table td { padding: .28em .55em; }
@media (max-width: 1100px) { .summary-table th, .summary-table td { padding: .25em .4em; } }
.answer { font-size: 1.08em; font-weight: 600; margin: .3em 0 .2em; }
details.empty { margin: .5em 0; } details.empty > summary { color: #1d1d1f; font-size: .92em; }
details.empty code { font-size: .84em; word-break: normal; overflow-wrap: anywhere; }
.legend { background: #f7f8fa; border-left: 3px solid #c5ccd6; padding: .3em .8em; font-size: .88em; }
"""


def render_page(collections: dict[str, Collection], command: str | None = None, *, runs: str | Path | None = None,
                cache: str | Path | None = None) -> str:
    """The whole HTML document for the given corpora (leaderboard first when there are several); ``runs`` and
    ``cache`` are named in the commands that would produce missing runs."""
    corpora = list(collections)
    built = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    mine = versions()
    commit = git_commit()
    head = [f"<h1>serbench report: {_e(', '.join(corpora))}</h1>",
            f"<p class='summary'>Built {_e(built)} by serbench {_e(mine.get('serbench') or '?')}"
            f"{' (commit ' + _e(commit[:12]) + ')' if commit else ''}. Every number and figure is recomputed "
            "from the stored predictions; the paper's numbers are labelled “paper”.</p>"]
    links = ([("leaderboard", "Leaderboard")] if len(corpora) > 1 else []) + [
        (_anchor(c), c) for c in corpora] + [("provenance", "Provenance")]
    head.append("<nav>" + "".join(f"<a href='#{a}'>{_e(t)}</a>" for a, t in links) + "</nav>")
    body = head
    if len(corpora) > 1:
        body.append(leaderboard_html(collections))
        from serbench.reports.cross import cross_html   # its own section, empty without cross-corpus runs

        body.append(cross_html(corpora, runs))
    for corpus, col in collections.items():
        body.append(corpus_html(col, runs=runs, cache=cache))
    body.append(provenance_html(collections, command, built, mine, commit))
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>serbench report: {_e(', '.join(corpora))}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def leaderboard_html(collections: dict[str, Collection]) -> str:
    """The systems x corpora table: UA (rank) per corpus, corpora covered, mean rank; best UA bold."""
    board = leaderboard(collections)
    corpora = list(collections)
    head = "".join(f"<th>{_e(c)}<br><span class='muted'>UA % (rank)</span></th>" for c in corpora)
    rows = []
    best = {c: board[f"{c} UA"].round(1).max() for c in corpora}
    for _, r in board.iterrows():
        cells = [f"<td>{_e(r['system'])}</td>"]
        for c in corpora:
            ua, rank = r[f"{c} UA"], r[f"{c} rank"]
            if pd.isna(ua):
                cells.append("<td class='num na'>–</td>")
            else:
                cls = "num best" if round(ua, 1) == best[c] else "num"
                cells.append(f"<td class='{cls}'>{ua:.1f} <span class='muted'>({int(rank)})</span></td>")
        cells.append(f"<td class='num'>{int(r['corpora'])}/{len(corpora)}</td>")
        cells.append(f"<td class='num'>{r['mean rank']:.2f}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return ("<section id='leaderboard'><h2>Leaderboard</h2>"
            "<div class='scroll'><table class='lb'><thead><tr><th>System</th>" + head +
            "<th>corpora</th><th>mean rank</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
            "<div class='footnotes'><p>Pooled UA in percent with the system's rank on that corpus (1 = best; "
            "equal UA at one decimal share a rank). Mean rank over the corpora the system was run on; rows "
            "are sorted by how many corpora they cover, then by mean rank. Bold = best UA on the corpus. "
            "– = not run on that corpus.</p></div></section>")


def corpus_html(col: Collection, *, runs: str | Path | None = None, cache: str | Path | None = None) -> str:
    """One corpus, the answer first: the summary (every system run, ranked, tested against the best), the
    figures, then the paper-shaped tables (Table II with its plot; a table without any run folded, with the
    command that would fill it), the all-tests tables, notes and the runs' provenance."""
    from serbench.reports.summary import folded_tables, summary_table, table_label

    corpus = col.corpus
    tables = paper_tables(col)
    shown = [t for t in tables if not t.detail_only]
    folded = folded_tables(col, shown, runs, cache)
    pre = _anchor(corpus) + "-"
    parts = [f"<section id='{_anchor(corpus)}'><h2>{_e(corpus)}</h2>", _summary_html(col)]
    parts.append(f"<h3 id='{_anchor(corpus, 'answer')}'>Which system won</h3>")
    summary = summary_table(col)
    if summary.notes:   # the headline above the table, the legend under it
        parts.append(f"<p class='answer'>{_e(summary.notes[0])}</p>")
        summary = dataclasses.replace(summary, notes=summary.notes[1:])
    parts.append(table_html(summary, pre, css="paper summary-table"))
    sig = significance_plot(col)
    parts.append("<h3>Significance between systems</h3>")
    if sig is None:
        parts.append("<p class='muted'>One system only: nothing to compare.</p>")
    else:
        pairs = significance_pairs(col, sig.data)
        parts.append(figure_html(sig, _details_html("both tests for every pair: ΔUA and t-test p, ΔWA and McNemar p",
                                                    _fmt_pairs(pairs)), prefix=pre))
    parts.append("<h3 id='" + _anchor(corpus, "folds") + "'>Per-fold UA by speaker</h3>")
    dots = fold_dots_plot(col)
    parts.append(figure_html(dots, _fold_pivot_html(dots), prefix=pre))
    parts.append("<h3>Confusion matrices</h3><p class='muted'>Rows: true class, columns: predicted; cells: % of "
                 "the true class, ordered as the systems in the per-fold plot (best pooled UA first).</p>"
                 "<div class='grid'>")
    for run in sorted(col.runs.values(), key=lambda r: (-r.metrics["ua"], r.system)):
        conf = confusion_plot(run)
        counts = conf.data.pivot(index="true", columns="predicted", values="count")
        parts.append(figure_html(conf, _details_html("counts", counts.reset_index()), caption=False, prefix=pre))
    parts.append("</div>")
    curves = [p for p in (curves_plot(r) for _, r in sorted(col.runs.items())) if p is not None]
    parts.append("<h3>Training curves</h3>")
    if curves:
        parts.append("<div class='curves'>")
        parts += [figure_html(p, _details_html("per fold and stage", _curve_summary(p.data)),
                              css="wide" if p.extra.get("panels", 1) > 1 else "", prefix=pre) for p in curves]
        parts.append("</div>")
    else:
        parts.append("<p class='muted'>No run in this store recorded training curves.</p>")
    parts.append(f"<h3>The paper's tables ({_e(col.experiment_label)})</h3>")
    if folded:
        parts.append(f"<p class='muted'>{len(folded)} of {len(shown)} tables have no run yet: folded, each with the "
                     "command that would fill it (the store's corpus folder, feature cache and runs folder).</p>")
    legend = "".join(f"<li>{_e(n)}</li>" for n in unique_notes([t for t in shown if t.key not in folded]))
    parts.append(f"<details class='legend'><summary>How to read the tables</summary><ul class='notes'>{legend}"
                 "</ul></details>")
    seg = segments_plot(col)
    for table in shown:
        if table.key in folded:
            line = folded[table.key]
            head, _, command = line.partition(" — run: ")
            what = (f"no run yet — run:<br><code>{_e(command)}</code>" if command
                    else _e(line.split(": ", 1)[-1]))
            parts.append(f"<details class='empty'><summary><strong>{_e(table_label(table))}</strong> "
                         f"{_e(table.title.split(' — ', 1)[-1])}: {what}</summary>{table_html(table, pre)}</details>")
            continue
        parts.append(table_html(table, pre))
        if table.key == "table2" and seg is not None:
            parts.append(figure_html(seg, _pivot_html(seg.data, "model", "N", "ua", what="pooled"), prefix=pre))
    for table in tables:
        if table.detail_only:
            parts.append(f"<h4>{_e(table.title)}</h4>" + _details_html("every test, all pairs", table.frame))
    parts.append(_notes_html(col, runs=runs, cache=cache))
    parts.append(runs_html(col))
    parts.append("</section>")
    return "\n".join(parts)


def _fmt_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    out = pairs.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f":
            is_p = col.startswith("p ")
            out[col] = out[col].map(lambda v: "n/a" if pd.isna(v) else (f"{v:.2e}" if 0 < v < 1e-3 else f"{v:.4f}")
                                    if is_p else f"{v:+.1f}")
    return out


def _summary_html(col: Collection) -> str:
    runs = list(col.runs.values())
    utts = max(len(r.predictions) for r in runs)
    folds = sorted({f for r in runs for f in r.fold_series("ua").index})
    labels = list(dict.fromkeys(lab for r in runs for lab in r.labels))
    protocols = sorted({str(r.config.get("protocol")) for r in runs if r.config.get("protocol")})
    return (f"<p class='summary'>{len(runs)} systems; up to {utts} test utterances; {len(folds)} folds"
            f"{' (' + _e(', '.join(protocols)) + ')' if protocols else ''}: {_e(', '.join(folds))}; "
            f"classes: {_e(', '.join(labels))}.</p>")


# ---------------------------------------------------------------- tables

def table_html(table: Table, prefix: str = "", css: str = "paper") -> str:
    """A paper-shaped table: best cells bold, marks superscript, own notes under it, details folded."""
    cols = [str(c) for c in table.frame.columns]
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    rows = []
    for i, row in enumerate(table.frame.itertuples(index=False)):
        cells = []
        for j, (value, col) in enumerate(zip(row, cols)):
            text, marks = split_marks(value)
            cls = _cell_class(text, j)
            inner = _e(text)
            if (i, col) in table.bold:
                inner = f"<strong>{inner}</strong>"
            if marks:
                inner += f"<sup>{_e(marks)}</sup>"
            cells.append(f"<td class='{cls}'>{inner}</td>" if cls else f"<td>{inner}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(f"<p>{_e(n)}</p>" for n in table.notes)
    details = ""
    if table.details is not None:
        details = _details_html("details: fold mean ± sd, run ids, every column", table.details)
    return (f"<div class='scroll'><table class='{_e(css)}' id='{_e(prefix + table.key)}'><caption>{_e(table.title)}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
            f"<div class='footnotes'>{notes}</div>{details}")


def _cell_class(text: str, column: int) -> str:
    if text == "missing":
        return "missing num"
    if text in ("n/a", "/"):
        return "na num"
    if column > 0 and (text[:1].isdigit() or text[:1] in "+-<"):
        return "num"
    return ""


def frame_html(frame: pd.DataFrame) -> str:
    """A plain table of any DataFrame's cells (escaped; NaN shown empty)."""
    cols = [str(c) for c in frame.columns]
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = []
    for row in frame.itertuples(index=False):
        body.append("<tr>" + "".join(f"<td>{_e(_text(v))}</td>" for v in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _details_html(summary: str, frame: pd.DataFrame) -> str:
    return (f"<details class='details'><summary>{_e(summary)}</summary><div class='scroll'>"
            f"{frame_html(frame)}</div></details>")


def _text(v: object) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 and v != 0 else f"{v:.2f}".rstrip("0").rstrip(".")
    return str(v)


# ---------------------------------------------------------------- figures

def figure_html(plot: Plot, data_html: str = "", caption: bool = True, css: str = "", prefix: str = "") -> str:
    """``<figure>`` with the PNG inline (base64), its caption and the numbers it draws; its id is
    ``<prefix>fig-<key>`` (the prefix keeps ids unique across corpora)."""
    src = "data:image/png;base64," + base64.b64encode(png_bytes(plot.figure)).decode("ascii")
    cls = f" class='{css}'" if css else ""
    text = f"<figcaption>{_e(plot.caption)}</figcaption>" if caption else ""
    return f"<figure id='{_e(prefix)}fig-{_e(plot.key)}'{cls}><img src='{src}' alt='{_e(plot.alt)}'>{text}{data_html}</figure>"


def _pivot_html(data: pd.DataFrame, rows: str, cols: str, values: str, what: str) -> str:
    sub = data[data["what"].isin([what, "paper"])]
    table = sub.pivot_table(index=rows, columns=cols, values=values, aggfunc="first")
    table = table.map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    table.columns = [f"N={c}" for c in table.columns]
    folds = data[data["what"] == "fold"].groupby([rows, cols])[values].agg(["mean", "std"])
    spread = pd.DataFrame({"model": [m for m, _ in folds.index], "N": [n for _, n in folds.index],
                           "fold mean UA %": folds["mean"].round(1).to_numpy(),
                           "fold sd": folds["std"].round(1).to_numpy()})
    return (_details_html("the numbers: pooled UA %", table.reset_index())
            + _details_html("the numbers: per-fold mean and sd", spread))


def _fold_pivot_html(plot: Plot) -> str:
    table = plot.data.pivot(index="system", columns="fold", values="ua")
    order = list(dict.fromkeys(plot.data["system"]))
    table = table.loc[order, list(plot.extra["difficulty"].index)]
    table.loc["mean over systems"] = table.mean(axis=0)
    table = table.map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    return _details_html("the numbers: UA % per system and fold (folds hardest first)", table.reset_index())


def _curve_summary(data: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (fold, stage), g in data.groupby(["fold", "stage"], sort=True):
        loss = g[g["metric"] == "loss"].sort_values("epoch")
        val = g[g["metric"] == "val_loss"].sort_values("epoch")
        row = {"fold": fold, "stage": stage, "epochs": int(g["epoch"].max()),
               "first loss": f"{loss['value'].iloc[0]:.4f}" if len(loss) else "",
               "last loss": f"{loss['value'].iloc[-1]:.4f}" if len(loss) else ""}
        if len(val):
            best = val.loc[val["value"].idxmin()]
            row["best val loss (epoch)"] = f"{best['value']:.4f} ({int(best['epoch'])})"
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- notes and provenance

def _notes_html(col: Collection, *, runs: str | Path | None = None, cache: str | Path | None = None) -> str:
    """What the store held besides the runs shown: ignored folders, warnings, variants, runs still missing."""
    from serbench.reports import produce_command

    items = col.notes()
    missing = [produce_command(s, col, runs, cache) for s in missing_systems(col)]
    html_items = "".join(f"<li>{_e(n)}</li>" for n in items)
    if missing:
        html_items += (f"<li>{len(missing)} run(s) that {_e(col.experiment_label)} declares are missing; produce them "
                       "with (ROOT = the corpus folder where the store does not say):<ul>"
                       + "".join(f"<li><code>{_e(c)}</code></li>" for c in missing) + "</ul></li>")
    if not html_items:
        html_items = "<li>Nothing was ignored and no expected run is missing.</li>"
    return f"<h3>Notes on the store</h3><ul class='notes'>{html_items}</ul>"


def _device(run) -> str:
    timings = run.timings
    found = [timings.get("device")] + [(f.get("timings") or {}).get("device") for f in run.record.get("folds") or []
                                       if isinstance(f, dict)]
    found += [(t or {}).get("device") for t in (timings.get("folds") or {}).values() if isinstance(t, dict)]
    devices = sorted({str(d) for d in found if d})
    if not devices and run.spec is not None and run.spec.kind == "baseline":
        return "cpu (scikit-learn)"
    return ", ".join(devices) or str(run.config.get("device") or "")


def _when(stamp: object) -> str:
    # "2026-01-01T10:00:00+00:00" -> "2026-01-01 10:00": the minutes are what a reader compares.
    text = str(stamp or "")
    return text[:16].replace("T", " ") if len(text) >= 16 else text


def _threads(run) -> str:
    timings = run.timings
    found = [timings.get("threads"), timings.get("torch_threads")]
    found += [(t or {}).get("torch_threads") for t in (timings.get("folds") or {}).values() if isinstance(t, dict)]
    return ", ".join(sorted({str(x) for x in found if x is not None}))


def runs_html(col: Collection) -> str:
    """The runs used: id, dates, versions, commit, device, threads, executor, fold time, command."""
    rows = []
    for system, run in sorted(col.runs.items()):
        rec = run.record
        fold_s = run.timings.get("fold_wall_s_mean")
        spec = run.spec
        ident = getattr(spec, "identity", None)
        rows.append({"system": system, "run id": run.run_id,
                     "settings": _CHECKS.get(getattr(spec, "check", ""), ""),
                     "identity": ident.hash if ident is not None else "",
                     "finished (UTC)": _when(rec.get("finished")),
                     "serbench": (rec.get("versions") or {}).get("serbench") or "",
                     "commit": str(rec.get("git_commit") or "")[:10], "device": _device(run),
                     "threads": _threads(run), "executor": str(run.timings.get("executor") or ""),
                     "fold s": f"{fold_s:.1f}" if isinstance(fold_s, (int, float)) else "",
                     "seed": "" if rec.get("seed") is None else str(rec.get("seed"))})
    libs = _library_versions(col.runs.values())
    commands = {}
    for system, run in sorted(col.runs.items()):
        commands.setdefault(str(run.record.get("command") or "(not recorded)"), []).append(system)
    cmd_html = "".join(f"<li><code>{_e(c)}</code><br><span class='muted'>{_e(', '.join(s))}</span></li>"
                       for c, s in commands.items())
    upstreams = _upstreams(col.runs.items())
    return (f"<h3 id='{_anchor(col.corpus, 'runs')}'>Runs used and their provenance</h3>"
            "<p class='muted'>For every stored name under "
            f"<code>{_e(str(col.root.resolve()))}</code>, the latest complete run of each identity (settings hash); "
            f"settings = how the run relates to {_e(col.experiment_label)}; fold s = mean wall seconds per fold.</p>"
            f"<div class='scroll details'>{frame_html(pd.DataFrame(rows))}</div>"
            + (f"<h4>Self-supervised upstreams the runs read</h4><div class='scroll'>{frame_html(upstreams)}</div>"
               if not upstreams.empty else "")
            + f"<h4>Library versions recorded by the runs</h4><div class='scroll'>{frame_html(libs)}</div>"
            f"<h4>The exact commands</h4><ul class='notes'>{cmd_html}</ul>")


def _upstreams(runs: Iterable) -> pd.DataFrame:
    """One row per self-supervised upstream a run read: its name, hub id, revision, licence and weights' SHA-256."""
    seen: dict[tuple, list[str]] = {}
    for system, run in runs:
        up = (run.record.get("config") or {}).get("upstream")
        if isinstance(up, dict) and up.get("upstream"):
            key = tuple(str(up.get(k) or "") for k in ("upstream", "hub_id", "revision", "licence", "weights_sha256"))
            seen.setdefault(key, []).append(system)
    rows = [{"upstream": k[0], "hub id": k[1], "revision": k[2], "licence": k[3], "weights SHA-256": k[4][:16],
             "runs": ", ".join(v)} for k, v in seen.items()]
    return pd.DataFrame(rows, columns=["upstream", "hub id", "revision", "licence", "weights SHA-256", "runs"])


_CHECKS = {"declared": "as declared", "profile": "not declared: the profile's", "unrecorded": "not recorded",
           "variant": "variant"}


def _library_versions(runs: Iterable) -> pd.DataFrame:
    seen: dict[str, dict[str, list[str]]] = {}
    for run in runs:
        for lib, version in sorted((run.record.get("versions") or {}).items()):
            seen.setdefault(lib, {}).setdefault(str(version), []).append(run.system)
    rows = []
    for lib, by_version in seen.items():
        if len(by_version) == 1:
            rows.append({"library": lib, "version": next(iter(by_version)), "runs": "all"})
        else:
            for version, systems in sorted(by_version.items()):
                rows.append({"library": lib, "version": version, "runs": ", ".join(systems)})
    return pd.DataFrame(rows, columns=["library", "version", "runs"])


def provenance_html(collections: dict[str, Collection], command: str | None, built: str,
                    mine: dict, commit: str | None) -> str:
    """How this page was built: when, by which serbench and libraries, with which command."""
    rows = [("built", built), ("command", command or "(library call)"),
            ("serbench", f"{mine.get('serbench') or '?'}" + (f", commit {commit}" if commit else "")),
            ("results store", ", ".join(str(c.root.resolve()) for c in collections.values()))]
    rows += [(lib, str(v)) for lib, v in mine.items() if lib != "serbench"]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return (f"<section id='provenance'><h2>Provenance of this page</h2><table>{body}</table>"
            "<p class='muted'>Each run's own provenance (versions, commit, device, command) is listed with its "
            "corpus above.</p></section>")


def _anchor(corpus: str, part: str = "") -> str:
    return "corpus-" + "".join(ch if ch.isalnum() else "-" for ch in corpus) + (f"-{part}" if part else "")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


__all__ = ["build_report", "render_page", "HtmlReport", "default_out", "leaderboard_html", "corpus_html",
           "table_html", "figure_html", "frame_html", "REPORT_FILE"]
