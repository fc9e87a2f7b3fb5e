"""`serbench run FILE` (an experiment file: run what the store lacks) and `serbench rerun RUN`."""
from __future__ import annotations

import click

from serbench.cli.common import cache_option, runs_option, split_list
from serbench.cli.run_options import device_option, executor_options, jobs_option, threads_option
from serbench.errors import SerbenchError


@click.command("run")
@click.argument("experiment", metavar="FILE")
@click.option("--corpus", "corpora", multiple=True, metavar="NAME[=DIR]",
              help="Corpus to run it on, with its folder as NAME=DIR or with --root (repeatable; default: the "
                   "corpora under the file's [roots]).")
@click.option("--root", default=None, type=click.Path(file_okay=False, path_type=str),
              help="The corpus folder (with one --corpus; default: the file's [roots]).")
@click.option("--only", default=None, metavar="GLOB,...",
              help="Only the runs whose store name or system matches, e.g. 'IS10-*,cnn-sru-N3'.")
@click.option("--dry-run", is_flag=True, help="List the expanded runs with their identity and status; run nothing.")
@click.option("--force", is_flag=True, help="Run every listed run even if the store has it.")
@click.option("--seed", type=int, default=None, help="This seed for every run instead of the file's.")
@click.option("--pretrained", default=None, type=click.Path(dir_okay=False, exists=True),
              help="torchvision-named AlexNet state dict for the systems with a CNN (else trained from scratch).")
@click.option("--keep-going/--stop-on-error", default=True, show_default=True,
              help="Go on with the other runs when one fails.")
@click.option("--cross/--no-cross", "with_cross", default=True, show_default=True,
              help="Also run the file's [cross] matrix (every ordered pair of its corpora).")
@device_option
@executor_options
def run_cmd(experiment, corpora, root, only, dry_run, force, seed, pretrained, keep_going, with_cross, device, jobs,
            threads, workers, scheduler, cache, runs) -> None:
    """Run an experiment file: every declared run the results store lacks, on the chosen executor.

    FILE is a TOML experiment file or the name of a shipped one (jiang2019, seed-papers, demo;
    see the recipes/ folder). A run is done when the store holds a complete run with the same
    identity (system, resolved settings, feature set, protocol, emotions, seed): change a setting
    in a copy of the file and exactly the runs it touches run again.
    """
    from serbench.systems.experiment import load_experiment, run_experiment
    from serbench.systems.runner import stored_identities, stored_status

    exp = load_experiment(experiment)
    given = _given_roots(corpora, root)
    targets = _targets(exp, given) if exp.entries else []
    patterns = split_list(only)
    extra = {"pretrained": str(pretrained)} if pretrained else None
    cross = _cross_plan(exp, given, cache=cache, jobs=jobs, seed=seed) if exp.cross and with_cross else None
    if dry_run:
        if cross is not None:
            from serbench.systems.cross import status as cross_status

            states = cross_status(cross, runs)
            for line in cross.describe():
                click.echo(line)
            for cell in cross.cells:
                click.echo(f"  {states[cell.key]:8s} {cell.hash}  {cell.label}")
        for corpus, _root in targets:
            planned = exp.plan(corpus, only=patterns, seed=seed, extra=extra)
            stored = stored_identities(corpus, runs)
            click.echo(f"{exp.name} on {corpus}: {len(planned)} run(s)")
            width = max([4] + [len(p.name) for p in planned])
            for p in planned:
                given = ", ".join(f"{k}={_show(v)}" for k, v in p.overrides.items())
                click.echo(f"  {p.name:<{width}}  {p.hash}  {stored_status(p.hash, stored):<7}  seed {p.seed}"
                           + (f"  profile {p.profile}" if registry_kind(p.system) == "deep" else "")
                           + (f"  [{given}]" if given else ""))
        return
    failed = []
    for corpus, corpus_root in targets:
        outcomes = run_experiment(exp, corpus, corpus_root, cache=cache, runs=runs, jobs=jobs, seed=seed,
                                  only=patterns, device=device, pretrained=pretrained, threads=threads, force=force,
                                  keep_going=keep_going, workers=workers, scheduler=scheduler, log=click.echo)
        ran = sum(o.action == "ran" for o in outcomes)
        bad = [o for o in outcomes if o.action == "failed"]
        click.echo(f"{exp.name} on {corpus}: {ran} run, {sum(o.action == 'done' for o in outcomes)} already "
                   f"stored, {len(bad)} failed")
        failed += [f"{corpus}/{o.planned.name} ({o.detail})" for o in bad]
    if cross is not None:
        from serbench.systems.cross import run_cross

        outcomes = run_cross(cross, runs=runs, workers=workers, scheduler=scheduler, threads=threads, device=device,
                             force=force, keep_going=keep_going, log=click.echo)
        bad = [o for o in outcomes if o.action == "failed"]
        click.echo(f"{exp.name} [cross]: {sum(o.action == 'ran' for o in outcomes)} run, "
                   f"{sum(o.action == 'done' for o in outcomes)} already stored, {len(bad)} failed; tables: "
                   f"serbench cross-tables {' '.join(f'--corpus {c}' for c in exp.cross.corpora)}"
                   + (f" --runs {runs}" if runs else ""))
        failed += [f"{o.planned.label} ({o.detail})" for o in bad]
    if failed:
        raise SerbenchError("failed runs: " + "; ".join(failed))


