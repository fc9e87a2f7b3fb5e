"""`serbench baseline | runs`: SVM baselines under LOSO and the results store."""
from __future__ import annotations

import math
import shlex
import sys

import click
import pandas as pd
from rich.table import Table

from serbench.baselines.run import NAN_POLICY, RunResult, run_baseline
from serbench.baselines.svm import CLASS_WEIGHTS, CLASSIFIERS
from serbench.cli.common import (
    cache_option,
    console,
    corpus_option,
    emotions_option,
    err_console,
    root_option,
    runs_option,
    split_list,
)
from serbench.experiments.protocol import PROTOCOLS
from serbench.experiments.store import RunStore


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _variant(speaker_norm: bool) -> str:
    if speaker_norm:
        return "[bold yellow]speaker normalization: ON[/bold yellow] (each speaker z-scored with its own statistics)"
    return "[bold]speaker normalization: OFF[/bold] (as the paper)"


def print_result(res: RunResult) -> None:
    """The human summary of a baseline run: variant, per-fold table, pooled and mean +- sd, recall."""
    rec, s = res.record, res.summary
    cfg = rec["config"]
    console.print(f"[bold]{res.system}[/bold] on {res.corpus}   {_variant(cfg['speaker_norm'])}")
    console.print(f"  protocol {cfg['protocol']}: {len(s['folds'])} folds; hyper-parameters by inner CV "
                  f"({cfg['inner_cv']}), scoring UA; class weights: {cfg['class_weight'] or 'none'}", soft_wrap=True)
    console.print(f"  NaN policy: {NAN_POLICY}", soft_wrap=True)
    console.print(f"  excluded rows: {res.n_excluded} of {res.n_rows}"
                  + (f" ({', '.join(f'{k}: {v}' for k, v in rec['excluded']['by_status'].items())})"
                     if res.n_excluded else ""))
    if res.resumed_folds:
        console.print(f"  resumed: folds {', '.join(res.resumed_folds)} were taken from an interrupted run")
    table = Table(show_header=True)
    for col, just in (("fold", "left"), ("n_test", "right"), ("WA", "right"), ("UA", "right"),
                      ("hyper-parameters", "left")):
        table.add_column(col, justify=just)
    for f in rec["folds"]:
        params = ", ".join(f"{k.split('__')[-1]}={v}" for k, v in (f.get("best_params") or {}).items())
        table.add_row(f["fold"], str(f["n_test"]), _pct(f["wa"]), _pct(f["ua"]), params)
    console.print(table)
    console.print(f"  pooled:      WA {_pct(s['wa'])}   UA {_pct(s['ua'])}")
    sd = (lambda v: "n/a" if v is None or math.isnan(v) else f"{100 * v:.1f}")
    console.print(f"  over folds:  WA {_pct(s['wa_mean'])} +- {sd(s['wa_sd'])}   "
                  f"UA {_pct(s['ua_mean'])} +- {sd(s['ua_sd'])}")
    console.print("  recall per class: " + ", ".join(f"{k} {_pct(v)}" for k, v in s["per_class_recall"].items()))
    t = rec["timings"]
    share = t.get("model_selection_share")
    console.print(f"  time: {t['total_s']:.1f} s ({t['model_selection_s']:.1f} s model selection"
                  + (f", {100 * share:.0f}%" if share is not None else "") + ")")
    console.print(f"  run written to {res.path}", soft_wrap=True)


@click.command("baseline")
@corpus_option
@root_option
@click.option("--feature", required=True, help="Feature set: PLP, MFCC, HuWSF, IS09, IS10, eGeMAPS, ComParE.")
@click.option("--classifier", type=click.Choice(CLASSIFIERS), default="svm-linear", show_default=True)
@click.option("--protocol", type=click.Choice(list(PROTOCOLS)), default=None,
              help="Outer protocol (default: loso; loso-session for iemocap).")
@click.option("--speaker-norm/--no-speaker-norm", default=False, show_default=True,
              help="Z-score each speaker's features with that speaker's own statistics (label-free).")
@click.option("--class-weight", type=click.Choice(CLASS_WEIGHTS), default="none", show_default=True,
              help="'balanced' weights classes by inverse frequency (not the paper's; the system name "
                   "gains -balanced).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Parallel jobs for extraction and the inner grid search.")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue an interrupted run of the same configuration, keeping its finished folds.")
@cache_option
@runs_option
@emotions_option
def baseline_cmd(corpus: str, root: str, feature: str, classifier: str, protocol: str | None, speaker_norm: bool,
                 class_weight: str, seed: int, jobs: int, resume: bool, cache: str | None, runs: str | None,
                 emotions: str | None) -> None:
    """Run an SVM baseline (standardize + SVM) under leave-one-speaker-out; print WA and UA."""
    console.print(_variant(speaker_norm))
    res = run_baseline(corpus, root, feature, classifier=classifier, protocol=protocol, seed=seed,
                       speaker_norm=speaker_norm, class_weight=class_weight, cache=cache, runs=runs, jobs=jobs,
                       emotions=split_list(emotions), resume=resume,
                       command=shlex.join(["serbench", *sys.argv[1:]]) if sys.argv[1:2] == ["baseline"] else None,
                       progress=lambda msg: err_console.print(f"  {msg}", soft_wrap=True))
    print_result(res)


@click.command("runs")
@click.option("--corpus", default=None, help="Only this corpus' runs.")
@runs_option
def runs_cmd(corpus: str | None, runs: str | None) -> None:
    """List the runs in the results store (WA/UA recomputed from their predictions)."""
    store = RunStore(runs)
    df = store.list_runs(corpus)
    if df.empty:
        console.print(f"no runs under {store.root}" + (f" for {corpus}" if corpus else ""))
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
    click.echo(f"runs under {store.root} (WA/UA recomputed from predictions; partial runs have none):")
    click.echo(out.to_string(index=False))


COMMANDS = [baseline_cmd, runs_cmd]
