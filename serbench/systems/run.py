"""Run a registered system on a corpus: build its plan, hand it to the harness, return the result.

>>> from serbench.systems import run_system
>>> res = run_system("svm-linear", "casia", "/data/casia", overrides={"feature": "IS10"})   # doctest: +SKIP
>>> res = run_system("cnn-sru", "casia", "/data/casia", profile="fast",
...                  overrides={"segments": 3}, workers=2)                                   # doctest: +SKIP
>>> round(res.ua, 3), res.path                                                               # doctest: +SKIP

:func:`prepare` does the client's part: settings (profile + ``--set``), the protocol's folds,
the data from the feature cache (extracting what is missing), the run record's
configuration and the warnings about the data; :func:`run_system` runs the plan on an
executor through :func:`serbench.experiments.harness.run_plans`.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from serbench.audio import reuse_file_facts
from serbench.executors import Executor, make_executor
from serbench.experiments.dataset import Dataset
from serbench.experiments.harness import RunPlan, run_plan
from serbench.experiments.inputs import excluded_record, feature_dataset, load_feature_table, melseg_dataset
from serbench.experiments.protocol import Fold, Protocol, resolve_protocol
from serbench.experiments.store import RunResult, RunStore
from serbench.features.handle import CorpusHandle
from serbench.settings import cache_root
from serbench.systems import registry
from serbench.systems.base import SystemOptionError
from serbench.systems.identity import settings_identity

Log = Callable[[str], None]

class DataCache:
    """Feature tables and datasets loaded once per command and reused by every plan that reads them (a grid)."""

    def __init__(self) -> None:
        self._data: dict[tuple, Any] = {}

    def get(self, key: tuple, load: Callable[[], Any]) -> Any:
        if key not in self._data:
            self._data[key] = load()
        return self._data[key]


def data_warnings(data: Dataset, folds: Sequence[Fold]) -> list[str]:
    """What about the data makes results hard to read: rare classes, classes a fold never trains on, speakers
    with one emotion. Each a line for the output, the run record and the tables' notes."""
    out = []
    counts = np.bincount(data.y, minlength=data.n_classes)
    rare = [f"{data.labels[i]} ({counts[i]})" for i in range(data.n_classes) if counts[i] < 2]
    if rare:
        out.append(f"class(es) with a single utterance: {', '.join(rare)}; their recall is 0 or 1 and moves UA by "
                   f"{100 / data.n_classes:.0f} points")
    for fold in folds:
        present = set(np.unique(data.y[np.asarray(fold.train)]).tolist())
        missing = [data.labels[i] for i in range(data.n_classes) if i not in present]
        if missing:
            out.append(f"fold {fold.name}: class(es) {', '.join(missing)} absent from its training speakers, so "
                       "they cannot be predicted there")
    one = []
    for spk in np.unique(data.speakers):
        classes = np.unique(data.y[data.speakers == spk])
        if len(classes) == 1:
            one.append(f"{spk} ({data.labels[int(classes[0])]})")
    if one:
        out.append(f"speaker(s) with a single emotion: {', '.join(one)}; their fold's UA is that class's recall")
    return out


def _folds(protocol: Protocol, data: Dataset, corpus: str) -> list[Fold]:
    frame = pd.DataFrame({"utterance_id": data.utterance_ids, protocol.column: data.groups})
    return protocol.folds(frame, corpus)


