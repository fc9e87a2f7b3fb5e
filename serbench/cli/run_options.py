"""Options and output shared by the commands that run systems (baseline, deep, grid).

Imports stay light: the registry is read when a choice or the help is shown, and the
library that runs a system is imported inside the command.
"""
from __future__ import annotations

import math
from typing import Any

import click

from serbench.errors import SerbenchError


class SystemChoice(click.Choice):
    """``--model`` / ``--classifier``: the registered systems of one kind, read when they are needed."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.case_sensitive = True

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        from serbench.systems import registry

        return tuple(registry.names(kind=self.kind))


class SystemsCommand(click.Command):
    """A command whose help ends with the registered systems of ``kind`` and one line on each."""

    def __init__(self, *args: Any, systems_kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.systems_kind = systems_kind

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from serbench.systems import registry

        rows = [(s.name, s.summary) for s in registry.all_systems(kind=self.systems_kind)]
        with formatter.section("Systems"):
            formatter.write_dl(rows)
        super().format_epilog(ctx, formatter)


def positive(name: str):
    """A click callback refusing 0 and negative counts with a message naming the option."""
    def check(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise click.BadParameter(f"{value} is not a positive number", param_hint=name)
        return value
    return check


workers_option = click.option(
    "--workers", type=int, default=None, callback=positive("--workers"),
    help="Run folds in N local worker processes (default: in this process).")
scheduler_option = click.option(
    "--scheduler", default=None, metavar="ADDRESS",
    help="Run folds on a Dask cluster: tcp://HOST:PORT, or local:N for a local cluster of N workers "
         "(default: $SERBENCH_SCHEDULER). Workers receive the data from this process: they need no shared disk.")
threads_option = click.option(
    "--threads", type=int, default=None, callback=positive("--threads"),
    help="CPU threads of each fold task (torch intra-op threads; the SVM's inner grid jobs).")
sets_option = click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE",
    help="Override a setting of the system, e.g. --set cnn_lr=0.001 (repeatable; `serbench systems NAME` "
         "lists them).")
resume_option = click.option(
    "--resume/--no-resume", default=True, show_default=True,
    help="Continue an interrupted run of the same configuration, keeping its finished folds.")
seed_option = click.option("--seed", type=int, default=0, show_default=True)
jobs_option = click.option(
    "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
    help="Worker processes for feature extraction (what the cache lacks; --workers/--scheduler, when given, "
         "extract too).")
profile_option = click.option(
    "--profile", type=click.Choice(["paper", "fast", "tiny"]), default="fast", show_default=True,
    help="Deep systems' settings: paper (the paper's, GPU), fast (2-core CPU), tiny (seconds, for demos); "
         "the SVMs have one recipe.")
device_option = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
    help="Where deep folds train (auto: cuda when the worker has one). On a Dask cluster, cuda folds need "
         "workers started with --resources GPU=1.")
protocol_option = click.option(
    "--protocol", type=click.Choice(["loso", "loso-session"]), default=None,
    help="Outer protocol (default: loso; loso-session for iemocap).")


def parse_sets(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["key=value", ...]`` (``--set``) -> dict; a malformed item names itself."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SerbenchError(f"--set {item!r}: expected key=value, e.g. --set cnn_epochs=20")
        out[key.strip()] = value
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _sd(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def print_result(res: Any, echo=click.echo) -> None:
    """The human summary of a run: what ran, per-fold WA/UA, pooled and mean +- sd, recall, notes."""
    rec, m = res.record, res.metrics
    cfg = rec.get("config") or {}
    norm = ("speaker normalization ON (each speaker z-scored with its own statistics)" if cfg.get("speaker_norm")
            else "speaker normalization off (as the paper)")
    echo(f"{res.system} on {res.corpus}: {len(m['folds'])} folds ({cfg.get('protocol')}), "
         f"{len(res.predictions)} test utterances; {norm}")
    if cfg.get("note"):
        echo(f"  {cfg['note']}")
    excluded = rec.get("excluded") or {}
    if isinstance(excluded, dict) and excluded.get("n"):
        by = ", ".join(f"{k}: {v}" for k, v in (excluded.get("by_status") or {}).items())
        echo(f"  excluded utterances: {excluded['n']} of {excluded.get('n_rows')} ({by}); listed in run.json")
    if res.resumed_folds:
        echo(f"  resumed: folds {', '.join(res.resumed_folds)} were taken from an interrupted run")
    width = max([4] + [len(f["fold"]) for f in rec["folds"]])
    echo(f"  {'fold':<{width}}  n_test     WA     UA  details")
    for f in rec["folds"]:
        params = ", ".join(f"{k.split('__')[-1]}={v}" for k, v in (f.get("best_params") or {}).items())
        echo(f"  {f['fold']:<{width}}  {f['n_test']:>6}  {_pct(f['wa']):>6} {_pct(f['ua']):>6}  {params}")
    echo(f"  pooled:      WA {_pct(m['wa'])}   UA {_pct(m['ua'])}")
    echo(f"  over folds:  WA {_pct(m['wa_mean'])} +- {_sd(m['wa_sd'])}   UA {_pct(m['ua_mean'])} +- {_sd(m['ua_sd'])}")
    echo("  recall per class: " + ", ".join(f"{k} {_pct(v)}" for k, v in m["per_class_recall"].items()))
    t = rec.get("timings") or {}
    rate = t.get("cnn_train_segments_per_s") or t.get("train_utterances_per_s")
    echo(f"  time: {t.get('total_s', 0):.1f} s of folds and loading, mean fold {t.get('fold_wall_s_mean') or 0:.1f} s"
         + (f", training {rate:.1f}/s" if rate else "") + (f"; {t['executor']}" if t.get("executor") else ""))
    for w in rec.get("warnings") or []:
        echo(f"  WARNING: {w}")
    collapsed = t.get("cnn_collapsed_folds")
    if collapsed:
        echo(f"  WARNING: the CNN never left chance loss in fold(s) {', '.join(collapsed)}: those folds predict "
             "(nearly) one class; lower cnn_lr (--set cnn_lr=...) and re-run with --no-resume")
    echo(f"run: {res.path}")


__all__ = ["SystemChoice", "SystemsCommand", "workers_option", "scheduler_option", "threads_option", "sets_option",
           "resume_option", "seed_option", "protocol_option", "jobs_option", "profile_option", "device_option", "parse_sets", "print_result", "positive"]
