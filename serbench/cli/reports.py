"""``serbench tables``: render the paper's tables and confusion figures from the results store."""
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
    from serbench.reports.render import to_rich

    report = tables_for(corpus, runs=runs, out=out)
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped to a file or log: rich would assume 80 columns and fold the wide tables to pieces.
        console = Console(width=200)
    for table in report.tables.values():
        # Table V is the widest; its run ids are listed under "Runs used" below.
        console.print(to_rich(table, hide_prefix=("run",) if table.key == "table5" else ()))
        console.print()
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


COMMANDS = [tables_cmd]
