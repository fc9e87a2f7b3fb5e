"""``serbench extract`` and ``serbench cache info|verify|clear``: thin wrappers over serbench.features.

Only click and the feature-set registry are imported with this module (``serbench --help``
stays fast); the cache, the extraction loop and rich are imported inside the commands.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from serbench.cli.models import model_dir_option
from serbench.features.registry import DEFAULT_SETS, list_feature_sets, resolve_feature_sets

if TYPE_CHECKING:
    from rich.console import Console

    from serbench.features.extract import ExtractReport


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _check_sets(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--features ,`` (a list naming nothing) is refused: taken as absent it would mean every set."""
    if value is not None and not _split(value):
        from serbench.errors import SerbenchError

        raise SerbenchError(f"--features {value!r}: names no feature set; give a comma-separated list (choices: "
                            f"{','.join(fs.name for fs in list_feature_sets())}) or leave the option out")
    return value


def _check_corpus(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from serbench.corpora import check_corpus_name

    return None if value is None else check_corpus_name(value)


def print_report(report: ExtractReport, console: Console) -> None:
    """The end-of-run summary: one line per set, then every failure (file and reason), then notes."""
    from rich.table import Table

    table = Table(title=f"{report.corpus}: {report.utterances} utterances, jobs={report.jobs}, "
                        f"{report.wall_seconds:.1f} s wall",
                  caption="extractor s: time inside each set's extractor, summed over files and workers (with "
                          "several jobs more than the wall time; decoding and hashing not included)")
    for col in ("set", "extracted", "cached", "nan", "failed", "extractor s"):
        table.add_column(col, justify="left" if col == "set" else "right")
    for name, r in report.sets.items():
        table.add_row(name, str(r.extracted), str(r.cached), str(r.nan), str(r.n_failed), f"{r.seconds:.1f}")
    console.print(table)
    failures = report.failures()
    if failures:
        # One line per file and reason, naming the sets it failed in.
        grouped: dict[tuple[str, str, bool], list[str]] = {}
        for name, f in failures:
            grouped.setdefault((f.path, f.reason, f.cached), []).append(name)
        n_files = len({path for path, _, _ in grouped})
        console.print(f"[bold red]{n_files} file(s) failed[/]:", highlight=False)
        for (path, reason, cached), names in grouped.items():
            note = " (cached; unchanged since; --retry-failed retries)" if cached else ""
            console.print(f"  {path}: {reason} [{', '.join(names)}]{note}", highlight=False, markup=False,
                          soft_wrap=True)
    nan_ids = sorted({u for r in report.sets.values() for u in r.nan_ids})
    if nan_ids:
        shown = ", ".join(nan_ids[:10]) + (f" and {len(nan_ids) - 10} more" if len(nan_ids) > 10 else "")
        console.print(f"{len(nan_ids)} utterance(s) with status 'nan' in some set (silent or too-short audio; "
                      f"their features are NaN, experiments say how they treat them): {shown}",
                      highlight=False, soft_wrap=True)
    for note in getattr(report, "notes", ()):
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


@click.command("extract")
@click.option("--corpus", required=True, callback=_check_corpus, help="Corpus name (see `serbench corpora`).")
@click.option("--root", required=True, type=click.Path(file_okay=False), help="The corpus folder.")
@click.option("--features", "features", default=None, callback=_check_sets,
              help=f"Comma-separated feature sets (default: {','.join(DEFAULT_SETS)}); "
                   f"choices: {','.join(fs.name for fs in list_feature_sets())}.")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(min=1),
              help="Local worker processes.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Extract on a Dask cluster (tcp://HOST:PORT, or local:N; default $SERBENCH_SCHEDULER unless "
                   "--jobs is given). Workers read the audio at the same paths: the corpus root must be visible to "
                   "them there; each file's content is checked, and only this process writes the cache.")
@click.option("--cache", default=None, type=click.Path(file_okay=False),
              help="Cache root (default $SERBENCH_CACHE or ~/.cache/serbench).")