def default_command() -> str:
    """The command line that started this process (recorded so a run can be reproduced)."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("serbench", "__main__.py"):
        argv[0] = "serbench"
    return shlex.join(argv)


def prepare(name: str, corpus: str | CorpusHandle, root: str | Path | None = None, *, profile: str | None = None,
            overrides: Mapping[str, Any] | None = None, protocol: str | Protocol | None = None, seed: int = 0,
            cache: str | Path | None = None, jobs: int = 1, emotions: Sequence[str] | None = None,
            device: str = "auto", threads: int | None = None, command: str | None = None,
            log: Log | None = None, data_cache: DataCache | None = None,
            load_features: Callable | None = None, kind: str | None = None,
            executor: Executor | None = None) -> RunPlan:
    """The :class:`~serbench.experiments.harness.RunPlan` of system ``name`` on ``corpus``.

    ``corpus`` is a :class:`~serbench.features.CorpusHandle` (name, root, cache, jobs, emotions,
    executor), or a corpus name with ``root`` and those options. ``profile`` picks the deep systems'
    settings (``paper`` / ``fast`` / ``tiny``; None: ``fast``; the SVMs have one recipe);
    ``overrides`` are ``--set`` values and options such as ``feature``, ``segments``,
    ``speaker_norm``, ``pretrained`` (a setting the system lacks is an error). ``device`` ('auto' |
    'cpu' | 'cuda') is resolved where a fold runs; ``threads`` caps the CPU threads of each fold
    task. ``load_features`` replaces :func:`serbench.features.load` (tests). ``kind`` ('baseline' |
    'deep') restricts ``name``.
    """
    corpus = CorpusHandle.of(corpus, root, cache=cache, jobs=jobs, emotions=emotions, executor=executor)
    say = log or (lambda _m: None)
    system = registry.get(name, kind=kind)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise SystemOptionError(f"--seed {seed!r}: give an integer")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise SystemOptionError(f"--threads {threads!r}: give a positive number of threads")
    if str(device).lower() not in ("auto", "cpu") and not str(device).lower().startswith("cuda"):
        raise SystemOptionError(f"--device {device!r}: choose auto, cpu or cuda")
    s = system.settings(profile if system.kind == "deep" else None, dict(overrides or {}))
    proto = resolve_protocol(corpus.name, protocol)
    emotions = list(corpus.emotions) if corpus.emotions else None
    data_cache = data_cache or DataCache()
    spk = bool(s.speaker_norm)
    subset = tuple(emotions or ())
    if system.inputs == "features":
        feature = system.feature_set(s)
        columns = system.feature_columns(s)
        part = tuple(columns) if columns is not None else None
        # One read of the cache per feature set (and column subset); each normalization variant is derived from it.
        table = data_cache.get(("table", feature, subset, part), lambda: load_feature_table(
            corpus, feature, load_features=load_features, columns=columns))
        data, excluded = data_cache.get(
            ("features", feature, spk, proto.name, subset, part),
            lambda: feature_dataset(corpus, feature, protocol=proto, speaker_norm=spk, table=table))
    else:
        table = data_cache.get(("table", "melseg", subset), lambda: corpus.arrays("melseg"))
        data, excluded = data_cache.get(
            ("melseg", spk, proto.name, subset),
            lambda: melseg_dataset(corpus, protocol=proto, speaker_norm=spk, table=table))
    folds = _folds(proto, data, corpus.name)
    system.check_data(data, s)
    stored = system.stored_name(s)
    warnings = data_warnings(data, folds)
    for w in warnings:
        say(f"WARNING: {w}")
    if len(excluded):
        say(f"{len(excluded)} utterance(s) without usable features are left out (listed in run.json 'excluded')")
    description = system.describe(s)
    ident = settings_identity(system.name, s, protocol=proto.name, emotions=emotions, seed=int(seed))
    config = {
        "system_type": system.name, "kind": system.kind, "settings": s.as_dict(), "profile": s.profile,
        "corpus": corpus.name, "root": str(Path(corpus.root).resolve()), "protocol": proto.name, "emotions": emotions, "seed": int(seed),
        "speaker_norm": spk, "device": str(device) if system.kind == "deep" else None,
        "inputs": {**{k: v for k, v in data.meta.items() if k != "load_s"},
                   "feature_key": ident.fields["feature_key"]},
        "identity": {"hash": ident.hash, "fields": ident.fields}, **description,
    }
    # Where the features were read: the reports name it in the commands for missing runs.
    config["cache"] = str(cache_root(corpus.cache).resolve())
    if description.get("note"):
        say(f"{stored} on {corpus.name}: {len(data)} utterances, {len(folds)} folds ({proto.name}); {description['note']}")
    return RunPlan(corpus=corpus.name, system=stored, kind=system.kind, config=config,
                   command=command or default_command(), seed=int(seed), data=data, folds=folds, task=system,
                   payload=s, resources=system.resources(s, str(device)),
                   extra={"excluded": excluded_record(excluded, data.meta.get("n_rows", len(data))),
                          "warnings": warnings},
                   device=str(device), threads=threads, summarize=system.summarize,
                   load_s=float(data.meta.get("load_s") or 0.0))


def run_system(name: str, corpus: str | CorpusHandle, root: str | Path | None = None, *, runs: str | Path | None = None, resume: bool = True,
               executor: Executor | None = None, workers: int | None = None, scheduler: str | None = None,
               on_epoch: Callable[[dict], None] | None = None, log: Log | None = None,
               **prepare_kw: Any) -> RunResult:
    """Run system ``name`` on ``corpus`` under its protocol into the results store; returns the stored result.

    ``executor`` (or ``workers`` / ``scheduler``, see :func:`serbench.executors.make_executor`)
    runs the folds; ``resume`` continues an interrupted run of the same configuration.
    Other keywords go to :func:`prepare`.
    """
    own = executor is None
    executor = executor or make_executor(workers, scheduler, threads=prepare_kw.get("threads"),
                                         preload=registry.get(name, kind=prepare_kw.get("kind")).preload)
    try:
        with reuse_file_facts():
            plan = prepare(name, corpus, root, log=log, executor=executor, **prepare_kw)
        return run_plan(plan, store=RunStore(runs), executor=executor, resume=resume, log=log, on_epoch=on_epoch)
    finally:
        if own:
            executor.close()


def run_baseline(corpus: str, root: str | Path, feature: str, *, classifier: str = "svm-linear",
                 speaker_norm: bool = False, class_weight: str | None = None, **kw: Any) -> RunResult:
    """An SVM baseline (``classifier`` on ``feature``): :func:`run_system` with the baseline's options."""
    overrides = {"feature": feature, "speaker_norm": speaker_norm, **kw.pop("overrides", {})}
    if class_weight not in (None, "none"):   # only the SVMs know class weights; the default is none
        overrides["class_weight"] = class_weight
    return run_system(classifier, corpus, root, overrides=overrides, kind="baseline", **kw)


def run_deep(corpus: str, root: str | Path, *, model: str = "cnn-sru", segments: int | None = None,
             profile: str | None = None, pretrained: str | Path | None = None, speaker_norm: bool = False,
             overrides: Mapping[str, Any] | None = None, **kw: Any) -> RunResult:
    """A deep system: :func:`run_system` with ``segments``, ``pretrained`` and ``speaker_norm`` as options."""
    opts: dict[str, Any] = dict(overrides or {})
    if segments is not None:
        opts["segments"] = segments
    if pretrained is not None:
        opts["pretrained"] = str(pretrained)
    if speaker_norm:
        opts["speaker_norm"] = True
    return run_system(model, corpus, root, profile=profile, overrides=opts, kind="deep", **kw)


__all__ = ["prepare", "run_system", "run_baseline", "run_deep", "DataCache", "data_warnings", "default_command"]
