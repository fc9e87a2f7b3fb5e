"""``serbench deep``: train and evaluate a deep system under a speaker-independent protocol."""
from __future__ import annotations

import click

from serbench.cli.models import model_dir_option
from serbench.cli.common import corpus_option, emotions_option, root_option, split_list
from serbench.cli.run_options import (
    SystemChoice, SystemsCommand, device_option, epoch_overrides, epochs_option, executor_options, flag_overrides,
    print_result, profile_option, protocol_option, resume_option, seed_option, sets_option, setting_options,
)


@click.command("deep", cls=SystemsCommand, systems_kind="deep")
@corpus_option
@root_option
@click.option("--model", type=SystemChoice("deep"), default="cnn-sru", show_default=True,
              help="The system to run (see Systems below).")
@setting_options("deep")
@protocol_option
@profile_option
@device_option
@seed_option
@epochs_option
@sets_option
@emotions_option
@executor_options
@resume_option
@model_dir_option
def deep_cmd(corpus, root, model, protocol, profile, device, seed, epochs, sets, emotions, cache, runs, jobs, threads,
             workers, scheduler, resume, **settings) -> None:
    """Train and evaluate a deep system under leave-one-speaker-out; write it to the results store."""
    from serbench.systems.run import run_system

    overrides = flag_overrides(model, settings, sets)
    overrides.update(epoch_overrides(model, epochs))
    res = run_system(model, corpus, root, profile=profile, overrides=overrides, kind="deep", device=device, seed=seed,
                     cache=cache, runs=runs, jobs=jobs, threads=threads, workers=workers, scheduler=scheduler,
                     emotions=split_list(emotions), resume=resume, protocol=protocol, log=click.echo)
    print_result(res)
    from serbench.reports.plots import write_curves

    curves = write_curves(res)
    if curves is not None:
        click.echo(f"  training curves (loss and UA by epoch, per fold): {curves}")


COMMANDS = [deep_cmd]
