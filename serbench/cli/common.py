"""Options and helpers shared by the CLI modules."""
from __future__ import annotations

import click
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def split_list(value: str | None) -> list[str] | None:
    """``"a,b , c"`` -> ``["a", "b", "c"]``; empty or None -> None."""
    if not value:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


corpus_option = click.option("--corpus", required=True, help="Corpus name (see `serbench corpora`).")
root_option = click.option("--root", required=True, type=click.Path(file_okay=False, path_type=str),
                           help="The corpus folder, laid out as its official release.")
emotions_option = click.option("--emotions", default=None, metavar="A,B,...",
                               help="Keep only these canonical emotions (e.g. angry,happy,neutral,sad).")
cache_option = click.option("--cache", default=None, type=click.Path(file_okay=False, path_type=str),
                            help="Feature cache root (default $SERBENCH_CACHE or ~/.cache/serbench).")
runs_option = click.option("--runs", default=None, type=click.Path(file_okay=False, path_type=str),
                           help="Results store root (default $SERBENCH_RUNS or ./runs).")
