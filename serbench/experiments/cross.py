"""Cross-corpus evaluation, the data side: train on one corpus, test on another, as ONE fold of the harness.

A cross-corpus run ``A->B`` is a :class:`~serbench.experiments.dataset.Dataset` holding corpus A's and
corpus B's usable rows restricted to the emotions they share, and one
:class:`~serbench.experiments.protocol.Fold` named ``A->B`` whose training rows are all of A's and
whose test rows are all of B's. Every system runs it unchanged: ``fit`` sees A's rows only (the
SVM's speaker-grouped inner CV therefore holds out A's speakers only), ``predict`` sees B's.

* Labels: each corpus maps its own labels (EMO-DB's ``W``, CASIA's ``angry``) to serbench's
  canonical emotions; a run uses the emotions both corpora have (:func:`shared_emotions`), and
  records each corpus's mapping of own labels to them (:func:`label_mapping`).
* Speakers are stored as ``<corpus>:<speaker>``, so two corpora with the same speaker names never
  share a speaker (the predictions' ``speaker`` column holds these names).
* ``adapt`` (label-free, named in the run's stored name and identity): ``none`` fits nothing on
  B; ``corpus`` z-scores each corpus with its own mean and standard deviation (over its rows kept
  for the run); ``speaker`` z-scores each speaker of each corpus with that speaker's own statistics.
  Both use no labels and apply before the fold, as a deployed system would normalize its own
  (unlabelled) recordings.

Metrics come from the stored predictions every time (:func:`cross_metrics`): WA, UA, UA's 95 %
confidence interval by a speaker-level bootstrap of the test corpus (:func:`speaker_bootstrap`),
and UA per test speaker (:func:`per_speaker`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from serbench.errors import SerbenchError
from serbench.experiments.dataset import Dataset, label_indices
from serbench.experiments.metrics import unweighted_accuracy, weighted_accuracy
from serbench.experiments.protocol import Fold
from serbench.experiments.store import fingerprint

#: How a cross-corpus run adapts to the test corpus (label-free); ``none`` fits nothing on it.
ADAPT = ("none", "corpus", "speaker")
PROTOCOL_PREFIX = "cross:"
#: Bootstrap draws and seed of the confidence interval unless told otherwise.
N_BOOT = 1000
BOOT_SEED = 0
LEVEL = 0.95

_NAME = re.compile(r"^(?P<base>.+)-from-(?P<train>[a-z0-9][a-z0-9_-]*?)(?:-adapt-(?P<adapt>corpus|speaker))?$")


class CrossError(SerbenchError):
    """Corpora that cannot be evaluated across (no shared emotions, a corpus lacking a named emotion...)."""


# ---------------------------------------------------------------- names

def protocol_name(train: str, test: str) -> str:
    """``cross:emodb->casia``: the protocol of a run trained on ``train`` and tested on ``test``."""
    return f"{PROTOCOL_PREFIX}{train}->{test}"


def fold_name(train: str, test: str) -> str:
    """``emodb->casia``: the one fold of a cross-corpus run."""
    return f"{train}->{test}"


def parse_protocol(protocol: object) -> tuple[str, str] | None:
    """``(train, test)`` of a ``cross:A->B`` protocol; None for any other protocol."""
    if not isinstance(protocol, str) or not protocol.startswith(PROTOCOL_PREFIX) or "->" not in protocol:
        return None
    train, test = protocol[len(PROTOCOL_PREFIX):].split("->", 1)
    return train, test


def check_adapt(adapt: str) -> str:
    if adapt not in ADAPT:
        raise CrossError(f"--adapt {adapt!r}: choose one of {', '.join(ADAPT)}")
    return adapt


def stored_name(base: str, train: str, adapt: str = "none") -> str:
    """The store's system folder of a cross-corpus run, under the TEST corpus's folder:
    ``IS10-svm-linear-from-emodb``, ``IS10-svm-linear-from-emodb-adapt-corpus``."""
    check_adapt(adapt)
    return f"{base}-from-{train}" + ("" if adapt == "none" else f"-adapt-{adapt}")


def parse_stored_name(name: str) -> tuple[str, str, str] | None:
    """``(base, train corpus, adapt)`` of a cross-corpus system folder name, or None (an in-corpus run)."""
    m = _NAME.match(name)
    if m is None:
        return None
    return m["base"], m["train"], m["adapt"] or "none"


def is_cross_name(name: str) -> bool:
    """Whether a system folder of the store holds cross-corpus runs (the in-corpus reports skip those)."""
    found = parse_stored_name(name)
    if found is None:
        return False
    from serbench.corpora import check_corpus_name

    try:
        check_corpus_name(found[1])
    except SerbenchError:
        return False
    return True


# ---------------------------------------------------------------- labels

def emotions_of(manifest: pd.DataFrame) -> list[str]:
    """The canonical emotions a manifest holds, sorted."""
    return sorted(set(manifest["emotion"].astype(str)))


def shared_emotions(manifests: Mapping[str, pd.DataFrame], emotions: Sequence[str] | None = None) -> list[str]:
    """The emotions every corpus has (``emotions``: these, each checked against every corpus), sorted.

    Raises :class:`CrossError` in one line when a named emotion is missing from a corpus, or when
    the corpora share fewer than two emotions (nothing to classify).
    """
    have = {name: set(emotions_of(m)) for name, m in manifests.items()}
    if emotions:
        from serbench.corpora import EMOTIONS

        unknown = [e for e in emotions if e not in EMOTIONS]
        if unknown:
            raise CrossError(f"--emotions {','.join(emotions)}: {unknown[0]!r} is not a canonical emotion; choose "
                             f"from {', '.join(EMOTIONS)}")
        for name, got in have.items():
            lacking = [e for e in emotions if e not in got]
            if lacking:
                raise CrossError(f"--emotions {','.join(emotions)}: corpus {name} has no {', '.join(lacking)} "
                                 f"utterances (it has {', '.join(sorted(got))}); leave {', '.join(lacking)} out")
        chosen = sorted(set(emotions))
    else:
        chosen = sorted(set.intersection(*have.values())) if have else []
    if len(chosen) < 2:
        parts = "; ".join(f"{n}: {', '.join(sorted(e))}" for n, e in have.items())
        raise CrossError(f"corpora {', '.join(have)} share {len(chosen)} emotion(s) ({', '.join(chosen) or 'none'}); "
                         f"a cross-corpus run needs at least 2 ({parts}); choose corpora with common emotions")
    return chosen


def label_mapping(manifest: pd.DataFrame, shared: Sequence[str]) -> dict:
    """``{"used": {own label: emotion}, "dropped": {own label: emotion}, "n": {emotion: rows used}}`` of one corpus."""
    own = manifest["label"].astype(str).to_numpy() if "label" in manifest else manifest["emotion"].astype(str).to_numpy()
    emo = manifest["emotion"].astype(str).to_numpy()
    used, dropped = {}, {}
    for lab, e in sorted(set(zip(own.tolist(), emo.tolist()))):
        (used if e in shared else dropped)[lab] = e
    keep = np.isin(emo, list(shared))
    counts = pd.Series(emo[keep]).value_counts()
    return {"used": used, "dropped": dropped, "n": {e: int(counts.get(e, 0)) for e in shared}}


def describe_mapping(corpus: str, mapping: Mapping) -> str:
    """One line: ``emodb: W->angry, F->happy ... (dropped: L->boredom, E->disgust)``."""
    used = ", ".join(f"{k}->{v}" for k, v in mapping["used"].items())
    dropped = ", ".join(f"{k}->{v}" for k, v in mapping["dropped"].items())
    return f"{corpus}: {used}" + (f" (left out: {dropped})" if dropped else "")


# ---------------------------------------------------------------- the dataset

def adapt_inputs(X: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Z-score the rows of each group with that group's own mean and standard deviation (label-free).

    ``X`` (n, d) float; ``groups`` (n,): the corpus (``adapt=corpus``) or the speaker
    (``adapt=speaker``) of each row. Constant features within a group are centred only.
    """
    from serbench.experiments.normalize import normalize_per_speaker

    return normalize_per_speaker(np.asarray(X, dtype=np.float64), np.asarray(groups).astype(str))


