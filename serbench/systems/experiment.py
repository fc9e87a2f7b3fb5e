"""Experiment files: one TOML file declares the runs of an experiment and the figures a paper reports.

::

    [experiment]
    name = "jiang2019"                   # letters, digits, '-', '_'
    title = "CNN+SRU against feature SVMs"
    paper = "Jiang et al. 2019"          # optional: whose figures [reported] holds
    corpora = ["casia", "emodb"]         # optional: the corpora its reported figures are for
    profile = "fast"                     # the deep systems' profile unless a [[run]] names one
    # protocol = "loso"; emotions = ["angry", "sad"]   (optional, for every run)

    [roots]                              # optional: corpus folders, relative to this file
    casia = "../data/casia"

    [[run]]                              # one entry per system and its settings
    system = "svm-linear"
    matrix = { feature = ["IS09", "IS10"], speaker_norm = [false, true] }   # every combination

    [[run]]
    system = "cnn-sru"
    set = { sru_fuse = 0 }               # overrides on top of the profile (any setting)
    matrix = { segments = [1, 2, 3, 4, 5] }
    seeds = [0]                          # optional: one run per seed

    [cross]                              # optional: a cross-corpus matrix (every ordered pair)
    corpora = ["casia", "emodb"]         # their folders: [roots], or --corpus NAME=DIR
    adapt = ["none", "corpus"]           # label-free normalization of each corpus (none|corpus|speaker)
    [[cross.run]]                        # the systems of the matrix, as [[run]] entries
    system = "svm-linear"
    matrix = { feature = ["IS09", "IS10"] }

    [reported]                           # optional: a paper's figures, per corpus (percent)
    casia = [{ table = "II", row = "N=3", wa = 45.5, ua = 45.3 }]

    [[reported_system]]                  # optional: figures another paper gives for one system
    system = "crnn-mk"
    corpus = "iemocap"
    ua = 64.5
    source = "Meyer et al. 2021 (abstract)"

:func:`load_experiment` reads and validates a file with the settings' own validator before
anything runs: an unknown key, system or value is one line naming the file, the entry and the
fix. :meth:`Experiment.plan` expands the entries into :class:`PlannedRun`\\ s for one corpus,
each with its run identity (:mod:`serbench.systems.identity`), and :func:`run_experiment` runs
the planned runs the store lacks: a run is done when a complete run with the same identity is
stored, whatever its name.
"""
from __future__ import annotations

import fnmatch
import itertools
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from serbench.errors import SerbenchError
from serbench.systems import registry
from serbench.systems.identity import Identity, settings_identity
from serbench.systems.runner import Job, Outcome, run_jobs
from serbench.systems.settings import DEFAULT_PROFILE

Log = Callable[[str], None]

SUFFIX = ".toml"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_TOP_KEYS = {"experiment", "roots", "run", "reported", "reported_system", "cross"}
_CROSS_KEYS = {"corpora", "adapt", "emotions", "diagonal", "run"}
_EXPERIMENT_KEYS = {"name", "title", "paper", "corpora", "profile", "protocol", "emotions", "description"}
_RUN_KEYS = {"system", "label", "profile", "set", "matrix", "seeds", "protocol"}
_REPORTED_KEYS = {"table", "row", "wa", "ua", "p", "note"}
_REPORTED_SYSTEM_KEYS = {"system", "corpus", "wa", "ua", "source"}


class ExperimentError(SerbenchError):
    """An experiment file that cannot be read or does not validate."""


@dataclass(frozen=True)
class Entry:
    """One ``[[run]]`` of an experiment file: a system, its profile and overrides, and the matrix to expand."""

    index: int
    system: str
    profile: str | None
    overrides: dict
    matrix: dict
    seeds: tuple[int, ...] = (0,)
    protocol: str | None = None
    label: str | None = None
    section: str = "run"

    @property
    def where(self) -> str:
        return f"{self.section}[{self.index}] ({self.system})"

    def combinations(self) -> list[dict]:
        """The overrides of every run this entry declares: ``set`` updated with each matrix combination."""
        keys = list(self.matrix)
        combos = itertools.product(*(self.matrix[k] for k in keys)) if keys else [()]
        return [{**self.overrides, **dict(zip(keys, values))} for values in combos]


