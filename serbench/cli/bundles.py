"""``serbench train`` (fit a system on a whole corpus into a model bundle) and ``serbench predict``."""
from __future__ import annotations

import click

from serbench.cli.common import cache_option, emotions_option, runs_option, split_list
from serbench.cli.run_options import (
    SystemChoice, SystemsCommand, device_option, epoch_overrides, epochs_option, flag_overrides, jobs_option,
    profile_option, protocol_option, seed_option, sets_option, setting_flags, setting_options, threads_option,
)
from serbench.errors import SerbenchError


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
@setting_options()
@profile_option
@epochs_option
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
def train_cmd(corpus, root, system, from_run, out, profile, epochs, sets, protocol, seed, emotions, cache, runs, jobs,
              threads, device, overwrite, **settings) -> None:
    """Fit a system on ALL speakers of a corpus (hyper-parameters by the benchmark's speaker-grouped inner CV)
    and write a model bundle for `serbench predict`."""
    from serbench.bundles.training import run_recipe, train
    from serbench.io import check_output_folder
    from serbench.settings import cache_root

    # The bundle never lands in (or over) the feature cache or the corpus it is trained from.
    check_output_folder(out, inside_inputs=[cache_root(cache), root])
    say = (lambda m: click.echo(f"  {m}", err=True))
    if from_run is not None:
        given = [flag for flag, v in (("--system", system), ("--epochs", epochs), ("--set", sets or None),
                                      ("--emotions", emotions)) if v is not None]
        given += [flag for flag, key, _t, _d in setting_flags() if settings.get(key) is not None]
        if given:
            raise SerbenchError(f"--from-run takes the system and its settings from the run; leave out "
                                f"{', '.join(given)}")
        recipe = run_recipe(corpus, from_run, runs)
        say(f"run {recipe['run_id']}: {recipe['name']} (UA {100 * recipe['ua']:.1f}%)")
        if recipe["speaker_norm"]:
            _say_speaker_norm(recipe, corpus, root, out, cache, runs)
        system, profile, overrides = recipe["system"], recipe["profile"], recipe["overrides"]
        emotions_list, seed = recipe["emotions"], recipe["seed"]
    elif system is None:
        raise SerbenchError("give --system NAME (and its options), or --from-run best|RUN_ID")
    else:
        overrides = flag_overrides(system, settings, sets)
        overrides.update(epoch_overrides(system, epochs))
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


def _say_speaker_norm(recipe: dict, corpus: str, root: str, out: str, cache: str | None, runs: str | None) -> None:
    """``train --from-run``: the run normalizes per speaker; say what that asks of every prediction, and offer
    the best run that does not."""
    import shlex

    from serbench.bundles.speaker_norm import MIN_SPEAKER_INPUTS

    click.echo(f"note: run {recipe['run_id']} ({recipe['name']}) normalizes per speaker: every prediction will need "
               f"at least {MIN_SPEAKER_INPUTS} recordings of each input's speaker (--speaker/--speaker-folder), and "
               "its emotion depends on which of them are given together", err=True)
    other = recipe.get("without_speaker_norm")
    if other is None:
        click.echo("  no complete run without speaker normalization in the store for this corpus", err=True)
        return
    argv = ["serbench", "train", "--corpus", corpus, "--root", root, "--from-run", other["run_id"],
            "--out", f"{out.rstrip('/')}-nospknorm"]
    argv += [x for flag, v in (("--cache", cache), ("--runs", runs)) if v for x in (flag, v)]
    click.echo(f"  the best run without it: {other['run_id']} ({other['name']}, UA {100 * other['ua']:.1f}%); "
               f"to train that one instead:\n    {shlex.join(argv)}", err=True)


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
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json"]), default=None,
              help="Optional; must agree with the suffix of --out.")