@click.option("--emotions", default=None, help="Comma-separated subset of canonical emotions.")
@click.option("--retry-failed", is_flag=True, help="Retry files cached as failed even if unchanged.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--strict", is_flag=True, help="Exit with status 1 when any file failed.")
@model_dir_option
@click.pass_context
def extract_cmd(ctx: click.Context, corpus: str, root: str, features: str | None, jobs: int, scheduler: str | None,
                cache: str | None, emotions: str | None, retry_failed: bool, no_progress: bool, strict: bool) -> None:
    """Extract feature sets for every utterance into the Parquet cache (incremental).

    Failed files are listed at the end and cached as failed (retried when the file
    changes, or with --retry-failed); the exit status is 0 unless --strict.
    """
    import os

    from rich.console import Console

    from serbench.features.extract import extract

    sets = resolve_feature_sets(_split(features))  # fail on a bad name before scanning
    jobs_given = ctx.get_parameter_source("jobs") is not click.core.ParameterSource.DEFAULT
    scheduler = scheduler or (None if jobs_given else os.environ.get("SERBENCH_SCHEDULER") or None)
    executor = None
    if scheduler:
        from serbench.executors import make_executor

        executor = make_executor(scheduler=scheduler)
    try:
        report = extract(corpus, root, sets, cache=cache, jobs=jobs, emotions=_split(emotions),
                         progress=not no_progress, retry_failed=retry_failed, executor=executor)
    finally:
        if executor is not None:
            executor.close()
    print_report(report, Console())
    if strict and report.failures():
        sys.exit(1)


@click.group("cache")
def cache_group() -> None:
    """Inspect, check or clear the feature cache."""


_cache_opt = click.option("--cache", default=None, type=click.Path(file_okay=False),
                          help="Cache root (default $SERBENCH_CACHE or ~/.cache/serbench).")
_corpus_opt = click.option("--corpus", default=None, callback=_check_corpus, help="Only this corpus.")
_features_opt = click.option("--features", default=None, callback=_check_sets,
                             help="Only these comma-separated sets.")


@cache_group.command("info")
@_cache_opt
@_corpus_opt
@_features_opt
def cache_info(cache: str | None, corpus: str | None, features: str | None) -> None:
    """Sets, rows per status and size on disk."""
    from rich.console import Console

    from serbench.features import cache as cache_mod

    console = Console()
    folders = cache_mod.list_folders(cache, corpus, _split(features))
    foreign = cache_mod.unrecognized_folders(cache, corpus, _split(features))
    root = cache_mod.cache_root(cache)
    if not folders:
        console.print(f"no cached features under {root}", highlight=False)
    else:
        console.print(f"feature cache {root}", highlight=False, soft_wrap=True)
        # Plain columns two spaces apart, never cut: the widest corpus, set, stale key and counts fit 80.
        table = _PlainTable()
        total, stale, unknown, errors = 0, 0, 0, []
        for f in folders:
            i = cache_mod.folder_info(f)
            total += int(i["bytes"])  # type: ignore[arg-type]
            stale += i["current"] is False
            unknown += i["current"] is None
            if i["error"]:
                errors.append(str(i["error"]))
            key = f.key + {True: "", False: "*", None: "?"}[i["current"]]
            counts = ["?" if i[c] is None else str(i[c]) for c in ("rows", "ok", "nan", "failed")]
            table.add_row(f.corpus, f.name, key, *counts, str(i["parts"]), _size(int(i["bytes"])))  # type: ignore[arg-type]
        for line in table.lines():
            click.echo(line)
        console.print(f"total {_size(total)} in {len(folders)} folder(s)", highlight=False)
        if stale:
            console.print(f"* {stale} stale folder(s): written with other parameters or library versions; "
                          "`serbench cache clear --stale --yes` removes them", highlight=False)
        if unknown:
            console.print(f"? {unknown} folder(s) whose key cannot be checked here (a self-supervised set's weights "
                          "are not found: see `serbench models`); kept by `cache clear --stale`", highlight=False)
        for e in errors:
            console.print(f"[yellow]damaged:[/] {e}", highlight=False)
    _print_foreign(console, foreign)


