"""``serbench train`` (fit a system on a whole corpus into a model bundle) and ``serbench predict``."""
from __future__ import annotations

import click

from serbench.cli.common import cache_option, emotions_option, runs_option, split_list
from serbench.cli.run_options import (
    SystemChoice, SystemsCommand, device_option, jobs_option, parse_sets, profile_option, protocol_option,
    seed_option, sets_option, threads_option,
)
from serbench.errors import SerbenchError


def _overrides(system: str, feature: str | None, segments: int | None, speaker_norm: bool,
               class_weight: str | None, pretrained: str | None, epochs: int | None, sets: tuple[str, ...]) -> dict:
    """The command's options as settings of ``system``; an option the system has no use for is an error."""
    from serbench.systems import registry

    target = registry.get(system)
    fields = target.settings_class.fields()
    out = parse_sets(sets)
    for flag, key, value in (("--feature", "feature", feature), ("--segments", "segments", segments),
                             ("--class-weight", "class_weight", class_weight), ("--pretrained", "pretrained", pretrained)):
        if value is None:
            continue
        if key not in fields:
            raise SerbenchError(f"{flag}: {system} has no such option (its settings: `serbench systems {system}`)")
        out[key] = value
    if speaker_norm:
        out["speaker_norm"] = True
    if epochs is not None:
        from serbench.cli.deep import epoch_overrides

        if target.kind != "deep":
            raise SerbenchError(f"--epochs: {system} is not trained in epochs")
        out.update(epoch_overrides(system, epochs, None, None))
    return out


@click.command("train", cls=SystemsCommand, systems_kind=None)
@click.option("--corpus", required=True, help="Corpus name (see `serbench corpora`).")
@click.option("--root", required=True, type=click.Path(file_okay=False, path_type=str),
              help="The corpus folder, laid out as its official release.")
@click.option("--system", "system", type=SystemChoice(None), default=None, help="The system to train (below).")
@click.option("--from-run", "from_run", default=None, metavar="best|RUN_ID",
              help="Train the system and settings of a benchmark run in --runs instead: 'best' (highest UA of the "
                   "corpus) or a run id.")
@click.option("--out", required=True, type=click.Path(path_type=str),
              help="Folder of the model bundle (new or empty; an existing bundle needs --overwrite).")
@click.option("--feature", default=None, help="SVMs: the functional feature set (IS10, IS09, MFCC, ...).")
@click.option("--segments", "-n", type=int, default=None, help="cnn-sru, cnn, sru: segments per utterance N.")
@profile_option
@click.option("--speaker-norm", is_flag=True,
              help="Z-score each speaker with its own statistics (predicting then needs each input's speaker).")
@click.option("--class-weight", type=click.Choice(["none", "balanced"]), default=None, help="SVMs only.")
@click.option("--pretrained", type=click.Path(dir_okay=False), default=None,
              help="Local torchvision-named AlexNet state dict (cnn-sru, cnn, dcnn-blstm-att); its weights go into "
                   "the bundle.")
@click.option("--epochs", type=int, default=None, help="Shorthand: every epoch setting of a deep system.")
@sets_option
@protocol_option
@seed_option
@emotions_option
@cache_option
@runs_option
@jobs_option
@threads_option
@device_option
@click.option("--overwrite", is_flag=True, help="Replace the model bundle already in --out.")
def train_cmd(corpus, root, system, from_run, out, feature, segments, profile, speaker_norm, class_weight, pretrained,
              epochs, sets, protocol, seed, emotions, cache, runs, jobs, threads, device, overwrite) -> None:
    """Fit a system on ALL speakers of a corpus (hyper-parameters by the benchmark's speaker-grouped inner CV)
    and write a model bundle for `serbench predict`."""
    from serbench.bundles.training import run_recipe, train

    say = (lambda m: click.echo(f"  {m}", err=True))
    if from_run is not None:
        given = [flag for flag, v in (("--system", system), ("--feature", feature), ("--segments", segments),
                                      ("--speaker-norm", speaker_norm or None), ("--class-weight", class_weight),
                                      ("--pretrained", pretrained), ("--epochs", epochs), ("--set", sets or None),
                                      ("--emotions", emotions)) if v is not None]
        if given:
            raise SerbenchError(f"--from-run takes the system and its settings from the run; leave out "
                                f"{', '.join(given)}")
        recipe = run_recipe(corpus, from_run, runs)
        say(f"run {recipe['run_id']}: {recipe['system']} (UA {100 * recipe['ua']:.1f}%)")
        system, profile, overrides = recipe["system"], recipe["profile"], recipe["overrides"]
        emotions_list, seed = recipe["emotions"], recipe["seed"]
    elif system is None:
        raise SerbenchError("give --system NAME (and its options), or --from-run best|RUN_ID")
    else:
        overrides = _overrides(system, feature, segments, speaker_norm, class_weight, pretrained, epochs, sets)
        emotions_list = split_list(emotions)
    model = train(system, corpus, root, out, profile=profile, overrides=overrides, emotions=emotions_list,
                  seed=seed, protocol=protocol, cache=cache, jobs=jobs, device=device, threads=threads, runs=runs,
                  overwrite=overwrite, log=say)
    rec = model.record
    click.echo(f"{model.name} trained on {rec['training']['n_utterances']} utterances of {corpus} "
               f"({rec['training']['n_speakers']} speakers): {', '.join(model.labels)}")
    run = rec.get("benchmark_run")
    if run and run.get("ua") is not None:
        click.echo(f"  its benchmark run {run['run_id']} ({run['protocol']}): WA {100 * run['wa']:.1f}%  "
                   f"UA {100 * run['ua']:.1f}% on unseen speakers")
    else:
        click.echo(f"  no benchmark run of these settings on this data in the results store; run `serbench "
                   f"{'baseline' if model.system.kind == 'baseline' else 'deep'}` with the same options to "
                   "measure it")
    click.echo(f"model: {out}")


