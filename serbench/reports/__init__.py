"""Reports: the paper's tables, significance tests, figures and an HTML page, from the results store only.

>>> from serbench.reports import tables_for
>>> report = tables_for("casia", runs="runs")  # doctest: +SKIP
>>> report.frames["table5"]                    # doctest: +SKIP
>>> from serbench.reports.html import build_report
>>> build_report(["casia", "emodb"], runs="runs", out="report")  # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from serbench.reports.collect import Collection, EmptyStoreError, ReportError, collect
from serbench.reports.commands import corpus_root, experiment_ref, produce_command, store_cache
from serbench.reports.figures import write_confusion
from serbench.reports.paper import paper_tables
from serbench.reports.render import Table, document_latex, document_markdown, write_table
from serbench.reports.tables import missing_systems
from serbench.io import atomic_write_bytes, atomic_write_text
from serbench.settings import runs_root

__all__ = ["TablesReport", "tables_for", "build_tables", "produce_command", "experiment_ref", "corpus_root",
           "store_cache", "ReportError", "EmptyStoreError"]


@dataclass
class TablesReport:
    """What ``serbench tables`` produced for one corpus.

    ``tables``: key (file stem) -> :class:`Table` (the paper-shaped tables, then the all-tests
    tables that exist only as CSV); ``files``: every file written (``tables.md``, ``tables.tex``,
    per-table files, then figures); ``figures``: system -> confusion PNG; ``curves``: system -> training-curves
    PNG (runs that recorded curves); ``missing``: commands that
    would produce the runs the tables still lack; ``collection``: the runs used (for each stored name the
    latest complete run with the settings the experiment file declares, and each variant) and notes;
    ``summary``: every system run, ranked, tested against the best (what the outputs open with);
    ``folded``: table key -> the one line shown instead of a paper table that has no run at all.
    """

    corpus: str
    runs_dir: Path
    out_dir: Path
    collection: Collection
    tables: dict[str, Table] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)
    curves: dict[str, Path] = field(default_factory=dict)   # system -> training-curves PNG (deep runs)
    missing: list[str] = field(default_factory=list)
    summary: Table | None = None
    folded: dict[str, str] = field(default_factory=dict)

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        """The display DataFrames by table key (what the Markdown, LaTeX and CSV files hold)."""
        return {k: t.frame for k, t in self.tables.items()}

    @property
    def notes(self) -> list[str]:
        """Partial runs ignored, older runs passed over, unreadable folders, metric disagreements."""
        return self.collection.notes()

    @property
    def shown(self) -> list[Table]:
        """The paper-shaped tables (what Markdown, LaTeX and the terminal show), in the paper's order."""
        return [t for t in self.tables.values() if not t.detail_only]


def build_tables(col: Collection) -> dict[str, Table]:
    """All tables from a collection: Tables I-V and the systems table in the paper's shape, then the
    all-tests tables (feature and systems significance) that are written as CSV only."""
    return {t.key: t for t in paper_tables(col)}


def figures_markdown(report: "TablesReport", significance: bool) -> str:
    """The figures, linked right after the summary: significance between systems, then one confusion per system."""
    from serbench.reports.render import _md_cell

    items = []
    if significance:
        items.append("[significance between systems](significance.png) (paired t-test on per-fold UA; both tests "
                     "for every pair in significance-details.csv)")
    order = sorted(report.figures.items(), key=lambda kv: (-report.collection.runs[kv[0]].metrics["ua"], kv[0]))
    items.append("confusion matrices: " + ", ".join(f"[{_md_cell(system)}]({path.name})" for system, path in order))
    return "**Figures**: " + "; ".join(items) + "\n"


def document_notes(report: "TablesReport") -> list[str]:
    """What a reader of the whole output needs once: the runs used, what was ignored, what is missing."""
    used = ", ".join(f"{s}/{r.run_id}" for s, r in sorted(report.collection.runs.items()))
    lines = [f"Runs used (latest complete per system and settings, checked against "
             f"{report.collection.experiment_label}): {used}."]
    lines += report.notes
    if report.missing:
        lines.append(f"{len(report.missing)} declared run(s) missing; produce them with: "
                     + "; ".join(f"`{c}`" for c in report.missing))
    return lines


def tables_for(corpus: str, runs: str | Path | None = None, out: str | Path | None = None, *,
               experiment: "str | Path | object | None" = None, cache: str | Path | None = None) -> TablesReport:
    """Write Tables I-V and the systems table (``tables.md``, ``tables.tex``, ``<key>.tex``, ``<key>.csv``,
    ``<key>-details.csv``), the all-tests CSVs and one confusion PNG per system for ``corpus``.

    ``runs``: the store root (default :func:`serbench.settings.runs_root`); ``out``: where files go
    (default ``<runs>/<corpus>/tables/``); ``experiment``: the experiment file (path, shipped name or
    :class:`~serbench.systems.experiment.Experiment`; default ``jiang2019``) whose declarations decide
    which run fills each row and whose reported figures fill the paper columns; ``cache``: the feature
    cache named in the commands for missing runs. Raises :class:`EmptyStoreError` when the store has
    no complete run for the corpus; its message lists the commands that would produce them.
    """
    from serbench.reports.plots import png_bytes, significance_pairs, significance_plot, write_curves
    from serbench.reports.summary import folded_tables, summary_table

    col = collect(corpus, runs, experiment)
    runs_dir = runs_root(runs)
    missing = [produce_command(s, col, runs, cache) for s in missing_systems(col)]
    if not col.runs:
        lines = [f"no complete runs for corpus {corpus!r} under {col.root}"]
        lines += [f"  note: {n}" for n in col.notes()]
        lines.append(f"the tables of {col.experiment_label} need these runs; produce them with:")
        lines += [f"  {cmd}" for cmd in missing]
        raise EmptyStoreError("\n".join(lines))
    out_dir = Path(out).expanduser() if out is not None else runs_dir / corpus / "tables"
    report = TablesReport(corpus=corpus, runs_dir=runs_dir, out_dir=out_dir, collection=col, missing=missing)
    report.tables = build_tables(col)
    report.summary = summary_table(col)
    report.folded = folded_tables(col, report.shown, runs, cache)
    figures = []
    sig = significance_plot(col)
    if sig is not None:
        path = out_dir / "significance.png"
        atomic_write_bytes(path, png_bytes(sig.figure))
        figures.append(path)
        detail = out_dir / "significance-details.csv"
        atomic_write_text(detail, significance_pairs(col, sig.data).to_csv(index=False))
        report.files.append(detail)
    for system, run in sorted(col.runs.items()):
        report.figures[system] = write_confusion(run, corpus, out_dir)
        figures.append(report.figures[system])
        curves = write_curves(run, out_dir)
        if curves is not None:
            report.curves[system] = curves
            figures.append(curves)
    notes = document_notes(report)
    if report.curves:
        notes.append("Training curves (loss and UA by epoch, one line per fold): " + ", ".join(
            f"[{system}]({path.name})" for system, path in sorted(report.curves.items())) + ".")
    md, tex = out_dir / "tables.md", out_dir / "tables.tex"
    document = [report.summary, *report.shown]
    atomic_write_text(md, document_markdown(document, f"serbench tables — {corpus}", notes, folded=report.folded,
                                            after={"summary": figures_markdown(report, sig is not None)}))
    atomic_write_text(tex, document_latex(document, notes, folded=report.folded))
    report.files += [md, tex]
    report.files.extend(write_table(report.summary, out_dir))
    for table in report.tables.values():
        report.files.extend(write_table(table, out_dir))
    report.files += figures
    return report
