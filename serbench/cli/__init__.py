"""The ``serbench`` command: thin click commands that call library functions.

Each area registers its commands from its own module (corpora, features,
experiments, deep, reports). Errors a user can fix print as one line, exit 2.
"""
from __future__ import annotations

import importlib
import sys

import click

from serbench import __version__
from serbench.errors import SerbenchError

AREAS = ("corpora", "features", "systems", "experiments", "deep", "run", "reports", "bundles", "cross", "models")


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except SerbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="serbench")
def cli() -> None:
    """Speech emotion recognition benchmarks: corpora -> features -> experiments -> reports."""


for _area in AREAS:
    try:
        _mod = importlib.import_module(f"serbench.cli.{_area}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"serbench.cli.{_area}":
            raise
        continue
    for _cmd in getattr(_mod, "COMMANDS", ()):
        cli.add_command(_cmd)


def main() -> None:
    cli()
