"""``serbench deep``: train and evaluate a deep system under a speaker-independent protocol."""
from __future__ import annotations

import click

from serbench.cli.common import cache_option, corpus_option, emotions_option, root_option, runs_option, split_list
from serbench.cli.run_options import (
    SystemChoice, SystemsCommand, device_option, jobs_option, parse_sets, print_result, profile_option,
    protocol_option, resume_option, scheduler_option, seed_option, sets_option, threads_option, workers_option,
)
from serbench.errors import SerbenchError


def epoch_overrides(model: str, epochs: int | None, cnn_epochs: int | None, sru_epochs: int | None) -> dict:
    """``--epochs`` / ``--cnn-epochs`` / ``--sru-epochs`` as settings of ``model``."""
    from serbench.systems import registry

    fields = registry.get(model, kind="deep").settings_class.fields()
    out: dict = {}
    if epochs is not None:
        keys = ["epochs"] if "epochs" in fields else [k for k in fields if k.endswith("_epochs")]
        out.update({k: epochs for k in keys})
    for key, value in (("cnn_epochs", cnn_epochs), ("sru_epochs", sru_epochs)):
        if value is not None:
            if key not in fields:
                raise SerbenchError(f"--{key.replace('_', '-')}: {model} has no such stage; use --epochs")
            out[key] = value
    return out


@click.command("deep", cls=SystemsCommand, systems_kind="deep")
@corpus_option
@root_option
@click.option("--model", type=SystemChoice("deep"), default="cnn-sru", show_default=True,
              help="The system to run (see Systems below).")
@click.option("--segments", "-n", type=int, default=None,
              help="Segments per utterance N (the paper: 1..5); required for cnn-sru, cnn and sru. Systems reading "
                   "whole utterances ignore it.")
@protocol_option
@profile_option
@device_option
@click.option("--pretrained", type=click.Path(dir_okay=False), default=None,
              help="Local torchvision-named AlexNet state dict (ImageNet); without it the CNN trains from scratch.")
@click.option("--speaker-norm", is_flag=True,
              help="Z-score each speaker's log-mel with its own statistics (label-free; off in the paper). "
                   "The system name gets -spknorm.")
@seed_option
@click.option("--epochs", type=int, default=None, help="Shorthand: every epoch setting of the model.")
@click.option("--cnn-epochs", type=int, default=None)
@click.option("--sru-epochs", type=int, default=None)
@sets_option
@emotions_option
@cache_option
@runs_option
@jobs_option
@threads_option
@workers_option
@scheduler_option
@resume_option
def deep_cmd(corpus, root, model, segments, protocol, profile, device, pretrained, speaker_norm, seed, epochs,
             cnn_epochs, sru_epochs, sets, emotions, cache, runs, jobs, threads, workers, scheduler, resume) -> None:
    """Train and evaluate a deep system under leave-one-speaker-out; write it to the results store."""
    from serbench.systems.run import run_deep

    overrides = parse_sets(sets)
    overrides.update(epoch_overrides(model, epochs, cnn_epochs, sru_epochs))
    res = run_deep(corpus, root, model=model, segments=segments, profile=profile, device=device,
                   pretrained=pretrained, speaker_norm=speaker_norm, seed=seed, cache=cache, runs=runs,
                   overrides=overrides, jobs=jobs, threads=threads, workers=workers, scheduler=scheduler,
                   emotions=split_list(emotions), resume=resume, protocol=protocol, log=click.echo)
    print_result(res)
    from serbench.reports.plots import write_curves

    curves = write_curves(res)
    if curves is not None:
        click.echo(f"  training curves (loss and UA by epoch, per fold): {curves}")


COMMANDS = [deep_cmd]