class _PlainTable:
    """``cache info``'s table as plain text: a header and one line per folder, columns two spaces apart."""

    COLUMNS = ("corpus", "set", "key", "rows", "ok", "nan", "failed", "parts", "size")
    LEFT = ("corpus", "set", "key")

    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        self.rows.append(tuple(cells))

    def lines(self) -> list[str]:
        table = [self.COLUMNS, *self.rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(self.COLUMNS))]
        return ["  ".join(c.ljust(w) if name in self.LEFT else c.rjust(w)
                          for c, w, name in zip(r, widths, self.COLUMNS)).rstrip() for r in table]


def _print_foreign(console: Console, foreign: list) -> None:
    for path in foreign:
        console.print(f"[yellow]note:[/] {path} is named like a cache folder but its meta.json does not describe "
                      "it: not a cache set, serbench leaves it alone", highlight=False, soft_wrap=True)


@cache_group.command("verify")
@_cache_opt
@_corpus_opt
@_features_opt
@click.option("--rehash", is_flag=True, help="Also re-hash each cached row's audio file.")
def cache_verify(cache: str | None, corpus: str | None, features: str | None, rehash: bool) -> None:
    """Check parts are readable (page checksums included), meta consistent, ids unique (and with --rehash, audio unchanged)."""
    from rich.console import Console

    from serbench.features import cache as cache_mod

    console = Console()
    folders = cache_mod.list_folders(cache, corpus, _split(features))
    problems = []
    for f in folders:
        found = cache_mod.verify_folder(f, rehash=rehash)
        problems += found
        console.print(f"{f.corpus}/{f.path.name}: {'ok' if not found else f'{len(found)} problem(s)'}",
                      highlight=False)
    for p in problems:
        console.print(f"  {p}", highlight=False, markup=False)
    # Named like a set and holding parts, but meta.json missing or garbage: extract refuses to read it,
    # so verify fails on it too (naming meta.json) instead of calling it "not a cache set".
    damaged = cache_mod.damaged_folders(cache, corpus, _split(features))
    for _, line in damaged:
        console.print(f"damaged: {line}", highlight=False, markup=False, soft_wrap=True)
    problems += [line for _, line in damaged]
    if not folders and not damaged:
        console.print(f"no cached features under {cache_mod.cache_root(cache)}", highlight=False)
    damaged_dirs = {folder for folder, _ in damaged}
    _print_foreign(console, [f for f in cache_mod.unrecognized_folders(cache, corpus, _split(features))
                             if f not in damaged_dirs])
    if problems:
        sys.exit(1)


@cache_group.command("clear")
@_cache_opt
@_corpus_opt
@_features_opt
@click.option("--stale", is_flag=True, help="Only folders whose key is no longer current.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def cache_clear(cache: str | None, corpus: str | None, features: str | None, stale: bool, yes: bool) -> None:
    """Delete cached features (all, or one corpus / some sets / stale keys); nothing else is touched."""
    from serbench.features import cache as cache_mod

    folders = cache_mod.list_folders(cache, corpus, _split(features))
    if stale:
        folders = [f for f in folders if f.current is False]   # unknown (None) is never stale
    if not folders:
        click.echo(f"nothing to clear under {cache_mod.cache_root(cache)}")
        return
    listing = "\n".join(f"  {f.path}" for f in folders)
    if not yes and not click.confirm(f"delete {len(folders)} cache folder(s)?\n{listing}\n", default=False):
        raise click.Abort()
    freed = cache_mod.clear_folders(folders)
    click.echo(f"deleted {len(folders)} folder(s), {_size(freed)} freed")


COMMANDS = [extract_cmd, cache_group]
