"""Options and helpers shared by the CLI modules.

``console`` and ``err_console`` (rich Consoles for stdout and stderr) are created on first
use, so that importing the CLI does not import rich: read them as ``common.console`` inside
a command, or call :func:`get_console`; ``from serbench.cli.common import console`` at
module level works too but imports rich at that moment.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

_CONSOLES: dict[bool, Console] = {}


def get_console(stderr: bool = False) -> Console:
    """The shared rich Console for stdout (or stderr), created on first use."""
    if stderr not in _CONSOLES:
        from rich.console import Console

        _CONSOLES[stderr] = Console(stderr=stderr)
    return _CONSOLES[stderr]


def __getattr__(name: str) -> object:
    if name == "console":
        return get_console()
    if name == "err_console":
        return get_console(stderr=True)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def split_list(value: str | None) -> list[str] | None:
    """``"a,b , c"`` -> ``["a", "b", "c"]``; empty or None -> None."""
    if not value:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


corpus_option = click.option("--corpus", required=True, help="Corpus name (see `serbench corpora`).")
root_option = click.option("--root", required=True, type=click.Path(file_okay=False, path_type=str),
                           help="The corpus folder, laid out as its official release.")
def _named_list(option: str):
    """A click callback refusing a list option given but naming nothing (``--emotions ,``): it would mean 'all'."""
    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None and split_list(value) is None:
            from serbench.errors import SerbenchError

            raise SerbenchError(f"{option} {value!r}: names nothing; give names separated by commas, or leave "
                                f"{option} out for all")
        return value
    return check


emotions_option = click.option("--emotions", default=None, metavar="A,B,...", callback=_named_list("--emotions"),
                               help="Keep only these canonical emotions (e.g. angry,happy,neutral,sad).")
cache_option = click.option("--cache", default=None, type=click.Path(file_okay=False, path_type=str),
                            help="Feature cache root (default $SERBENCH_CACHE or ~/.cache/serbench).")
runs_option = click.option("--runs", default=None, type=click.Path(file_okay=False, path_type=str),
                           help="Results store root (default $SERBENCH_RUNS or ./runs).")
