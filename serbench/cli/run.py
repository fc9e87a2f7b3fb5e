"""`serbench run FILE` (an experiment file: run what the store lacks) and `serbench rerun RUN`."""
from __future__ import annotations

import click

from serbench.cli.common import cache_option, runs_option, split_list
from serbench.cli.run_options import (
    device_option, jobs_option, scheduler_option, threads_option, workers_option,
)
from serbench.errors import SerbenchError


@click.command("run")
@click.argument("experiment", metavar="FILE")
@click.option("--corpus", "corpora", multiple=True,
              help="Corpus to run it on (repeatable; default: the corpora under the file's [roots]).")
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
@device_option
@jobs_option
@threads_option
@workers_option
@scheduler_option
@cache_option
@runs_option
def run_cmd(experiment, corpora, root, only, dry_run, force, seed, pretrained, keep_going, device, jobs, threads,
            workers, scheduler, cache, runs) -> None:
    """Run an experiment file: every declared run the results store lacks, on the chosen executor.

    FILE is a TOML experiment file or the name of a shipped one (jiang2019, seed-papers, demo;
    see the recipes/ folder). A run is done when the store holds a complete run with the same
    identity (system, resolved settings, feature set, protocol, emotions, seed): change a setting
    in a copy of the file and exactly the runs it touches run again.
    """
    from serbench.systems.experiment import load_experiment, run_experiment, status_of, stored_identities

    exp = load_experiment(experiment)
    targets = _targets(exp, corpora, root)
    patterns = split_list(only)
    extra = {"pretrained": str(pretrained)} if pretrained else None
    if dry_run:
        for corpus, _root in targets:
            planned = exp.plan(corpus, only=patterns, seed=seed, extra=extra)
            stored = stored_identities(corpus, runs)
            click.echo(f"{exp.name} on {corpus}: {len(planned)} run(s)")
            width = max([4] + [len(p.name) for p in planned])
            for p in planned:
                given = ", ".join(f"{k}={_show(v)}" for k, v in p.overrides.items())
                click.echo(f"  {p.name:<{width}}  {p.hash}  {status_of(p, stored):<7}  seed {p.seed}"
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
        failed += [f"{corpus}/{o.run.name} ({o.detail})" for o in bad]
    if failed:
        raise SerbenchError("failed runs: " + "; ".join(failed))


def registry_kind(system: str) -> str:
    from serbench.systems import registry

    return registry.get(system).kind


def _show(value: object) -> str:
    from serbench.systems.identity import show_value

    return show_value(value)


def _targets(exp, corpora: tuple[str, ...], root: str | None) -> list[tuple[str, str]]:
    """(corpus, root) pairs to run on: --corpus/--root, else the file's [roots]."""
    if root is not None and len(corpora) != 1:
        raise SerbenchError("--root: give exactly one --corpus with it (or list the corpora under [roots] in "
                            "the experiment file)")
    if not corpora:
        if not exp.roots:
            raise SerbenchError(f"{exp.path}: no corpus to run on; give --corpus NAME --root DIR (or a [roots] "
                                "table in the file)")
        corpora = tuple(exp.roots)
    out = []
    for c in corpora:
        r = root if root is not None else exp.root_of(c)
        if r is None:
            raise SerbenchError(f"--corpus {c}: give --root DIR (the file's [roots] does not name {c})")
        out.append((c, str(r)))
    return out


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
