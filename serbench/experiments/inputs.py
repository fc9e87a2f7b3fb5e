"""Client side: the feature cache of a corpus as a :class:`~serbench.experiments.dataset.Dataset`.

* :func:`feature_dataset`: a functional feature set (IS10, MFCC, ...) as an ``(n, d)`` matrix
  under the NaN policy (:data:`NAN_POLICY`);
* :func:`melseg_dataset`: the 3-channel log-mel of every usable utterance, one array each.

Both optionally z-score each speaker with that speaker's own statistics
(:mod:`serbench.experiments.normalize`, label-free), and both return the rows they left out.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from serbench.errors import SerbenchError
from serbench.experiments.dataset import Dataset, DatasetError, label_indices
from serbench.experiments.protocol import Protocol
from serbench.experiments.store import fingerprint
from serbench.features.handle import CorpusHandle

#: The NaN policy, printed by the CLI and written into every baseline's run record.
NAN_POLICY = ("rows whose features are not 'ok' (extraction status 'nan' or 'failed') are excluded "
              "from training and testing; they are counted and listed in run.json under 'excluded'")

FeatureLoader = Callable[..., tuple[pd.DataFrame, pd.DataFrame]]


class InputError(SerbenchError):
    """The feature cache does not give what the experiment needs."""


def _excluded_table(manifest: pd.DataFrame, ok: np.ndarray, status: np.ndarray, detail: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "utterance_id": manifest["utterance_id"].astype(str).to_numpy()[~ok],
        "speaker": manifest["speaker"].astype(str).to_numpy()[~ok],
        "emotion": manifest["emotion"].astype(str).to_numpy()[~ok],
        "status": status[~ok], "status_detail": detail[~ok],
    })


def _align(X: pd.DataFrame, manifest: pd.DataFrame, feature: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Features as a float array in manifest row order; raise if they do not describe the same utterances."""
    manifest = manifest.reset_index(drop=True)
    ids = manifest["utterance_id"].astype(str)
    index = pd.Index(X.index.astype(str))
    if len(index) != len(ids) or not index.equals(pd.Index(ids)):
        if index.has_duplicates or set(index) != set(ids):
            raise InputError(f"{feature} features hold {len(index)} rows but the manifest {len(ids)}; the feature "
                             "cache does not match the corpus: re-run `serbench extract`")
        X = X.set_axis(index).loc[ids.to_numpy()]
    try:
        values = X.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{feature} features are not numeric ({exc})") from exc
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
        raise InputError(f"{int(bad.sum())} row(s) of {feature} are marked 'ok' but hold NaN/inf, e.g. {ids}; the "
                         "feature cache is inconsistent: delete it (see --cache) and re-extract")
    return ok, _excluded_table(manifest, ok, status, detail)


def _groups(used: pd.DataFrame, protocol: Protocol | None, corpus: str) -> np.ndarray | None:
    return None if protocol is None else protocol.groups(used, corpus)


