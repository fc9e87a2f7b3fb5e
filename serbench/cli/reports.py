"""``serbench tables`` and ``serbench report``: the paper's tables, figures and an HTML page from the results store."""
from __future__ import annotations

import os
from pathlib import Path

import click


@click.command("tables")
@click.option("--corpus", required=True, help="Corpus name as stored under the runs folder, e.g. casia.")
@click.option("--runs", "runs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Results store root (default: $SERBENCH_RUNS or ./runs).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the Markdown/LaTeX/CSV tables and PNG figures "
                   "(default: <runs>/<corpus>/tables/).")
def tables_cmd(corpus: str, runs: Path | None, out: Path | None) -> None:
    """Tables I-V, significance tests and confusion matrices for CORPUS, from stored predictions."""
    from rich.console import Console
    from rich.text import Text

    from serbench.reports import tables_for
    from serbench.reports.render import to_rich, unique_notes

    report = tables_for(corpus, runs=runs, out=out)
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped to a file or log: rich would fold the tables at 80 columns.
        console = Console(width=160)
    for table in report.shown:
        console.print(to_rich(table, common=False))
        console.print()
    for note in unique_notes(report.shown):   # the legends the tables share, once
        console.print(Text(f"- {note}"))
    used = ", ".join(f"{s}/{r.run_id}" for s, r in sorted(report.collection.runs.items()))
    console.print(Text(f"Runs used (latest complete per system): {used}"))
    for note in report.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    if report.missing:
        console.print(Text(f"{len(report.missing)} expected run(s) missing; produce them with "
                           "(ROOT = the corpus folder):", style="bold"))
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
def report_cmd(corpora: tuple[str, ...], runs: Path | None, out: Path | None) -> None:
    """One self-contained HTML page for CORPUS: tables, figures, significance, provenance."""
    import shlex
    import sys

    from serbench.reports.html import build_report

    command = "serbench " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else None
    report = build_report(list(corpora), runs=runs, out=out, command=command)
    systems = sum(len(s) for s in report.systems.values())
    click.echo(f"Wrote {report.path} ({report.size / 1e6:.1f} MB, {systems} system runs, "
               f"{len(report.collections)} corpus/corpora, {report.seconds:.1f} s)")


COMMANDS = [tables_cmd, report_cmd]