@dataclass(frozen=True)
class PlannedRun:
    """One run an experiment declares on one corpus: its store name and its identity."""

    entry: Entry
    system: str
    name: str
    profile: str | None
    overrides: dict
    seed: int
    protocol: str | None
    identity: Identity

    @property
    def hash(self) -> str:
        return self.identity.hash


@dataclass(frozen=True)
class CrossSpec:
    """A ``[cross]`` table: the corpora of a cross-corpus matrix, the adaptations, and its systems."""

    corpora: tuple[str, ...]
    adapt: tuple[str, ...] = ("none",)
    emotions: tuple[str, ...] | None = None
    diagonal: bool = True
    entries: tuple[Entry, ...] = ()

    def systems(self) -> list[tuple[str, dict]]:
        """(system, overrides) of every combination its entries declare."""
        return [(e.system, combo) for e in self.entries for combo in e.combinations()]


@dataclass(frozen=True)
class Experiment:
    """A validated experiment file (see the module docstring)."""

    name: str
    title: str
    path: Path | None
    entries: tuple[Entry, ...]
    paper: str = ""
    corpora: tuple[str, ...] = ()
    profile: str = DEFAULT_PROFILE
    protocol: str | None = None
    emotions: tuple[str, ...] | None = None
    roots: dict = field(default_factory=dict)
    #: (corpus, table, row) -> {"wa", "ua", "p", ...}: the paper's figures, percent; a missing key is "not reported".
    reported: dict = field(default_factory=dict)
    #: system -> [{"corpus", "wa", "ua", "source"}]: figures other papers give for a system.
    systems_reported: dict = field(default_factory=dict)
    #: The ``[cross]`` matrix, if the file declares one.
    cross: "CrossSpec | None" = None

    def values(self, system: str, key: str) -> tuple:
        """Every value the file gives setting ``key`` of ``system`` (matrix or ``set``), in file order."""
        out: list = []
        for e in self.entries:
            if e.system != system:
                continue
            for v in e.matrix.get(key, [e.overrides[key]] if key in e.overrides else []):
                if v not in out:
                    out.append(v)
        return tuple(out)

    def systems(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.system for e in self.entries))

    def plan(self, corpus: str, *, only: Sequence[str] | None = None, seed: int | None = None,
             extra: Mapping[str, Any] | None = None) -> list[PlannedRun]:
        """Every run the file declares on ``corpus`` (``only``: store names or systems matching these globs;
        ``seed``: this seed instead of the file's; ``extra``: settings given on the command line, applied to the
        systems that have them, e.g. ``pretrained``)."""
        from serbench.experiments.protocol import resolve_protocol

        out: list[PlannedRun] = []
        seen: set[str] = set()
        for e in self.entries:
            system = registry.get(e.system)
            fields = system.settings_class.fields()
            for overrides in e.combinations():
                overrides = {**overrides, **{k: v for k, v in (extra or {}).items() if k in fields}}
                s = _settings(self, e, system, overrides)
                name = system.stored_name(s)
                proto = resolve_protocol(corpus, e.protocol or self.protocol).name
                for sd in ((seed,) if seed is not None else e.seeds):
                    ident = settings_identity(system.name, s, protocol=proto, emotions=self.emotions, seed=sd)
                    if ident.hash in seen:
                        continue
                    seen.add(ident.hash)
                    if only and not any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(system.name, p)
                                        for p in only):
                        continue
                    out.append(PlannedRun(e, system.name, name, e.profile or self.profile, overrides, int(sd),
                                          e.protocol or self.protocol, ident))
        return out

    def declared(self, corpus: str) -> dict[str, PlannedRun]:
        """Store name -> the run the file declares under that name on ``corpus`` (the first, with seed 0 first)."""
        out: dict[str, PlannedRun] = {}
        for p in sorted(self.plan(corpus), key=lambda p: p.seed != 0):
            out.setdefault(p.name, p)
        return out

    def root_of(self, corpus: str) -> Path | None:
        """The corpus folder the file names for ``corpus`` (relative to the file), or None."""
        value = self.roots.get(corpus)
        if value is None:
            return None
        base = self.path.parent if self.path is not None else Path.cwd()
        return (base / str(value)).resolve()