def _speakers(speaker: str | None, folder_level: int | None):
    if speaker and folder_level:
        raise SerbenchError("--speaker and --speaker-folder: give one of them")
    if folder_level:
        def from_folder(path):
            parents = path.resolve().parents
            if folder_level > len(parents) - 1:
                raise SerbenchError(f"--speaker-folder {folder_level}: {path} has fewer folders above it")
            return parents[folder_level - 1].name
        return from_folder
    return speaker


def _print_table(df, prefix_cols: list[str]) -> None:
    view = df.drop(columns=[c for c in ("error",) if c in df.columns and not df[c].astype(bool).any()])
    with_pd_options = {c: (lambda v: "" if v != v else f"{v:.3f}") for c in prefix_cols}
    with_pd_options.update({c: (lambda v: "" if v != v else f"{v:.2f}") for c in ("start_s", "end_s")})
    click.echo(view.to_string(index=False, formatters=with_pd_options, na_rep=""))


@click.command("predict")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--model", "model_dir", required=True, type=click.Path(path_type=str),
              help="A model bundle folder written by `serbench train`.")
@click.option("--corpus", default=None, help="Predict every utterance of this corpus (with --root).")
@click.option("--root", default=None, type=click.Path(file_okay=False, path_type=str), help="The corpus folder.")
@emotions_option
@click.option("--speaker", default=None, metavar="NAME",
              help="The speaker of all the inputs (per-speaker normalized bundles need the speakers).")
@click.option("--speaker-folder", "speaker_folder", type=click.IntRange(min=1), default=None, metavar="N",
              help="Each file's speaker is the name of the N-th folder above it (1: its own folder, 2: the one "
                   "above, as in SPEAKER/EMOTION/file.wav).")
@click.option("--window", type=float, default=None, metavar="S",
              help="One row per window of S seconds (plus a summary row per file).")
@click.option("--hop", type=float, default=None, metavar="S", help="Step between windows (default: --window).")
@click.option("--out", default=None, type=click.Path(dir_okay=False, path_type=str),
              help="Write the table here (format from the suffix: .csv, .parquet, .json); default: print it.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json"]), default=None)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads of the model (torch).")
@click.option("--batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="Inputs scored per call of the model.")
def predict_cmd(paths, model_dir, corpus, root, emotions, speaker, speaker_folder, window, hop, out, fmt, device,
                threads, batch) -> None:
    """Label audio files, folders or a corpus with a model bundle: emotion and every class's score per file.

    Exit status 1 when an input could not be predicted (each is listed with the reason)."""
    from serbench.bundles.inference import write_table
    from serbench.bundles.model import load_model

    if (corpus is None) != (root is None):
        raise SerbenchError("--corpus and --root go together: give both to predict a corpus, or neither")
    if not paths and corpus is None:
        raise SerbenchError("nothing to predict: give audio files or folders, or --corpus C --root DIR")
    _speakers(speaker, speaker_folder)                 # option errors before the model loads
    model = load_model(model_dir, device=device)
    if corpus is not None:
        from serbench.corpora import scan

        if paths:
            raise SerbenchError("give files/folders or --corpus/--root, not both")
        inputs = scan(corpus, root, emotions=split_list(emotions)).manifest
    else:
        inputs = list(paths)
    df = model.predict(inputs, speakers=_speakers(speaker, speaker_folder), window=window, hop=hop,
                       threads=threads, batch=batch, progress=True)
    scores = [c for c in df.columns if c.startswith(model.score_prefix)]
    note = ("probabilities" if model.score_kind == "probability"
            else "SVM one-vs-rest decision scores (larger = more likely; not probabilities)")
    click.echo(f"{model.name}: {note}" + (f"; summary rows: {df.attrs['summary']}" if window else ""), err=True)
    if out:
        written = write_table(df, out, fmt)
        click.echo(f"{len(df)} row(s) written to {written}", err=True)
    else:
        _print_table(df, scores)
    for p in df.attrs.get("passed_over") or []:
        click.echo(f"passed over (not an audio file): {p}", err=True)
    failed = df[df["status"] == "failed"]
    files = df[df["segment"] != "window"]
    click.echo(f"{len(files)} input(s): {int((files['status'] == 'ok').sum())} predicted, "
               f"{int((files['status'] == 'failed').sum())} failed", err=True)
    for _, row in failed.iterrows():
        where = f" [{row['start_s']:.2f}-{row['end_s']:.2f} s]" if row["segment"] == "window" else ""
        click.echo(f"failed: {row['file']}{where}: {row['error']}", err=True)
    if len(failed):
        raise SystemExit(1)


COMMANDS = [train_cmd, predict_cmd]