def adapt_arrays(arrays: Sequence[np.ndarray], groups: np.ndarray) -> list[np.ndarray]:
    """:func:`adapt_inputs` for one ``(3, 60, T)`` log-mel array per utterance (per channel and band)."""
    from serbench.experiments.normalize import normalize_mels_per_speaker

    return normalize_mels_per_speaker(list(arrays), np.asarray(groups).astype(str))


@dataclass
class CrossData:
    """One cross-corpus run's data: ``data`` (train rows first), its one ``fold``, each corpus's label
    ``mapping`` and its ``excluded`` rows (features not 'ok')."""

    data: Dataset
    fold: Fold
    mapping: dict
    excluded: dict = field(default_factory=dict)
    n_rows: dict = field(default_factory=dict)


def combine(train: str, train_data: Dataset, test: str, test_data: Dataset, *, emotions: Sequence[str],
            adapt: str = "none", mapping: Mapping | None = None) -> CrossData:
    """The cross-corpus dataset of two single-corpus datasets restricted to ``emotions`` (already filtered).

    ``train_data``/``test_data`` come from :func:`serbench.experiments.inputs.feature_dataset` (or
    ``melseg_dataset``) without speaker normalization; their inputs must have the same width.
    """
    check_adapt(adapt)
    if train == test:
        raise CrossError(f"--train {train} --test {test}: a corpus against itself is the in-corpus protocol (LOSO); "
                         "run `serbench baseline`/`serbench run` for it")
    labels = sorted(emotions)
    matrix = isinstance(train_data.inputs, np.ndarray)
    if matrix != isinstance(test_data.inputs, np.ndarray):
        raise CrossError(f"{train} and {test}: one holds a feature matrix, the other per-utterance arrays")
    if matrix and train_data.inputs.shape[1] != test_data.inputs.shape[1]:
        raise CrossError(f"{train} has {train_data.inputs.shape[1]} features, {test} {test_data.inputs.shape[1]}: "
                         "not the same feature set; re-extract both with this serbench")
    parts = {}
    for name, d in ((train, train_data), (test, test_data)):
        true = d.true_labels(np.arange(len(d)))
        outside = sorted(set(true) - set(labels))
        if outside:
            raise CrossError(f"{name}: rows of {outside} reached the cross-corpus data; filter to {labels} first")
        if len(d) == 0:
            raise CrossError(f"{name}: no usable rows of {', '.join(labels)}")
        spk = np.array([f"{name}:{s}" for s in d.speakers.astype(str)]).astype(str)
        inputs = d.inputs
        if adapt != "none":
            groups = np.full(len(d), name) if adapt == "corpus" else spk
            inputs = adapt_inputs(inputs, groups) if matrix else adapt_arrays(inputs, groups)
        parts[name] = (true, spk, d.utterance_ids.astype(str), inputs)
    (ytr, str_, idtr, xtr), (yte, ste, idte, xte) = parts[train], parts[test]
    y = label_indices(np.concatenate([ytr, yte]), labels)
    speakers = np.concatenate([str_, ste])
    ids = np.concatenate([idtr, idte])
    dup = pd.Index(ids)[pd.Index(ids).duplicated()]
    if len(dup):   # the two corpora name utterances alike: keep them apart in the predictions
        ids = np.concatenate([np.char.add(f"{train}:", idtr), np.char.add(f"{test}:", idte)])
    inputs = np.vstack([xtr, xte]) if matrix else [*xtr, *xte]
    n_train = len(ytr)
    fold = Fold(name=fold_name(train, test), train=np.arange(n_train, dtype=np.int64),
                test=np.arange(n_train, len(y), dtype=np.int64))
    fp = fingerprint(train_data.fingerprint, test_data.fingerprint, labels, [f"adapt={adapt}", train, test])
    meta = {"feature": train_data.meta.get("feature"), "adapt": adapt, "train": train, "test": test,
            "n_train": int(n_train), "n_test": int(len(y) - n_train), "speaker_norm": False}
    if matrix:
        meta["n_features"] = int(inputs.shape[1])
    meta["load_s"] = float(train_data.meta.get("load_s") or 0.0) + float(test_data.meta.get("load_s") or 0.0)
    data = Dataset(corpus=test, labels=labels, y=y, speakers=speakers, utterance_ids=ids, inputs=inputs,
                   fingerprint=fp, groups=speakers, meta=meta)
    return CrossData(data, fold, dict(mapping or {}))