def _settings(exp: Experiment, e: Entry, system: Any, overrides: Mapping[str, Any]) -> Any:
    where = f"{exp.path or exp.name}: {e.where}"
    try:
        return system.settings((e.profile or exp.profile) if system.kind == "deep" else None, dict(overrides))
    except SerbenchError as exc:
        raise ExperimentError(f"{where}: {exc}") from None


# ---------------------------------------------------------------- finding and reading files

def recipes_dir() -> Path | None:
    """The folder of the shipped experiment files: ``$SERBENCH_RECIPES``, the source tree's ``recipes/``, or the
    installed copy under ``<prefix>/share/serbench/recipes``."""
    env = os.environ.get("SERBENCH_RECIPES")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "recipes", Path(sys.prefix) / "share" / "serbench" / "recipes"]
    for c in candidates:
        if c.is_dir():
            return c
    return None


def shipped() -> list[Path]:
    """The experiment files shipped with serbench, by name."""
    d = recipes_dir()
    return sorted(d.glob(f"*{SUFFIX}")) if d is not None else []


def find_experiment(name_or_path: str | Path) -> Path:
    """A path to an experiment file, or the shipped file of that name (``jiang2019``)."""
    p = Path(name_or_path)
    if p.suffix == SUFFIX or p.exists():
        if not p.is_file():
            raise ExperimentError(f"{p}: no such experiment file; give a .toml file or one of "
                                  f"{', '.join(x.stem for x in shipped()) or '(none shipped)'}")
        return p
    for f in shipped():
        if f.stem == str(name_or_path):
            return f
    raise ExperimentError(f"{name_or_path}: not an experiment file nor a shipped experiment; choose a .toml file or "
                          f"one of {', '.join(x.stem for x in shipped()) or '(none shipped)'}")


def load_experiment(name_or_path: str | Path) -> Experiment:
    """Read and validate an experiment file (a path, or a shipped experiment's name)."""
    path = find_experiment(name_or_path)
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(f"{path}: not valid TOML ({exc}); fix the file") from None
    except OSError as exc:
        raise ExperimentError(f"{path}: unreadable ({exc.strerror or exc})") from None
    return parse_experiment(raw, path)


def _fail(path: Path | None, where: str, what: str) -> ExperimentError:
    return ExperimentError(f"{path or '<experiment>'}: {where}: {what}")


def _unknown(path: Path | None, where: str, table: Mapping, known: set[str]) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise _fail(path, where, f"unknown key {extra[0]!r}; allowed: {', '.join(sorted(known))}")


def _each(path: Path | None, where: str, values: Sequence[str], check: Callable[[str], Any]) -> None:
    """Run ``check`` on every value; its error becomes one line naming the file and ``where``."""
    for v in values:
        try:
            check(v)
        except SerbenchError as exc:
            raise _fail(path, where, str(exc)) from None