@click.option("--overwrite", is_flag=True, help="Replace the file --out if it exists.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads of the model (torch).")
@click.option("--batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="Inputs scored per call of the model.")
@click.option("--scores", "score_kind", type=click.Choice(["probability", "decision"]), default=None,
              help="probability (default): prob_<label> columns that sum to 1; decision: an SVM's raw one-vs-rest "
                   "decision values as score_<label> (not probabilities).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Decode and extract the inputs in N local worker processes (default: in this process).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="The same as --jobs.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Extract on a Dask cluster (tcp://HOST:PORT, or local:N; default $SERBENCH_SCHEDULER unless "
                   "--jobs/--workers is given). Workers read the audio at the same paths.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def predict_cmd(paths, model_dir, corpus, root, emotions, speaker, speaker_folder, window, hop, out, fmt, overwrite,
                device, threads, batch, score_kind, jobs, workers, scheduler, no_progress) -> None:
    """Label audio files, folders or a corpus with a model bundle: emotion and every class's score per file.

    With --out, rows are written as they are predicted, in input order. Exit status 1 when an input
    could not be predicted (each is listed with the reason)."""
    import os
    from pathlib import Path

    from serbench.bundles.model import check_bundle
    from serbench.bundles.options import check_output, check_window, output_format

    # Every option, input and the bundle itself are checked before anything heavy is imported (numpy,
    # pandas, scikit-learn, torch: seconds), so a mistyped command fails at once.
    if (corpus is None) != (root is None):
        raise SerbenchError("--corpus and --root go together: give both to predict a corpus, or neither")
    if not paths and corpus is None:
        raise SerbenchError("nothing to predict: give audio files or folders, or --corpus C --root DIR")
    if paths and corpus is not None:
        raise SerbenchError("give files/folders or --corpus/--root, not both")
    if jobs is not None and workers is not None and jobs != workers:
        raise SerbenchError(f"--jobs {jobs} and --workers {workers}: they are the same option; give one")
    local = jobs or workers
    if local is not None and scheduler:
        raise SerbenchError("give either --jobs/--workers N (local processes) or --scheduler ADDRESS (Dask), not both")
    if not Path(model_dir).expanduser().is_dir():
        raise SerbenchError(f"--model {model_dir}: no such folder; give a model bundle folder written by "
                            "`serbench train`")
    absent = [p for p in paths if not (Path(p).expanduser().exists() or Path(p).expanduser().is_symlink())]
    if absent:
        raise SerbenchError(f"{absent[0]}: no such file or folder" + (f" (and {len(absent) - 1} more input(s))"
                                                                     if len(absent) > 1 else "") + "; check the path")
    window, hop = check_window(window, hop)
    if out:
        fmt = output_format(out, fmt)
    speakers = _speakers(speaker, speaker_folder)
    source = "--scheduler"
    if scheduler is None and local is None and os.environ.get("SERBENCH_SCHEDULER"):
        scheduler, source = os.environ["SERBENCH_SCHEDULER"], "$SERBENCH_SCHEDULER"
    if scheduler:
        from serbench.executors.addresses import check_scheduler

        scheduler = check_scheduler(scheduler, source)
    if out and corpus is None:   # where the output may go is known from the arguments alone: before the bundle
        out, fmt = check_output(out, fmt, inputs=list(paths), model_dir=model_dir, overwrite=overwrite)
    checked = check_bundle(model_dir)

    from serbench.bundles.inference import Prediction, TableWriter, check_sources, collect
    from serbench.bundles.model import load_model

    if corpus is not None:
        from serbench.corpora import scan

        inputs = scan(corpus, root, emotions=split_list(emotions)).manifest
        input_files = inputs["path"].astype(str).tolist()
    else:
        inputs = input_files = list(paths)
    if out and corpus is not None:
        out, fmt = check_output(out, fmt, inputs=input_files, model_dir=model_dir, overwrite=overwrite)
    check_sources(collect(inputs, speakers)[0], window, hop, checked.feature_set_name)   # before the model loads
    model = load_model(checked, device=device)
    run = Prediction(model, inputs, speakers=speakers, window=window, hop=hop, threads=threads, batch=batch,
                     progress=not no_progress, scores=score_kind)
    executor = None
    if (local or 0) > 1 or scheduler:
        from serbench.executors import make_executor

        # One thread per worker: openSMILE and the log-mel front end are single-threaded per file.
        executor = make_executor(workers=local if not scheduler else None, scheduler=scheduler, threads=1,
                                 preload=("serbench.bundles.inference",))
        run.executor = executor
    counts = {"files": 0, "ok": 0, "failed": 0}
    failed: list = []
    frames: list = []

    def take(df) -> None:
        files = df[df["segment"] != "window"]
        counts["files"] += len(files)
        counts["ok"] += int((files["status"] == "ok").sum())
        counts["failed"] += int((files["status"] == "failed").sum())
        failed.extend(df[df["status"] == "failed"][["file", "segment", "start_s", "end_s", "error"]]
                      .itertuples(index=False))

    try:
        if out:
            with TableWriter(out, fmt, overwrite=overwrite) as table:
                for df in run.frames():
                    take(df)
                    table.write(df)
        else:
            for df in run.frames():
                take(df)
                frames.append(df)
    finally:
        if executor is not None:
            executor.close()
    attrs = run.attrs()
    click.echo(f"{model.name}: {attrs['scores_note']}" + (f"; summary rows: {attrs['summary']}" if window else ""),
               err=True)
    if out:
        click.echo(f"{table.rows} row(s) written to {out}", err=True)
    else:
        import pandas as pd

        df = pd.concat(frames, ignore_index=True)
        _print_table(df, [c for c in df.columns if c.startswith(("prob_", "score_", "share_"))])
    for p in attrs.get("passed_over") or []:
        click.echo(f"passed over (not an audio file): {p}", err=True)
    for w in attrs.get("warnings") or []:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"{counts['files']} input(s): {counts['ok']} predicted, {counts['failed']} failed", err=True)
    for row in failed:
        where = f" [{row.start_s:.2f}-{row.end_s:.2f} s]" if row.segment == "window" else ""
        click.echo(f"failed: {row.file}{where}: {row.error}", err=True)
    if failed:
        raise SystemExit(1)


COMMANDS = [train_cmd, predict_cmd]
