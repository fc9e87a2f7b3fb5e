"""Run an SVM baseline under a speaker-independent protocol and record it in the results store.

>>> from serbench.baselines import run_baseline
>>> res = run_baseline("casia", "/data/casia", "IS10")          # doctest: +SKIP
>>> round(res.ua, 3), res.path                                    # doctest: +SKIP

What is fitted where, per outer fold (one held-out speaker or session):

1. optional per-speaker normalization (:mod:`serbench.experiments.normalize`): each
   speaker z-scored with its own statistics, labels unused; the test speaker with its
   own unlabelled rows. It involves no other speaker, so it is the same whether applied
   per fold or once;
2. ``GridSearchCV(Pipeline(StandardScaler, SVC))`` fitted on the training speakers only:
   the inner CV holds out whole training speakers, the scaler is refitted inside every
   inner split, and the winner is refit on all training rows;
3. the test speaker's rows are only ever passed to ``predict``/``decision_function``.
"""
from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from serbench.baselines import svm
from serbench.errors import SerbenchError
from serbench.experiments import metrics
from serbench.experiments.normalize import normalize_per_speaker
from serbench.experiments.protocol import MAX_INNER_SPLITS, Fold, Protocol, inner_cv, resolve_protocol
from serbench.experiments.store import RunStore, fingerprint, jsonable, load_run

#: The NaN policy, printed by the CLI and written into every run record.
NAN_POLICY = ("rows whose features are not 'ok' (extraction status 'nan' or 'failed') are excluded "
              "from training and testing; they are counted and listed in run.json under 'excluded'")

#: Canonical spelling of the feature sets, so 'is10' and 'IS10' name the same system.
KNOWN_FEATURES = ("PLP", "MFCC", "HuWSF", "IS09", "IS10", "eGeMAPS", "ComParE")

FeatureLoader = Callable[..., tuple[pd.DataFrame, pd.DataFrame]]


@dataclass
class RunResult:
    """What :func:`run_baseline` returns; everything in it is also in the store at ``path``.

    ``predictions`` has one row per test utterance (utterance_id, speaker, fold, true,
    predicted, score_<label>); ``summary`` is :func:`serbench.experiments.metrics.summarize`
    of it; ``excluded`` lists the rows left out by the NaN policy.
    """

    run_id: str
    corpus: str
    system: str
    path: Path
    record: dict
    predictions: pd.DataFrame
    summary: dict
    excluded: pd.DataFrame
    n_rows: int
    resumed_folds: list[str] = field(default_factory=list)

    @property
    def wa(self) -> float:
        return float(self.summary["wa"])

    @property
    def ua(self) -> float:
        return float(self.summary["ua"])

    @property
    def n_excluded(self) -> int:
        return int(len(self.excluded))


def canonical_feature(feature: str) -> str:
    """'is10' -> 'IS10': the registry's spelling of a feature set; unknown names pass through unchanged.

    Unknown names are left for the feature loader to reject (an injected loader may know more sets).
    """
    try:
        from serbench.features import get_feature_set

        return get_feature_set(feature).name
    except (ImportError, SerbenchError):
        pass
    for name in KNOWN_FEATURES:
        if name.lower() == str(feature).lower():
            return name
    return str(feature)


def system_name(feature: str, classifier: str = "svm-linear", speaker_norm: bool = False,
                class_weight: str | None = None) -> str:
    """``<feature>-<classifier>`` plus ``-spknorm`` with per-speaker normalization, e.g. ``IS10-svm-linear``.

    ``class_weight='balanced'`` (not a paper setting) adds ``-balanced``, so that tables built
    from the store can never mix it up with the paper's unweighted SVM.
    """
    name = f"{canonical_feature(feature)}-{classifier}" + ("-spknorm" if speaker_norm else "")
    return name + ("-balanced" if class_weight == "balanced" else "")


def _default_loader() -> FeatureLoader:
    try:
        from serbench.features import load
    except ImportError as exc:
        raise svm.BaselineError(f"serbench.features cannot be imported ({exc}); features are needed for "
                                "baselines") from exc
    return load


