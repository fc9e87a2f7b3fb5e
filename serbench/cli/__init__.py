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
#: The area module of each command: ``serbench predict`` imports the bundle commands' module alone, not
#: every area's (and what those import). A command not listed is still found: every area is then loaded.
COMMAND_AREAS = {"corpora": "corpora", "manifest": "corpora", "demo-corpus": "corpora", "fetch": "corpora",
                 "extract": "features", "cache": "features", "systems": "systems", "baseline": "experiments",
                 "runs": "experiments", "deep": "deep", "run": "run", "rerun": "run", "tables": "reports",
                 "report": "reports", "train": "bundles", "predict": "bundles", "cross": "cross",
                 "cross-tables": "cross", "models": "models"}


class _Group(click.Group):
    """The command group; :func:`main` loads each area's commands when one of them is asked for."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.areas_loaded: set[str] = set()

    def load(self, areas: tuple[str, ...] = AREAS) -> "_Group":
        for area in areas:
            if area in self.areas_loaded:
                continue
            self.areas_loaded.add(area)
            try:
                mod = importlib.import_module(f"serbench.cli.{area}")
            except ModuleNotFoundError as exc:
                if exc.name != f"serbench.cli.{area}":
                    raise
                continue
            for cmd in getattr(mod, "COMMANDS", ()):
                self.add_command(cmd)
        return self

    def get_command(self, ctx: click.Context, cmd_name: str):  # type: ignore[override]
        if cmd_name not in self.commands:
            area = COMMAND_AREAS.get(cmd_name)
            self.load((area,) if area else AREAS)
            if cmd_name not in self.commands:
                self.load()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except SerbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="serbench")
def _cli() -> None:
    """Speech emotion recognition benchmarks: corpora -> features -> experiments -> reports."""


def __getattr__(name: str):
    # ``from serbench.cli import cli``: the group with every command (``cli.commands`` complete).
    if name == "cli":
        return _cli.load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    _cli()