def registry_kind(system: str) -> str:
    from serbench.systems import registry

    return registry.get(system).kind


def _show(value: object) -> str:
    from serbench.systems.identity import show_value

    return show_value(value)


def _given_roots(corpora: tuple[str, ...], root: str | None) -> dict[str, str | None]:
    """``--corpus NAME[=DIR]`` and ``--root`` as {corpus: folder or None}."""
    out: dict[str, str | None] = {}
    for item in corpora:
        name, sep, folder = item.partition("=")
        if sep and not folder.strip():
            raise SerbenchError(f"--corpus {item}: give NAME=DIR with a folder, or NAME with --root DIR")
        out[name.strip()] = folder.strip() if sep else None
    if root is not None:
        bare = [c for c, f in out.items() if f is None]
        if len(bare) != 1:
            raise SerbenchError("--root: give exactly one --corpus NAME with it (or --corpus NAME=DIR each, or list "
                                "the corpora under [roots] in the experiment file)")
        out[bare[0]] = root
    return out


def _root_of(exp, corpus: str, given: dict[str, str | None]) -> str:
    folder = given.get(corpus) or exp.root_of(corpus)
    if folder is None:
        raise SerbenchError(f"--corpus {corpus}: give its folder (--corpus {corpus}=DIR, or --root DIR; the file's "
                            f"[roots] does not name {corpus})")
    return str(folder)


def _targets(exp, given: dict[str, str | None]) -> list[tuple[str, str]]:
    """(corpus, root) pairs of the in-corpus runs: the --corpus given, else the file's [roots]."""
    names = list(given) or list(exp.roots)
    if not names:
        raise SerbenchError(f"{exp.path}: no corpus to run on; give --corpus NAME --root DIR (or a [roots] table in "
                            "the file)")
    return [(c, _root_of(exp, c, given)) for c in names]


def _cross_plan(exp, given: dict[str, str | None], *, cache, jobs: int, seed: int | None):
    """The plan of the file's [cross] matrix, its corpora found in --corpus NAME=DIR / --root / [roots]."""
    from serbench.features import CorpusHandle
    from serbench.systems.cross import plan_cross

    spec = exp.cross
    try:
        handles = [CorpusHandle.of(c, _root_of(exp, c, given), cache=cache, jobs=jobs) for c in spec.corpora]
    except SerbenchError as exc:
        raise SerbenchError(f"{exc}; the file's [cross] matrix needs every one of {', '.join(spec.corpora)} "
                            "(or --no-cross)") from None
    return plan_cross(handles, systems=spec.systems(), adapt=spec.adapt, emotions=spec.emotions,
                      seed=seed or 0, profile=exp.profile, diagonal=spec.diagonal)


@click.command("rerun")
@click.argument("run_ref", metavar="RUN")
@click.option("--root", default=None, type=click.Path(file_okay=False, path_type=str),
              help="The corpus folder, if it moved since the run (default: the one its record names).")
@threads_option
@jobs_option
@cache_option
@runs_option
def rerun_cmd(run_ref, root, threads, jobs, cache, runs) -> None:
    """Run a stored run again from its record alone, into a new run, and compare the predictions.

    RUN is a run folder or a run id in the store. SVM runs give bit-identical predictions; deep
    runs on the CPU with the same --threads give identical ones (otherwise the largest difference is
    printed).
    """
    from serbench.systems.rerun import rerun

    report = rerun(run_ref, runs=runs, root=root, cache=cache, jobs=jobs, threads=threads, log=click.echo)
    click.echo(report.summary())
    if not report.identical_labels:
        raise SystemExit(1)


COMMANDS = [run_cmd, rerun_cmd]
