"""``serbench deep``: train and evaluate CNN+SRU (or an ablation) under LOSO into the results store."""
from __future__ import annotations

import math

import click

from serbench.cli.common import cache_option, corpus_option, emotions_option, root_option, runs_option, split_list
from serbench.deep.models import MODELS
from serbench.deep.profiles import PROFILES, parse_sets
from serbench.deep.systems import SYSTEMS
from serbench.experiments.protocol import PROTOCOLS


def _pct(mean: float, sd: float | None) -> str:
    if sd is None or (isinstance(sd, float) and math.isnan(sd)):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} +- {100 * sd:.1f}"


@click.command("deep")
@corpus_option
@root_option
@click.option("--segments", "-n", type=int, default=None,
              help="Segments per utterance N (the paper: 1..5); required for cnn-sru, cnn and sru. The systems "
                   "crnn, crnn-ctc, crnn-mk and dcnn-blstm-att read whole utterances and ignore it.")
@click.option("--model", type=click.Choice(MODELS + SYSTEMS), default="cnn-sru", show_default=True,
              help="cnn-sru (the paper), the ablations cnn / sru, or the other seed-paper systems crnn, "
                   "crnn-ctc (Zhu et al.), crnn-mk (Meyer et al.), dcnn-blstm-att (Zhang et al.).")
@click.option("--protocol", type=click.Choice(list(PROTOCOLS)), default=None,
              help="Outer protocol (default: loso; loso-session for iemocap).")
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default="fast", show_default=True,
              help="paper: the paper's settings (GPU); fast: 2-core CPU; tiny: seconds, for demos.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--pretrained", type=click.Path(dir_okay=False), default=None,
              help="Local torchvision-named AlexNet state dict (ImageNet); without it the CNN trains from scratch.")
@click.option("--speaker-norm", is_flag=True,
              help="Z-score each speaker's log-mel with its own statistics (label-free; off in the paper). "
                   "The system name gets -spknorm.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=int, default=None,
              help="Shorthand: set both cnn_epochs and sru_epochs (the systems: their epochs setting).")
@click.option("--cnn-epochs", type=int, default=None)
@click.option("--sru-epochs", type=int, default=None)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any profile setting, e.g. --set image_size=112 --set sru_hidden=1024 (repeatable); "
                   "the systems' settings are in serbench/deep/systems/settings.py, e.g. --set mk_multi_kernel=false.")
@emotions_option
@cache_option
@runs_option
@click.option("--jobs", type=int, default=1, show_default=True, help="Processes for feature extraction.")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--no-resume", is_flag=True, help="Start a new run even if a matching partial run exists.")
def deep_cmd(corpus, root, segments, model, protocol, profile, device, pretrained, speaker_norm, seed, epochs, cnn_epochs, sru_epochs,
             sets, emotions, cache, runs, jobs, threads, no_resume) -> None:
    """Train and evaluate a deep system under leave-one-speaker-out; write it to the results store."""
    import torch

    from serbench.deep.run import run_deep

    overrides = parse_sets(sets)
    if model in SYSTEMS and (cnn_epochs is not None or sru_epochs is not None):
        raise click.UsageError(f"--cnn-epochs/--sru-epochs are CNN+SRU settings; {model} has one: use --epochs")
    if epochs is not None and model in SYSTEMS:
        overrides["epochs"] = epochs
    elif epochs is not None:
        overrides.update(cnn_epochs=epochs, sru_epochs=epochs)
    if cnn_epochs is not None:
        overrides["cnn_epochs"] = cnn_epochs
    if sru_epochs is not None:
        overrides["sru_epochs"] = sru_epochs
    if threads:
        torch.set_num_threads(threads)
    res = run_deep(corpus, root, segments=segments, model=model, profile=profile, device=device,
                   pretrained=pretrained, seed=seed, cache=cache, runs=runs, overrides=overrides, jobs=jobs,
                   emotions=split_list(emotions), resume=not no_resume, log=click.echo, protocol=protocol,
                   speaker_norm=speaker_norm)
    s = res.summary
    click.echo(f"{res.system} on {corpus} ({len(s['folds'])} folds, {len(res.predictions)} utterances):")
    click.echo(f"  WA {100 * s['wa']:.1f}  UA {100 * s['ua']:.1f}  (pooled)")
    click.echo(f"  WA {_pct(s['wa_mean'], s['wa_sd'])}  UA {_pct(s['ua_mean'], s['ua_sd'])}  (mean +- sd over folds)")
    if model in SYSTEMS:
        for key, value in res.config.get("system_details", {}).items():
            if key in ("encoder", "variant", "decode"):
                click.echo(f"  {key}: {value}")
    elif model != "sru":
        click.echo("  CNN: trained from scratch (no --pretrained weights)" if res.pretrained == "from scratch"
                   else f"  CNN: fine-tuned from {res.pretrained}")
    rate = res.timings.get("cnn_train_segments_per_s")
    click.echo(f"  mean fold wall time {res.timings['fold_wall_s_mean']:.0f} s"
               + (f", CNN training {rate:.1f} segments/s" if rate else "") + f" on {res.timings['device']}")
    collapsed = res.timings.get("cnn_collapsed_folds")
    if collapsed:
        click.echo(f"  WARNING: the CNN never left chance loss in fold(s) {', '.join(collapsed)}: those folds "
                   "predict (nearly) one class; lower cnn_lr (--set cnn_lr=...) and re-run with --no-resume")
    click.echo(f"run: {res.run_dir}")


COMMANDS = [deep_cmd]
