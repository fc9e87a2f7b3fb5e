"""`serbench grid`: run the paper's systems that the store lacks (what `make tables` does)."""
from __future__ import annotations

import click

from serbench.cli.common import cache_option, corpus_option, emotions_option, root_option, runs_option, split_list
from serbench.cli.run_options import (
    device_option, jobs_option, profile_option, scheduler_option, seed_option, threads_option, workers_option,
)
from serbench.errors import SerbenchError


@click.command("grid")
@corpus_option
@root_option
@click.option("--features", default="PLP,MFCC,HuWSF,IS09,IS10", show_default=True, help="Baseline feature sets.")
@click.option("--classifiers", default="svm-linear", show_default=True,
              help="Baseline systems (registered baselines, comma-separated).")
@click.option("--speaker-norm", "norm", type=click.Choice(["both", "off", "on"]), default="both", show_default=True,
              help="Per-speaker normalization variants of the baselines (off = the paper's protocol).")
@click.option("--deep-speaker-norm", "deep_norm", type=click.Choice(["off", "on", "both"]), default="off",
              show_default=True,
              help="Per-speaker normalized log-mel for the deep systems too (on/both add -spknorm runs; "
                   "off = the paper's protocol).")
@click.option("--baselines/--no-baselines", default=True, show_default=True)
@click.option("--deep/--no-deep", default=True, show_default=True, help="CNN+SRU and its ablations.")
@click.option("--segments", default="1,2,3,4,5", show_default=True, help="N values for the deep systems.")
@click.option("--models", default=None, help="Deep models of the paper's tables (default: cnn-sru,cnn,sru).")
@click.option("--systems", default="", show_default=True,
              help="Other registered deep systems for the systems table (comma-separated, or all).")
@profile_option
@device_option
@click.option("--pretrained", default=None, type=click.Path(dir_okay=False, exists=True),
              help="torchvision-named AlexNet state dict for the CNN (else trained from scratch).")
@seed_option
@jobs_option
@threads_option
@workers_option
@scheduler_option
@click.option("--force", is_flag=True, help="Run every system even if the store has it.")
@emotions_option
@cache_option
@runs_option
def grid_cmd(corpus, root, features, classifiers, norm, deep_norm, baselines, deep, segments, models, systems, profile,
             device, pretrained, seed, jobs, threads, workers, scheduler, force, emotions, cache, runs) -> None:
    """Run the systems of the paper's tables that the results store lacks (all at once on --workers / --scheduler)."""
    from serbench.systems.grid import other_systems, paper_grid, run_grid

    try:
        segs = [int(s) for s in split_list(segments) or []]
    except ValueError:
        raise SerbenchError(f"--segments {segments!r}: give integers 1..5 separated by commas") from None
    variants = {"both": (False, True), "off": (False,), "on": (True,)}
    items = paper_grid(baselines=baselines, features=split_list(features) or [],
                       classifiers=split_list(classifiers) or [], speaker_norm=variants[norm],
                       deep_speaker_norm=variants[deep_norm], deep=deep, segments=segs,
                       deep_models=split_list(models) if models else None, profile=profile,
                       systems=other_systems() if systems.strip() == "all" else split_list(systems) or [])
    outcomes = run_grid(corpus, root, items, cache=cache, runs=runs, jobs=jobs, seed=seed,
                        emotions=split_list(emotions), profile=profile, device=device, pretrained=pretrained,
                        threads=threads, workers=workers, scheduler=scheduler, force=force, log=click.echo)
    failed = [o for o in outcomes if o.action == "failed"]
    ran = sum(o.action == "ran" for o in outcomes)
    click.echo(f"grid: {ran} run, {len(outcomes) - ran - len(failed)} already present, {len(failed)} failed")
    if failed:
        raise SerbenchError("failed systems: " + "; ".join(f"{o.system} ({o.detail})" for o in failed))


COMMANDS = [grid_cmd]