def _strings(path: Path | None, where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(path, where, "give a list of names, e.g. [\"casia\", \"emodb\"]")
    return tuple(value)


def parse_experiment(raw: Mapping[str, Any], path: Path | None = None) -> Experiment:
    """An :class:`Experiment` from a parsed TOML document, validated (every run is resolved once)."""
    from serbench.corpora import check_corpus_name

    _unknown(path, "top level", raw, _TOP_KEYS)
    head = raw.get("experiment")
    if not isinstance(head, dict):
        raise _fail(path, "[experiment]", "missing; give at least name = \"...\"")
    _unknown(path, "[experiment]", head, _EXPERIMENT_KEYS)
    name = head.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(path, "[experiment] name", "give a name of letters, digits, '-' and '_'")
    profile = head.get("profile", DEFAULT_PROFILE)
    if not isinstance(profile, str):
        raise _fail(path, "[experiment] profile", "give a profile name, e.g. \"fast\"")
    corpora = _strings(path, "[experiment] corpora", head.get("corpora", []))
    _each(path, "[experiment] corpora", corpora, check_corpus_name)
    emotions = head.get("emotions")
    if emotions is not None:
        emotions = _strings(path, "[experiment] emotions", emotions)
    protocol = head.get("protocol")
    if protocol is not None and protocol not in ("loso", "loso-session"):
        raise _fail(path, "[experiment] protocol", "choose loso or loso-session")
    roots = raw.get("roots", {})
    if not isinstance(roots, dict) or not all(isinstance(v, str) for v in roots.values()):
        raise _fail(path, "[roots]", "give corpus = \"folder\" pairs")
    _each(path, "[roots]", list(roots), check_corpus_name)
    runs = raw.get("run", [])
    cross = _cross(path, raw.get("cross"))
    if not isinstance(runs, list) or (not runs and cross is None):
        raise _fail(path, "[[run]]", "declare at least one run: [[run]] system = \"svm-linear\" ...")
    entries = tuple(_entry(path, i, r) for i, r in enumerate(runs, 1))
    exp = Experiment(name=name, title=str(head.get("title") or name), path=path, entries=entries,
                     paper=str(head.get("paper") or ""), corpora=corpora, profile=profile, protocol=protocol,
                     emotions=emotions, roots=dict(roots), reported=_reported(path, raw.get("reported", {})),
                     systems_reported=_systems_reported(path, raw.get("reported_system", [])), cross=cross)
    for e in entries + (cross.entries if cross is not None else ()):   # a bad value fails before anything runs
        system = registry.get(e.system)
        if e.profile is not None and e.profile not in system.settings_class.PROFILES:
            raise _fail(path, f"{e.where} profile", f"{e.profile!r} unknown; choose one of "
                        f"{', '.join(system.settings_class.PROFILES)}")
        for combo in e.combinations():
            s = _settings(exp, e, system, combo)
            if system.inputs == "features":
                _check_feature(path, e, system.feature_set(s))
    return exp


def _check_feature(path: Path | None, e: Entry, feature: str) -> None:
    from serbench.features.registry import get_feature_set

    try:
        get_feature_set(feature)
    except SerbenchError as exc:
        raise _fail(path, f"{e.where} feature", str(exc)) from None


def _cross(path: Path | None, raw: Any) -> CrossSpec | None:
    """The ``[cross]`` table, validated (corpora known, adaptations known, entries as [[run]]'s)."""
    from serbench.corpora import check_corpus_name
    from serbench.experiments.cross import check_adapt

    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail(path, "[cross]", "give a table: corpora = [...], adapt = [...], [[cross.run]] entries")
    _unknown(path, "[cross]", raw, _CROSS_KEYS)
    corpora = _strings(path, "[cross] corpora", raw.get("corpora", []))
    if len(set(corpora)) < 2:
        raise _fail(path, "[cross] corpora", "give at least two corpora")
    _each(path, "[cross] corpora", corpora, check_corpus_name)
    adapt = _strings(path, "[cross] adapt", raw.get("adapt", ["none"]))
    _each(path, "[cross] adapt", adapt, check_adapt)
    emotions = raw.get("emotions")
    if emotions is not None:
        emotions = _strings(path, "[cross] emotions", emotions)
    diagonal = raw.get("diagonal", True)
    if not isinstance(diagonal, bool):
        raise _fail(path, "[cross] diagonal", "give true or false")
    runs = raw.get("run", [])
    if not isinstance(runs, list) or not runs:
        raise _fail(path, "[[cross.run]]", "declare the matrix's systems: [[cross.run]] system = \"svm-linear\" ...")
    entries = tuple(_entry(path, i, r, prefix="cross.run") for i, r in enumerate(runs, 1))
    return CrossSpec(tuple(corpora), tuple(adapt), emotions, diagonal, entries)


def _entry(path: Path | None, i: int, r: Any, *, prefix: str = "run") -> Entry:
    where = f"{prefix}[{i}]"
    if not isinstance(r, dict):
        raise _fail(path, where, "each [[run]] is a table")
    system = r.get("system")
    extra = sorted(set(r) - _RUN_KEYS)
    if extra:
        named = f"{where} ({system})" if isinstance(system, str) else where
        raise _fail(path, named, f"unknown key {extra[0]!r}; allowed: {', '.join(sorted(_RUN_KEYS))} (settings go "
                                 f"under set = {{ {extra[0]} = ... }})")
    if not isinstance(system, str):
        raise _fail(path, where, f"give system = \"...\", one of {', '.join(registry.names())}")
    try:
        sysobj = registry.get(system)
    except SerbenchError:
        raise _fail(path, where, f"system {system!r} unknown; choose one of {', '.join(registry.names())}") from None
    where = f"{prefix}[{i}] ({system})"
    fields = sysobj.settings_class.fields()
    known = sorted(k for k in fields if k != "profile")
    overrides = r.get("set", {})
    matrix = r.get("matrix", {})
    for label, table in (("set", overrides), ("matrix", matrix)):
        if not isinstance(table, dict):
            raise _fail(path, f"{where} {label}", "give a table, e.g. { key = value }")
        for key in table:
            if key not in fields or key == "profile":
                raise _fail(path, f"{where} {label}.{key}", f"not a setting of {system}; its settings: "
                            f"{', '.join(known)} (`serbench systems {system}`)")
    for key, values in matrix.items():
        if not isinstance(values, list) or not values:
            raise _fail(path, f"{where} matrix.{key}", "give a non-empty list of values")
        if key in overrides:
            raise _fail(path, f"{where} matrix.{key}", "also given in set; give it in one place")
    seeds = r.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                          for s in seeds):
        raise _fail(path, f"{where} seeds", "give a list of integers, e.g. [0, 1, 2]")
    profile = r.get("profile")
    if profile is not None and not isinstance(profile, str):
        raise _fail(path, f"{where} profile", "give a profile name")
    protocol = r.get("protocol")
    if protocol is not None and protocol not in ("loso", "loso-session"):
        raise _fail(path, f"{where} protocol", "choose loso or loso-session")
    return Entry(index=i, system=system, profile=profile, overrides=dict(overrides),
                 matrix={k: list(v) for k, v in matrix.items()}, seeds=tuple(seeds), protocol=protocol,
                 label=r.get("label"), section=prefix)