def restrict_table(table: tuple[pd.DataFrame, pd.DataFrame], emotions: Sequence[str]
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A feature table ``(X, manifest)`` (or ``(arrays, manifest)``) kept to the rows of ``emotions``."""
    X, manifest = table
    keep = manifest["emotion"].astype(str).isin(list(emotions)).to_numpy()
    manifest = manifest[keep].reset_index(drop=True)
    ids = set(manifest["utterance_id"].astype(str))
    if isinstance(X, pd.DataFrame):
        X = X[X.index.astype(str).isin(ids)]
    else:
        X = {k: v for k, v in X.items() if str(k) in ids}
    return X, manifest


# ---------------------------------------------------------------- metrics from predictions

def _counts(predictions: pd.DataFrame) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Speakers, classes, and per (speaker, class) counts of test rows and correct ones: ``(S, C)`` each."""
    true = predictions["true"].astype(str).to_numpy()
    pred = predictions["predicted"].astype(str).to_numpy()
    spk = predictions["speaker"].astype(str).to_numpy()
    speakers = sorted(set(spk.tolist()))
    classes = sorted(set(true.tolist()))
    si = {s: i for i, s in enumerate(speakers)}
    ci = {c: i for i, c in enumerate(classes)}
    total = np.zeros((len(speakers), len(classes)))
    correct = np.zeros_like(total)
    rows = np.array([si[s] for s in spk], dtype=np.int64)
    cols = np.array([ci[c] for c in true], dtype=np.int64)
    np.add.at(total, (rows, cols), 1.0)
    np.add.at(correct, (rows, cols), (true == pred).astype(float))
    return speakers, classes, total, correct


def _ua(total: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """UA per row of ``(B, C)`` counts: the mean recall over the classes present in that row."""
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(total > 0, correct / np.where(total > 0, total, 1.0), np.nan)
    return np.nanmean(recall, axis=-1)


def speaker_bootstrap(predictions: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = BOOT_SEED,
                      level: float = LEVEL) -> dict:
    """UA and its ``level`` confidence interval by resampling the TEST speakers with replacement.

    Each of ``n_boot`` draws picks as many speakers as the test corpus has (numpy's
    ``default_rng(seed)``), pools their utterances (a speaker drawn twice counts twice) and
    computes UA over the classes present; the interval is the percentile interval of the draws.
    Returns ``{"ua", "low", "high", "level", "n_boot", "seed", "n_speakers", "unit": "speaker"}``
    (fractions). With one test speaker the interval is that speaker's UA (no spread to estimate).
    """
    if n_boot < 1:
        raise CrossError(f"--n-boot {n_boot}: give at least 1 bootstrap draw")
    if not 0 < level < 1:
        raise CrossError(f"level {level}: give a fraction between 0 and 1")
    speakers, _classes, total, correct = _counts(predictions)
    point = float(_ua(total.sum(0), correct.sum(0)))
    rng = np.random.default_rng(seed)
    S = len(speakers)
    draws = rng.integers(0, S, size=(n_boot, S))
    weights = np.zeros((n_boot, S))
    np.add.at(weights, (np.repeat(np.arange(n_boot), S), draws.ravel()), 1.0)
    uas = _ua(weights @ total, weights @ correct)
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(uas, [alpha, 1.0 - alpha])
    return {"ua": point, "low": float(low), "high": float(high), "level": float(level), "n_boot": int(n_boot),
            "seed": int(seed), "n_speakers": int(S), "unit": "speaker"}


def per_speaker(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per test speaker: ``speaker, n, wa, ua`` (fractions), sorted by speaker."""
    rows = []
    for spk, g in predictions.groupby("speaker", sort=True):
        rows.append({"speaker": str(spk), "n": int(len(g)), "wa": weighted_accuracy(g["true"], g["predicted"]),
                     "ua": unweighted_accuracy(g["true"], g["predicted"])})
    return pd.DataFrame(rows, columns=["speaker", "n", "wa", "ua"])


def cross_metrics(predictions: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = BOOT_SEED,
                  level: float = LEVEL) -> dict:
    """``{"wa", "ua", "ua_low", "ua_high", "n", "bootstrap": {...}, "per_speaker": DataFrame}`` of a run's
    predictions (a cross-corpus run's, or an in-corpus run's for the diagonal: its speakers are resampled too)."""
    if predictions.empty:
        raise CrossError("no predictions to evaluate")
    boot = speaker_bootstrap(predictions, n_boot=n_boot, seed=seed, level=level)
    return {"wa": weighted_accuracy(predictions["true"], predictions["predicted"]),
            "ua": boot["ua"], "ua_low": boot["low"], "ua_high": boot["high"], "n": int(len(predictions)),
            "bootstrap": boot, "per_speaker": per_speaker(predictions)}


__all__ = ["ADAPT", "CrossData", "CrossError", "N_BOOT", "BOOT_SEED", "adapt_inputs", "adapt_arrays", "check_adapt",
           "combine", "cross_metrics", "describe_mapping", "emotions_of", "fold_name", "is_cross_name",
           "label_mapping", "parse_protocol", "parse_stored_name", "per_speaker", "protocol_name", "restrict_table",
           "shared_emotions", "speaker_bootstrap", "stored_name"]
