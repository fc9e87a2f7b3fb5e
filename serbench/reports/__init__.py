"""Reports: the paper's tables, significance tests and confusion figures, from the results store only.

>>> from serbench.reports import tables_for
>>> report = tables_for("casia", runs="runs")  # doctest: +SKIP
>>> report.frames["table5"]                    # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from serbench.reports.collect import Collection, EmptyStoreError, ReportError, SystemSpec, collect
from serbench.reports.figures import write_confusion
from serbench.reports.render import Table, write_table
from serbench.reports.systems import systems_significance, systems_table
from serbench.reports.tables import (
    feature_significance,
    feature_table,
    missing_systems,
    table1,
    table2,
    table3,
    table4,
)
from serbench.settings import runs_root

__all__ = ["TablesReport", "tables_for", "build_tables", "produce_command", "ReportError", "EmptyStoreError"]


@dataclass
class TablesReport:
    """What ``serbench tables`` produced for one corpus.

    ``tables``: key (file stem) -> :class:`Table`; ``files``: every file written (tables, then
    figures); ``figures``: system -> PNG path; ``missing``: commands that would produce the runs
    the tables still lack; ``collection``: the runs used (latest complete per system) and notes.
    """

    corpus: str
    runs_dir: Path
    out_dir: Path
    collection: Collection
    tables: dict[str, Table] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        """The display DataFrames by table key (what the Markdown, LaTeX and CSV files hold)."""
        return {k: t.frame for k, t in self.tables.items()}

    @property
    def notes(self) -> list[str]:
        """Partial runs ignored, older runs passed over, unreadable folders, metric disagreements."""
        return self.collection.notes()


def build_tables(col: Collection) -> dict[str, Table]:
    """All tables from a collection: the paper's order, the feature significance table, then the systems."""
    tables = [table1(col), table2(col), table3(col), table4(col), feature_table(col), feature_significance(col),
              systems_table(col), systems_significance(col)]
    return {t.key: t for t in tables}


def produce_command(spec: SystemSpec, corpus: str, runs: str | Path | None = None) -> str:
    """The ``serbench`` command that would produce a run of ``spec`` (ROOT is the corpus folder)."""
    runs_opt = f" --runs {runs}" if runs else ""
    if spec.kind == "baseline":
        norm = " --speaker-norm" if spec.speaker_norm else ""
        return (f"serbench baseline --corpus {corpus} --root ROOT --feature {spec.feature} "
                f"--classifier {spec.classifier}{norm}{runs_opt}")
    segments = f" --segments {spec.segments}" if spec.segments is not None else ""
    return f"serbench deep --corpus {corpus} --root ROOT{segments} --model {spec.model}{runs_opt}"


def tables_for(corpus: str, runs: str | Path | None = None, out: str | Path | None = None) -> TablesReport:
    """Render Tables I-V, the significance tables and one confusion PNG per system for ``corpus``.

    ``runs``: the store root (default :func:`serbench.settings.runs_root`); ``out``: where files go
    (default ``<runs>/<corpus>/tables/``). Raises :class:`EmptyStoreError` when the store has no
    complete run for the corpus; its message lists the commands that would produce them.
    """
    col = collect(corpus, runs)
    runs_dir = runs_root(runs)
    missing = [produce_command(s, corpus, runs) for s in missing_systems(col)]
    if not col.runs:
        lines = [f"no complete runs for corpus {corpus!r} under {col.root}"]
        lines += [f"  note: {n}" for n in col.notes()]
        lines.append("the tables need these runs; produce them with (ROOT = the corpus folder):")
        lines += [f"  {cmd}" for cmd in missing]
        raise EmptyStoreError("\n".join(lines))
    out_dir = Path(out).expanduser() if out is not None else runs_dir / corpus / "tables"
    report = TablesReport(corpus=corpus, runs_dir=runs_dir, out_dir=out_dir, collection=col, missing=missing)
    report.tables = build_tables(col)
    for table in report.tables.values():
        report.files.extend(write_table(table, out_dir))
    for system, run in sorted(col.runs.items()):
        path = write_confusion(run, corpus, out_dir)
        report.figures[system] = path
        report.files.append(path)
    return report
