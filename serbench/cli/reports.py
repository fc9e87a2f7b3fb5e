"""``serbench tables`` and ``serbench report``: the paper's tables, figures and an HTML page from the results store."""
from __future__ import annotations

import os
from pathlib import Path

import click


def _out_folder(out: Path | None, runs: Path | None, default: tuple[str, ...]) -> Path:
    """The folder the files go to, checked before any work: the default one (``<runs>/<default...>``) must
    not lead out of the runs folder through a link; a given ``--out`` is the user's choice, but must
    not be a run folder of the store (whose files the command reads)."""
    from serbench.errors import SerbenchError
    from serbench.io import ensure_inside
    from serbench.settings import runs_root

    root = runs_root(runs)
    if out is None:
        target = root.joinpath(*default)
        ensure_inside(target, root)
        return target
    real = Path(out).expanduser().resolve()
    for folder in (real, *real.parents):
        if (folder / "run.json").is_file() or (folder / "predictions.parquet").is_file():
            raise SerbenchError(f"--out {out}: lies inside the stored run {folder}, which this command reads; "
                                "choose a folder outside the runs")
    return Path(out).expanduser()


def _check_corpora(corpora: tuple[str, ...]) -> None:
    """A corpus name becomes a path (the default output folder): refuse a bad one as --corpus's fault, first."""
    from serbench.corpora import check_corpus_name
    from serbench.errors import SerbenchError

    for corpus in corpora:
        try:
            check_corpus_name(corpus)
        except SerbenchError as exc:
            raise SerbenchError(f"--corpus: {exc}") from None


@click.command("tables")
@click.option("--corpus", required=True, help="Corpus name as stored under the runs folder, e.g. casia.")
@click.option("--runs", "runs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Results store root (default: $SERBENCH_RUNS or ./runs).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the Markdown/LaTeX/CSV tables and PNG figures "
                   "(default: <runs>/<corpus>/tables/).")
@click.option("--experiment", "experiment", default="jiang2019", show_default=True, metavar="FILE|NAME",
              help="Experiment file (or a shipped one's name: jiang2019, seed-papers, demo) whose declared runs fill "
                   "the rows and whose reported figures fill the paper columns; other settings are variant rows.")
@click.option("--cache", "cache", default=None, type=click.Path(file_okay=False, path_type=str),
              help="Feature cache named in the commands printed for missing runs (default: not named).")
def tables_cmd(corpus: str, runs: Path | None, out: Path | None, experiment: str, cache: str | None) -> None:
    """Tables I-V, significance tests and confusion matrices for CORPUS, from stored predictions."""
    from rich.console import Console
    from rich.text import Text

    from serbench.reports import tables_for
    from serbench.reports.render import to_rich, unique_notes

    _check_corpora((corpus,))
    out = _out_folder(out, runs, (corpus, "tables"))
    report = tables_for(corpus, runs=runs, out=out, experiment=experiment, cache=cache)
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped to a file or log: rich would fold the tables at 80 columns.
        console = Console(width=160)
    console.print(to_rich(report.summary))   # the answer first: every system run, ranked, tested against the best
    console.print()
    for table in report.shown:
        if table.key in report.folded:        # a table without any run: one line and the command that fills it
            console.print(Text(report.folded[table.key]))
            continue
        console.print(to_rich(table, common=False))
        console.print()
    for note in unique_notes([t for t in report.shown if t.key not in report.folded]):   # shared legends, once
        console.print(Text(f"- {note}"))
    used = ", ".join(f"{s}/{r.run_id}" for s, r in sorted(report.collection.runs.items()))
    console.print(Text(f"Runs used (latest complete per system and settings, checked against "
                       f"{report.collection.experiment_label}): {used}"))
    for note in report.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    if report.missing:
        console.print(Text(f"{len(report.missing)} run(s) declared by {report.collection.experiment_label} missing; "
                           "produce them with (ROOT = the corpus folder where the store does not say):",
                           style="bold"))
        for cmd in report.missing:
            console.print(Text(f"  {cmd}"))
    console.print(Text(f"Wrote {len(report.files)} files to {report.out_dir}:"))
    for path in report.files:
        console.print(Text(f"  {path}"))


@click.command("report")
@click.option("--corpus", "corpora", required=True, multiple=True,
              help="Corpus name as stored under the runs folder; repeat for a cross-corpus leaderboard.")
@click.option("--runs", "runs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Results store root (default: $SERBENCH_RUNS or ./runs).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for report.html (default: <runs>/<corpus>/report/, or <runs>/report/ "
                   "with several corpora).")
@click.option("--experiment", "experiment", default="jiang2019", show_default=True, metavar="FILE|NAME",
              help="Experiment file (or a shipped one's name: jiang2019, seed-papers, demo) whose declared runs fill "
                   "the rows and whose reported figures fill the paper columns; other settings are variant rows.")
@click.option("--cache", "cache", default=None, type=click.Path(file_okay=False, path_type=str),
              help="Feature cache named in the commands printed for missing runs (default: not named).")
def report_cmd(corpora: tuple[str, ...], runs: Path | None, out: Path | None, experiment: str,
               cache: str | None) -> None:
    """One self-contained HTML page for CORPUS: tables, figures, significance, provenance."""
    import shlex
    import sys

    from serbench.reports.html import build_report

    command = "serbench " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else None
    _check_corpora(corpora)
    out = _out_folder(out, runs, (corpora[0], "report") if len(corpora) == 1 else ("report",))
    report = build_report(list(corpora), runs=runs, out=out, command=command, experiment=experiment, cache=cache)
    systems = sum(len(s) for s in report.systems.values())
    click.echo(f"Wrote {report.path} ({report.size / 1e6:.1f} MB, {systems} system runs, "
               f"{len(report.collections)} corpus/corpora, {report.seconds:.1f} s)")


COMMANDS = [tables_cmd, report_cmd]
