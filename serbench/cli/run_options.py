"""Options and output shared by the commands that run systems (baseline, deep, grid).

Imports stay light: the registry is read when a choice or the help is shown, and the
library that runs a system is imported inside the command.
"""
from __future__ import annotations

import math
from typing import Any

import click

from serbench.cli.common import cache_option, runs_option
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
    "--profile", type=click.Choice(["paper", "fast", "tiny"]), default=None,
    help="Deep systems' settings: paper (the paper's, GPU), fast (2-core CPU; the default), tiny (seconds, for "
         "demos); the SVMs have one recipe.")
device_option = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
    help="Where deep folds train (auto: cuda when the worker has one). On a Dask cluster, cuda folds need "
         "workers started with --resources GPU=1.")


def executor_options(command):
    """``--jobs --threads --workers --scheduler --cache --runs``: where a command's work runs, what it reads and
    where it writes; declared once for every command that runs systems."""
    for option in reversed((jobs_option, threads_option, workers_option, scheduler_option, cache_option,
                            runs_option)):
        command = option(command)
    return command


protocol_option = click.option(
    "--protocol", type=click.Choice(["loso", "loso-session"]), default=None,
    help="Outer protocol (default: loso; loso-session for iemocap).")


# ---------------------------------------------------------------- options generated from the settings

def setting_flags(kind: str | None = None) -> list[tuple[str, str, object, str]]:
    """``(flag, key, click type, help)`` of every setting that declares a ``flag``, over the registered
    systems of ``kind`` (None: all), in a stable order: the one source of the systems' options."""
    import typing

    from serbench.systems import registry
    from serbench.systems.settings import Options, _base_type

    found: dict[str, tuple[str, str, object, str, list[str]]] = {}
    for system in registry.all_systems(kind=kind):
        cls = system.settings_class
        types = typing.get_type_hints(cls)
        for key, f in cls.fields().items():
            flag = f.metadata.get("flag")
            if not flag:
                continue
            if flag in found:
                found[flag][4].append(system.name)
                continue
            typ, _optional = _base_type(types[key])
            check = f.metadata.get("check")
            ctype: object = bool if typ is bool else (click.Choice([str(v) for v in check.values])
                                                      if isinstance(check, Options) else
                                                      {int: int, float: float}.get(typ, str))
            found[flag] = (flag, key, ctype, str(f.metadata.get("doc") or ""), [system.name])
    every = len(registry.names(kind=kind))
    return [(flag, key, ctype, f"{doc} ({', '.join(names)})" if len(names) < every else doc)
            for flag, key, ctype, doc, names in found.values()]


def setting_options(kind: str | None = None, *, required: tuple[str, ...] = ()):
    """Click options for the settings with a ``flag`` (see :func:`setting_flags`), each defaulting to None
    (the profile's value); the command passes its keyword arguments to :func:`flag_overrides`."""
    def decorate(fn):
        for flag, key, ctype, doc in reversed(setting_flags(kind)):
            if ctype is bool:
                fn = click.option(f"{flag}/--no-{flag[2:]}", key, default=None, help=doc)(fn)
            else:
                fn = click.option(flag, key, type=ctype, default=None, required=key in required, help=doc)(fn)
        fn.__serbench_setting_keys__ = tuple(key for _f, key, _t, _d in setting_flags(kind))
        return fn
    return decorate


def flag_overrides(system: str, values: dict, sets: tuple[str, ...] | list[str] = ()) -> dict:
    """``--set`` items and the generated setting options given (not None) as settings of ``system``.

    An option the system has no such setting for is an error naming it; a setting given both as an
    option and with ``--set`` must agree.
    """
    from serbench.systems import registry

    target = registry.get(system)
    fields = target.settings_class.fields()
    out = parse_sets(sets)
    for flag, key, _t, _d in setting_flags():
        value = values.get(key)
        if value is None:
            continue
        if key not in fields:
            raise SerbenchError(f"{flag}: {system} has no such setting (its settings: `serbench systems {system}`)")
        if key in out and str(out[key]) != str(value):
            raise SerbenchError(f"{flag} {value} and --set {key}={out[key]}: give it once")
        out[key] = value
    return out


def epoch_overrides(model: str, epochs: int | None) -> dict:
    """``--epochs N``: every epoch setting of deep system ``model`` (``epochs`` or each ``*_epochs``)."""
    from serbench.systems import registry

    if epochs is None:
        return {}
    target = registry.get(model)
    if target.kind != "deep":
        raise SerbenchError(f"--epochs: {model} is not trained in epochs")
    fields = target.settings_class.fields()
    keys = ["epochs"] if "epochs" in fields else [k for k in fields if k.endswith("_epochs")]
    return {k: epochs for k in keys}


epochs_option = click.option("--epochs", type=click.IntRange(min=1), default=None,
                             help="Shorthand: every epoch setting of a deep system (--set cnn_epochs=... for one).")


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
           "resume_option", "seed_option", "protocol_option", "jobs_option", "profile_option", "device_option",
           "parse_sets", "executor_options", "print_result", "positive", "setting_flags", "setting_options",
           "flag_overrides", "epoch_overrides", "epochs_option"]