def load_feature_table(corpus: CorpusHandle, feature: str, *, load_features: FeatureLoader | None = None,
                       columns: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(X, manifest)`` of ``feature`` from the corpus' cache (extracting what it lacks); only ``columns``
    when given (the others are not read).

    ``load_features(corpus, feature, *, root, cache, jobs, emotions) -> (X, manifest)`` replaces
    :func:`serbench.features.load` (tests).
    """
    if load_features is not None:
        X, manifest = load_features(corpus.name, feature, root=corpus.root, cache=corpus.cache, jobs=corpus.jobs,
                                    emotions=list(corpus.emotions) if corpus.emotions else None)
        return (X if columns is None else X[list(columns)]), manifest
    return corpus.features(feature, columns=columns)


def feature_dataset(corpus: CorpusHandle, feature: str, *, protocol: Protocol | None = None,
                    speaker_norm: bool = False, load_features: FeatureLoader | None = None,
                    table: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> tuple[Dataset, pd.DataFrame]:
    """``(dataset, excluded)``: the usable rows of ``feature`` as an ``(n, d)`` float64 matrix.

    ``table``: the ``(X, manifest)`` of :func:`load_feature_table` when the caller has it already
    (both normalization variants of an experiment read one table).
    """
    t0 = time.perf_counter()
    X_df, manifest = table if table is not None else load_feature_table(corpus, feature, load_features=load_features)
    values, manifest = _align(X_df, manifest, feature)
    ok, excluded = _status(values, manifest, feature)
    if not ok.any():
        raise DatasetError(f"no usable {feature} rows for {corpus.name}: all {len(ok)} rows failed extraction")
    used = manifest[ok].reset_index(drop=True)
    X = values[ok]
    emotions_used = used["emotion"].astype(str).to_numpy()
    labels = sorted(np.unique(emotions_used).tolist())
    groups = _groups(used, protocol, corpus.name)
    ids = used["utterance_id"].astype(str).to_numpy()
    fp = fingerprint(X, ids, emotions_used, groups if groups is not None else used["speaker"].astype(str).to_numpy(),
                     [f"speaker_norm={bool(speaker_norm)}"])
    speakers = used["speaker"].astype(str).to_numpy()
    if speaker_norm:
        from serbench.experiments.normalize import normalize_per_speaker

        X = normalize_per_speaker(X, speakers)
    data = Dataset(corpus=corpus.name, labels=labels, y=label_indices(emotions_used, labels), speakers=speakers,
                   utterance_ids=ids, inputs=X, fingerprint=fp, groups=groups,
                   meta={"feature": feature, "n_features": int(X.shape[1]), "n_rows": int(len(manifest)),
                         "speaker_norm": bool(speaker_norm), "load_s": time.perf_counter() - t0})
    return data, excluded


def melseg_dataset(corpus: CorpusHandle, *, protocol: Protocol | None = None, speaker_norm: bool = False,
                   table: tuple[dict, pd.DataFrame] | None = None) -> tuple[Dataset, pd.DataFrame]:
    """``(dataset, excluded)``: the ``(3, 60, T_i)`` float32 log-mel of every usable utterance.

    Utterances whose melseg is not 'ok' (e.g. shorter than one 25 ms window) are left out and
    listed in ``excluded``. With ``speaker_norm`` each (channel, band) is z-scored with the
    speaker's own frame statistics.
    """
    t0 = time.perf_counter()
    arrays, manifest = table if table is not None else corpus.arrays("melseg")
    status = manifest["status"].astype(str) if "status" in manifest else pd.Series("ok", index=manifest.index)
    ok = ((status == "ok") & manifest["utterance_id"].isin(list(arrays))).to_numpy()
    detail = (manifest["status_detail"].astype(str).to_numpy() if "status_detail" in manifest
              else np.full(len(manifest), ""))
    excluded = _excluded_table(manifest.reset_index(drop=True), ok, status.to_numpy(), detail)
    used = manifest.loc[ok].reset_index(drop=True)
    if used.empty:
        raise DatasetError(f"--corpus {corpus.name} --root {corpus.root}: no utterance has usable melseg features")
    ids = used["utterance_id"].astype(str).to_numpy()
    mels = [np.asarray(arrays[u], dtype=np.float32) for u in ids]
    speakers = used["speaker"].astype(str).to_numpy()
    emotions_used = used["emotion"].astype(str).to_numpy()
    labels = sorted(np.unique(emotions_used).tolist())
    groups = _groups(used, protocol, corpus.name)
    shapes = np.array([m.shape for m in mels], dtype=np.int64)
    sums = np.array([float(np.sum(m, dtype=np.float64)) for m in mels])
    fp = fingerprint(ids, shapes, sums, emotions_used, groups if groups is not None else speakers,
                     [f"speaker_norm={bool(speaker_norm)}"])
    if speaker_norm:
        from serbench.experiments.normalize import normalize_mels_per_speaker

        mels = normalize_mels_per_speaker(mels, speakers)
    data = Dataset(corpus=corpus.name, labels=labels, y=label_indices(emotions_used, labels), speakers=speakers,
                   utterance_ids=ids, inputs=mels, fingerprint=fp, groups=groups,
                   meta={"feature": "melseg", "n_rows": int(len(manifest)), "speaker_norm": bool(speaker_norm),
                         "load_s": time.perf_counter() - t0})
    return data, excluded


def excluded_record(excluded: pd.DataFrame, n_rows: int) -> dict:
    """run.json's ``excluded``: how many rows, by status, and which (utterance_id, status, detail)."""
    if excluded is None or excluded.empty:
        return {"n": 0, "n_rows": int(n_rows), "by_status": {}, "utterances": []}
    cols = [c for c in ("utterance_id", "status", "status_detail") if c in excluded]
    records = [{k: (None if pd.isna(v) else str(v)) for k, v in row.items()}
               for row in excluded[cols].to_dict("records")]
    return {"n": int(len(excluded)), "n_rows": int(n_rows),
            "by_status": {str(k): int(v) for k, v in excluded["status"].value_counts().items()},
            "utterances": records}


__all__ = ["load_feature_table", "feature_dataset", "melseg_dataset", "excluded_record", "NAN_POLICY", "InputError", "FeatureLoader"]