def _number(path: Path | None, where: str, v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _fail(path, where, "give a number in percent")
    return float(v)


def _reported(path: Path | None, raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise _fail(path, "[reported]", "give corpus = [{ table = ..., row = ..., wa = ..., ua = ... }, ...]")
    out: dict = {}
    for corpus, rows in raw.items():
        if not isinstance(rows, list):
            raise _fail(path, f"[reported] {corpus}", "give a list of { table, row, wa, ua } tables")
        for j, row in enumerate(rows, 1):
            where = f"[reported] {corpus}[{j}]"
            if not isinstance(row, dict):
                raise _fail(path, where, "give { table = ..., row = ..., wa = ..., ua = ... }")
            _unknown(path, where, row, _REPORTED_KEYS)
            if not isinstance(row.get("table"), str) or not isinstance(row.get("row"), str):
                raise _fail(path, where, "give table = \"...\" and row = \"...\"")
            entry: dict[str, object] = {"wa": _number(path, f"{where} wa", row.get("wa")),
                                        "ua": _number(path, f"{where} ua", row.get("ua"))}
            if "p" in row:
                entry["p"] = str(row["p"])
            out[(corpus.lower(), row["table"], row["row"])] = entry
    return out


def _systems_reported(path: Path | None, raw: Any) -> dict:
    if not isinstance(raw, list):
        raise _fail(path, "[[reported_system]]", "give one table per figure")
    out: dict[str, list] = {}
    for j, row in enumerate(raw, 1):
        where = f"reported_system[{j}]"
        if not isinstance(row, dict) or not isinstance(row.get("system"), str):
            raise _fail(path, where, "give system = \"...\" with wa/ua/corpus/source")
        _unknown(path, where, row, _REPORTED_SYSTEM_KEYS)
        out.setdefault(row["system"], []).append({
            "corpus": row.get("corpus"), "wa": _number(path, f"{where} wa", row.get("wa")),
            "ua": _number(path, f"{where} ua", row.get("ua")), "source": str(row.get("source") or "")})
    return out


def reference_figures() -> tuple[dict, dict]:
    """The reported figures of every shipped experiment: ``(reported, systems_reported)`` merged."""
    reported: dict = {}
    systems: dict[str, list] = {}
    for f in shipped():
        try:
            exp = load_experiment(f)
        except SerbenchError:
            continue   # a broken shipped file is reported by `serbench run --dry-run`, not by the tables
        reported.update(exp.reported)
        for k, v in exp.systems_reported.items():
            systems.setdefault(k, []).extend(v)
    return reported, systems


# ---------------------------------------------------------------- running

def run_experiment(exp: Experiment, corpus: Any, root: str | Path | None = None, *,
                   cache: str | Path | None = None,
                   runs: str | Path | None = None, jobs: int = 1, seed: int | None = None,
                   only: Sequence[str] | None = None, device: str = "auto", pretrained: str | Path | None = None,
                   threads: int | None = None, force: bool = False, keep_going: bool = True, executor: Any = None,
                   workers: int | None = None, scheduler: str | None = None,
                   log: Log = print) -> list[Outcome]:
    """Run every planned run of ``exp`` on ``corpus`` (a :class:`~serbench.features.CorpusHandle`, or a name with
    ``root``, ``cache`` and ``jobs``) that the store lacks (all of them with ``force``).

    A planned run is done when a complete run with its identity is stored; a changed setting is
    another identity and runs again. Missing runs' folds go to the executor at once; the runs are
    finished in the file's order. With ``keep_going`` a failing run is reported and the rest go on.
    Each outcome's ``planned`` is the :class:`PlannedRun`.
    """
    from serbench.features.handle import CorpusHandle
    from serbench.systems.run import DataCache, prepare

    handle = CorpusHandle.of(corpus, root, cache=cache, jobs=jobs, emotions=exp.emotions)
    planned = exp.plan(handle.name, only=only, seed=seed,
                       extra={"pretrained": str(pretrained)} if pretrained is not None else None)
    if not planned:
        raise ExperimentError(f"{exp.path or exp.name}: no run matches --only {','.join(only or [])}")
    data = DataCache()

    def job(k: int, p: PlannedRun) -> Job:
        def make() -> Any:
            plan = prepare(p.system, handle, profile=p.profile, overrides=p.overrides, seed=p.seed,
                           protocol=p.protocol, device=device, threads=threads, log=log, data_cache=data)
            plan.extra["experiment"] = {"name": exp.name, "file": str(exp.path) if exp.path else None,
                                        "entry": p.entry.index}
            return plan
        return Job(p, handle.name, p.hash, p.system, f"[{k}/{len(planned)}] {p.name}", make)

    return run_jobs([job(k, p) for k, p in enumerate(planned, 1)], runs=runs, executor=executor, workers=workers,
                    scheduler=scheduler, threads=threads, force=force, keep_going=keep_going,
                    on_executor=lambda ex: CorpusHandle.of(handle, executor=ex), log=log)


__all__ = ["Experiment", "CrossSpec", "Entry", "PlannedRun", "ExperimentError", "load_experiment",
           "parse_experiment", "find_experiment", "shipped", "recipes_dir", "reference_figures",
           "run_experiment"]