def _align(X: pd.DataFrame, manifest: pd.DataFrame, feature: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Features as a float array in manifest row order; raise if they do not describe the same utterances."""
    manifest = manifest.reset_index(drop=True)
    ids = manifest["utterance_id"].astype(str)
    index = pd.Index(X.index.astype(str))
    if len(index) != len(ids) or not index.equals(pd.Index(ids)):
        if index.has_duplicates or set(index) != set(ids):
            raise svm.BaselineError(
                f"{feature} features hold {len(index)} rows but the manifest {len(ids)}; the feature cache "
                "does not match the corpus: re-run `serbench extract`")
        X = X.set_axis(index).loc[ids.to_numpy()]
    try:
        values = X.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise svm.BaselineError(f"{feature} features are not numeric ({exc})") from exc
    return values, manifest


def _status(values: np.ndarray, manifest: pd.DataFrame, feature: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Apply the NaN policy: the 'ok' mask (n_rows,) and the excluded rows' table."""
    finite = np.isfinite(values).all(axis=1)
    if "status" in manifest.columns:
        status = manifest["status"].astype(str).to_numpy()
        detail = (manifest["status_detail"].astype(str).to_numpy() if "status_detail" in manifest.columns
                  else np.full(len(manifest), ""))
    else:
        # A loader without status columns: non-finite rows are what 'nan' means.
        status = np.where(finite, "ok", "nan")
        detail = np.where(finite, "", "non-finite feature values")
    ok = status == "ok"
    bad = ok & ~finite
    if bad.any():
        ids = manifest["utterance_id"][bad].head(5).tolist()
        raise svm.BaselineError(
            f"{int(bad.sum())} row(s) of {feature} are marked 'ok' but hold NaN/inf, e.g. {ids}; the feature "
            "cache is inconsistent: delete it (see --cache) and re-extract")
    excluded = pd.DataFrame({
        "utterance_id": manifest["utterance_id"].astype(str).to_numpy()[~ok],
        "speaker": manifest["speaker"].astype(str).to_numpy()[~ok],
        "emotion": manifest["emotion"].astype(str).to_numpy()[~ok],
        "status": status[~ok], "status_detail": detail[~ok],
    })
    return ok, excluded


def _command(corpus: str, root: str | Path, feature: str, classifier: str, protocol: str, seed: int,
             speaker_norm: bool, class_weight: str | None, emotions: Sequence[str] | None) -> str:
    """The CLI command that reproduces this run (recorded when the caller gives none)."""
    args = ["serbench", "baseline", "--corpus", corpus, "--root", str(root), "--feature", feature,
            "--classifier", classifier, "--protocol", protocol, "--seed", str(seed),
            "--speaker-norm" if speaker_norm else "--no-speaker-norm"]
    if class_weight not in (None, "none"):
        args += ["--class-weight", str(class_weight)]
    if emotions:
        args += ["--emotions", ",".join(emotions)]
    return shlex.join(args)


def run_fold(fold: Fold, X: np.ndarray, y: np.ndarray, speakers: np.ndarray, utterance_ids: np.ndarray,
             labels: Sequence[str], *, classifier: str, seed: int, class_weight: str | None,
             jobs: int) -> tuple[pd.DataFrame, dict, object]:
    """Fit on ``fold.train`` rows only, predict ``fold.test`` rows: (predictions, info, fitted search).

    ``X`` (n_rows, n_features) already has the NaN policy (and any per-speaker
    normalization) applied; ``y``, ``speakers``, ``utterance_ids`` are (n_rows,).
    """
    tr, te = fold.train, fold.test
    t0 = time.perf_counter()
    search = svm.select_model(X[tr], y[tr], speakers[tr], classifier=classifier, seed=seed,
                              class_weight=class_weight, jobs=jobs)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    predicted = search.predict(X[te])
    scores = svm.decision_scores(search, X[te], labels)
    predict_s = time.perf_counter() - t1
    preds = pd.DataFrame({
        "utterance_id": utterance_ids[te], "speaker": speakers[te], "fold": fold.name,
        "true": y[te], "predicted": np.asarray(predicted).astype(str),
    })
    for j, label in enumerate(labels):
        preds[f"score_{label}"] = scores[:, j]
    refit_s = float(search.refit_time_)
    info = {
        "best_params": jsonable(search.best_params_),
        "inner_cv_ua": float(search.best_score_),
        "inner_cv": type(search.cv).__name__,
        "n_inner_splits": int(search.n_splits_),
        "n_train": int(len(tr)),
        "n_train_speakers": int(len(np.unique(speakers[tr]))),
        "timings": {"model_selection_s": fit_s - refit_s, "refit_s": refit_s, "predict_s": predict_s,
                    "fold_s": fit_s + predict_s},
    }
    return preds, info, search


def run_baseline(
    corpus: str,
    root: str | Path,
    feature: str,
    *,
    classifier: str = "svm-linear",
    protocol: str | Protocol | None = None,
    seed: int = 0,
    speaker_norm: bool = False,
    class_weight: str | None = None,
    cache: str | Path | None = None,
    runs: str | Path | None = None,
    jobs: int = 1,
    emotions: Sequence[str] | None = None,
    load_features: FeatureLoader | None = None,
    resume: bool = True,
    command: str | None = None,
    on_fold: Callable[[Fold, object], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Run ``<feature>-<classifier>`` on ``corpus`` under ``protocol`` and write it to the store.

    Parameters
    ----------
    corpus, root : corpus name and folder (passed to ``load_features``).
    feature : feature set name (PLP, MFCC, HuWSF, IS09, IS10, eGeMAPS, ComParE).
    classifier : 'svm-linear' or 'svm-rbf' (grids in :mod:`serbench.baselines.svm`).
    protocol : 'loso' | 'loso-session' | a Protocol; None = :func:`default_protocol` of the corpus.
    seed : recorded and passed to the SVC.
    speaker_norm : z-score each speaker with its own statistics first (label-free); off by
        default as in the paper. The system name gains ``-spknorm``.
    class_weight : None (default, as the paper) or 'balanced'.
    cache, runs : feature cache root and results store root (None = settings' defaults).
    jobs : parallel jobs for feature extraction and for the inner grid search.
    emotions : keep only these canonical emotions.
    load_features : ``load(corpus, feature, *, root, cache, jobs, emotions) -> (X, manifest)``;
        default :func:`serbench.features.load`.
    resume : continue the latest partial run of the same system, config and data, skipping
        its finished folds (an interrupted run loses nothing already computed).
    command : recorded in run.json; default is the equivalent ``serbench baseline`` command.
    on_fold : called with (fold, fitted GridSearchCV) after each fold computed in this call,
        for inspection; fitted models are never persisted.
    progress : called with one-line status messages.

    NaN policy: rows whose extraction status is not 'ok' are excluded from training and
    testing; their number and ids are returned (``excluded``) and written to run.json.

    Returns a :class:`RunResult`; metrics in it are recomputed from the stored predictions.
    """
    say = progress or (lambda msg: None)
    svm.param_grid(classifier)  # validates the name before any work
    svm._class_weight(class_weight)
    if not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise svm.BaselineError(f"jobs must be a positive integer, got {jobs!r}")
    proto = resolve_protocol(corpus, protocol)
    feature = canonical_feature(feature)
    system = system_name(feature, classifier, speaker_norm, class_weight)
    loader = load_features or _default_loader()
    emotions = list(emotions) if emotions else None

    t_start = time.perf_counter()
    X_df, manifest = loader(corpus, feature, root=root, cache=cache, jobs=jobs, emotions=emotions)
    load_s = time.perf_counter() - t_start
    values, manifest = _align(X_df, manifest, feature)
    ok, excluded = _status(values, manifest, feature)
    if not ok.any():
        raise svm.BaselineError(f"no usable {feature} rows for {corpus}: all {len(ok)} rows failed extraction")
    used = manifest[ok].reset_index(drop=True)
    X = values[ok]
    y = used["emotion"].astype(str).to_numpy()
    speakers = used["speaker"].astype(str).to_numpy()
    ids = used["utterance_id"].astype(str).to_numpy()
    labels = sorted(np.unique(y).tolist())
    folds = proto.folds(used, corpus)
    data_fp = fingerprint(X, ids, y, used[proto.column].astype(str).to_numpy())
    if speaker_norm:
        X = normalize_per_speaker(X, speakers)

    grid = svm.param_grid(classifier)
    config = {
        "corpus": corpus, "root": str(root), "feature": feature, "classifier": classifier,
        "protocol": proto.name, "speaker_norm": bool(speaker_norm),
        "class_weight": None if class_weight in (None, "none") else class_weight,
        "emotions": emotions, "seed": int(seed), "param_grid": grid, "scoring": svm.SCORING,
        "inner_cv": "speaker-grouped over the fold's training speakers: LeaveOneGroupOut with at most "
                    f"{MAX_INNER_SPLITS} speakers, else GroupKFold({MAX_INNER_SPLITS})",
        "nan_policy": NAN_POLICY,
    }
    command = command or _command(corpus, root, feature, classifier, proto.name, seed, speaker_norm,
                                  class_weight, emotions)
    exclusion = {"n": int(len(excluded)), "n_rows": int(len(manifest)),
                 "by_status": {str(k): int(v) for k, v in excluded["status"].value_counts().items()},
                 "utterances": excluded[["utterance_id", "status", "status_detail"]].to_dict("records")}
    writer = RunStore(runs).start_run(corpus, system, config, labels, command, kind="baseline", seed=int(seed),
                                      fingerprint=data_fp, resume=resume,
                                      extra={"feature": feature, "classifier": classifier,
                                             "protocol": proto.name, "speaker_norm": bool(speaker_norm),
                                             "n_features": int(X.shape[1]), "n_used": int(len(X)),
                                             "excluded": exclusion})
    done = set(writer.finished_folds())
    if done:
        say(f"resuming run {writer.run_id}: {len(done)} of {len(folds)} folds already finished")
    for fold in folds:
        if fold.name in done:
            continue
        # Guard the contract run_fold relies on: the held-out group is absent from training.
        if fold.name in set(used[proto.column].astype(str).to_numpy()[fold.train]):
            raise svm.BaselineError(f"protocol {proto.name} put {fold.name!r} in its own training rows")
        inner_cv(speakers[fold.train])  # fails early, naming the problem, if a fold has <2 speakers
        preds, info, search = run_fold(fold, X, y, speakers, ids, labels, classifier=classifier, seed=int(seed),
                                       class_weight=class_weight, jobs=int(jobs))
        writer.write_fold(fold.name, preds, info)
        fold_ua = metrics.unweighted_accuracy(preds["true"], preds["predicted"])
        say(f"fold {fold.name}: n_test={len(fold.test)} UA={fold_ua:.3f} {info['best_params']} "
            f"({info['timings']['fold_s']:.1f} s)")
        if on_fold is not None:
            on_fold(fold, search)

    fold_t = [writer.fold_info(f.name)["timings"] for f in folds]
    ms = float(sum(t["model_selection_s"] for t in fold_t))
    folds_s = float(sum(t["fold_s"] for t in fold_t))
    total = load_s + folds_s
    timings = {
        "load_features_s": load_s,
        "model_selection_s": ms,
        "refit_s": float(sum(t["refit_s"] for t in fold_t)),
        "predict_s": float(sum(t["predict_s"] for t in fold_t)),
        "folds_s": folds_s,
        "total_s": total,
        "model_selection_share": ms / total if total > 0 else None,
        "wall_s_this_invocation": time.perf_counter() - t_start,
        "jobs": int(jobs),
        "folds_resumed": sorted(done),
    }
    path = writer.finish(timings=timings)
    record, predictions = load_run(path)
    return RunResult(run_id=writer.run_id, corpus=corpus, system=system, path=path, record=record,
                     predictions=predictions, summary=metrics.summarize(predictions), excluded=excluded,
                     n_rows=int(len(manifest)), resumed_folds=sorted(done))


__all__ = ["run_baseline", "run_fold", "RunResult", "system_name", "canonical_feature", "NAN_POLICY",
           "KNOWN_FEATURES"]
