"""`serbench cross | cross-tables`: train on one corpus, test on others; the matrix with CIs and significance."""
from __future__ import annotations

import click

from serbench.cli.common import emotions_option, runs_option, split_list
from serbench.cli.run_options import executor_options, profile_option, seed_option, sets_option

_ADAPT = ("none", "corpus", "speaker")


def _adapt_list(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for v in value or ("none",):
        for a in split_list(v) or []:
            if a not in _ADAPT:
                raise click.BadParameter(f"{a!r}: choose from {', '.join(_ADAPT)}", param_hint="--adapt")
            if a not in out:
                out.append(a)
    return out or ["none"]


@click.command("cross")
@click.option("--train", "train", multiple=True, metavar="NAME=DIR", help="Training corpus (repeatable).")
@click.option("--test", "test", multiple=True, metavar="NAME=DIR", help="Test corpus (repeatable).")
@click.option("--corpus", "corpora", multiple=True, metavar="NAME=DIR",
              help="Matrix form: every ordered pair of these corpora (repeat, at least twice).")
@click.option("--feature", "features", required=True, metavar="SET[,SET...]",
              help="Functional feature set(s) the systems read, e.g. IS10 or IS09,IS10,eGeMAPS.")
@click.option("--system", "systems", multiple=True, metavar="NAME",
              help="Registered system (repeatable; default svm-linear; `serbench systems`).")
@click.option("--adapt", multiple=True, callback=_adapt_list, metavar="none|corpus|speaker",
              help="Label-free adaptation to each corpus (repeatable or comma-separated): none fits nothing on the "
                   "test corpus; corpus z-scores each corpus with its own statistics; speaker each speaker.")
@emotions_option
@click.option("--no-diagonal", is_flag=True, help="Do not run the in-corpus (LOSO) runs of the diagonal.")
@click.option("--dry-run", is_flag=True, help="Show the shared emotions, the cells and which are stored; run nothing.")
@click.option("--tables", "tables", default=None, type=click.Path(file_okay=False, path_type=str),
              help="Write the cross-corpus tables (markdown, CSV, heat map) into this folder afterwards.")
@click.option("--n-boot", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Speaker-bootstrap draws of the UA confidence intervals.")
@click.option("--force", is_flag=True, help="Run every cell again, even those the store holds.")
@click.option("--keep-going", is_flag=True, help="Go on with the other cells when one fails.")
@profile_option
@sets_option
@seed_option
@executor_options
def cross_cmd(train: tuple[str, ...], test: tuple[str, ...], corpora: tuple[str, ...], features: str,
              systems: tuple[str, ...], adapt: list[str], emotions: str | None, no_diagonal: bool, dry_run: bool,
              tables: str | None, n_boot: int, force: bool, keep_going: bool, profile: str | None,
              sets: tuple[str, ...], seed: int, jobs: int, threads: int | None, workers: int | None,
              scheduler: str | None, cache: str | None, runs: str | None) -> None:
    """Cross-corpus evaluation: train on all speakers of one corpus, test on another.

    `--train emodb=DIR --test casia=DIR` runs emodb->casia; `--corpus A=DIR --corpus B=DIR ...` runs every ordered
    pair. The emotions are those all corpora share (or --emotions); each corpus's own labels are mapped to them
    (printed and recorded). The diagonal is each corpus's in-corpus LOSO run on the same emotions. Runs the store
    already holds (same identity) are not run again. Runs are stored under the TEST corpus as
    `<system>-from-<train>[-adapt-corpus|-adapt-speaker]`.
    """
    from serbench.cli.run_options import flag_overrides
    from serbench.errors import SerbenchError
    from serbench.systems.cross import corpus_handles, plan_cross, run_cross, status

    if corpora and (train or test):
        raise SerbenchError("give either --corpus (the matrix) or --train/--test pairs, not both")
    if corpora:
        handles = corpus_handles(corpora, cache=cache, jobs=jobs, option="--corpus")
        pairs = None
    else:
        if not train or not test:
            raise SerbenchError("give --train NAME=DIR and --test NAME=DIR (or --corpus NAME=DIR at least twice)")
        tr = corpus_handles(train, cache=cache, jobs=jobs, option="--train")
        te = corpus_handles(test, cache=cache, jobs=jobs, option="--test")
        by_name = {h.name: h for h in [*tr, *te]}
        handles = list(by_name.values())
        pairs = [(a.name, b.name) for a in tr for b in te if a.name != b.name]
        if not pairs:
            raise SerbenchError("--train and --test name the same corpus: nothing to evaluate across corpora")
    feats = split_list(features) or []
    chosen = []
    for name in systems or ("svm-linear",):
        for f in feats:
            chosen.append((name, flag_overrides(name, {"feature": f}, sets)))
    plan = plan_cross(handles, systems=chosen, pairs=pairs, adapt=adapt, emotions=split_list(emotions), seed=seed,
                      profile=profile, diagonal=not no_diagonal)
    for line in plan.describe():
        click.echo(line)
    if dry_run:
        states = status(plan, runs)
        for cell in plan.cells:
            click.echo(f"  {states[cell.key]:8s} {cell.hash}  {cell.label}")
        return
    outcomes = run_cross(plan, runs=runs, workers=workers, scheduler=scheduler, threads=threads, force=force,
                         keep_going=keep_going, log=lambda m: click.echo(f"  {m}", err=True))
    failed = [o for o in outcomes if o.action == "failed"]
    _print_tables([h.name for h in handles], runs, tables, n_boot, seed=0)
    if failed:
        for o in failed:
            click.echo(f"failed: {o.planned.label}: {o.detail}", err=True)
        raise SystemExit(1)


def _print_tables(corpora: list[str], runs: str | None, out: str | None, n_boot: int, seed: int) -> None:
    from serbench.reports.cross import collect_cross, markdown, matrix_tables, write_cross_tables

    col = collect_cross(corpora, runs, n_boot=n_boot, seed=seed)
    for label, table in matrix_tables(col).items():
        click.echo(f"\n{label}: UA % [95 % CI, speaker bootstrap], rows train, columns test")
        click.echo(markdown(table, index=True))
    if out:
        for p in write_cross_tables(col, out):
            click.echo(f"wrote {p}")


@click.command("cross-tables")
@click.option("--corpus", "corpora", multiple=True, required=True, help="Corpus name (repeat, at least twice).")
@click.option("--out", default=None, type=click.Path(file_okay=False, path_type=str),
              help="Output folder (default <runs>/cross-tables).")
@click.option("--n-boot", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Speaker-bootstrap draws of the UA confidence intervals.")
@click.option("--boot-seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@runs_option
def cross_tables_cmd(corpora: tuple[str, ...], out: str | None, n_boot: int, boot_seed: int, runs: str | None) -> None:
    """Cross-corpus tables from the store: UA matrix with CIs, drop from in-corpus, McNemar, leaderboard, heat map."""
    from serbench.settings import runs_root

    _print_tables(list(corpora), runs, out or str(runs_root(runs) / "cross-tables"), n_boot, boot_seed)


COMMANDS = [cross_cmd, cross_tables_cmd]
