"""`serbench baseline | runs`: SVM baselines under a speaker-independent protocol, and the results store."""
from __future__ import annotations

import math

import click

from serbench.cli.models import model_dir_option
from serbench.cli.common import corpus_option, emotions_option, root_option, runs_option, split_list
from serbench.cli.run_options import (
    SystemChoice, SystemsCommand, executor_options, flag_overrides, print_result, protocol_option, resume_option,
    seed_option, sets_option, setting_options,
)


@click.command("baseline", cls=SystemsCommand, systems_kind="baseline")
@corpus_option
@root_option
@click.option("--classifier", type=SystemChoice("baseline"), default="svm-linear", show_default=True)
@setting_options("baseline", required=("feature",))
@protocol_option
@seed_option
@executor_options
@sets_option
@resume_option
@emotions_option
@model_dir_option
def baseline_cmd(corpus: str, root: str, classifier: str, protocol: str | None, seed: int, jobs: int,
                 threads: int | None, workers: int | None, scheduler: str | None, sets: tuple[str, ...], resume: bool,
                 cache: str | None, runs: str | None, emotions: str | None, **settings: object) -> None:
    """Run an SVM baseline (standardize + SVM) under leave-one-speaker-out; print WA and UA.

    The corpus root must be readable where features are extracted (this machine); fold tasks on
    --workers or --scheduler receive the feature matrix from here.
    """
    from serbench.systems.run import run_system

    overrides = flag_overrides(classifier, settings, sets)
    res = run_system(classifier, corpus, root, overrides=overrides, kind="baseline", protocol=protocol, seed=seed,
                     cache=cache, runs=runs, jobs=jobs, threads=threads, workers=workers, scheduler=scheduler,
                     emotions=split_list(emotions), resume=resume, log=lambda m: click.echo(f"  {m}", err=True))
    print_result(res)


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


@click.command("runs")
@click.option("--corpus", default=None, help="Only this corpus' runs.")
@click.option("--clean", is_flag=True, help="Remove abandoned partial runs (no process holds their lock).")
@runs_option
def runs_cmd(corpus: str | None, clean: bool, runs: str | None) -> None:
    """List the runs in the results store (WA/UA recomputed from their predictions).

    Each run's identity is the hash of its system and resolved settings (with the feature set, protocol,
    emotions and seed): runs under one name with different identities are different experiments. The last
    column names what a run changed from its profile's defaults; '(legacy)' marks records written before
    identities, identified from their settings.
    """
    import pandas as pd

    from serbench.experiments.store import RunStore

    store = RunStore(runs)
    if clean:
        removed = store.clean_partials(corpus)
        click.echo(f"removed {len(removed)} abandoned partial run(s)" + "".join(f"\n  {p}" for p in removed))
    df = store.list_runs(corpus)
    if df.empty:
        click.echo(f"no runs under {store.root}" + (f" for {corpus}" if corpus else ""))
        return
    # Plain aligned text, not a rich table: run ids and system names must never be truncated.
    out = pd.DataFrame({
        "corpus": df["corpus"], "system": df["system"], "run_id": df["run_id"],
        "status": [f"{s} ({n})" if s in ("invalid", "running") and n else s for s, n in zip(df["status"], df["note"])],
        "WA": [_pct(v) for v in df["wa"]], "UA": [_pct(v) for v in df["ua"]],
        "spk-norm": [{True: "ON", False: "off"}.get(v, "-") if isinstance(v, bool) else "-"
                     for v in df["speaker_norm"]],
        "folds": ["-" if pd.isna(v) else str(int(v)) for v in df["n_folds"]],
        "finished": [v if isinstance(v, str) else "-" for v in df["finished"]],
    })
    idents = [_identity(p, name) for p, name in zip(df["path"], df["system"])]
    out.insert(3, "identity", [i[0] for i in idents])
    out["settings (vs its profile's defaults)"] = [i[1] for i in idents]
    click.echo(f"runs under {store.root} (WA/UA recomputed from predictions; partial runs have none):")
    click.echo(out.to_string(index=False))


def _identity(path: str, name: str) -> tuple[str, str]:
    """A run's identity hash and what differs from its profile (``-`` when its record is unreadable)."""
    import json
    from pathlib import Path

    from serbench.errors import SerbenchError
    from serbench.systems.identity import run_summary

    try:
        record = json.loads((Path(path) / "run.json").read_text(encoding="utf-8"))
        return run_summary(record.get("config") or {}, str(name))
    except (OSError, ValueError, AttributeError, SerbenchError):
        return "-", "-"


COMMANDS = [baseline_cmd, runs_cmd]
