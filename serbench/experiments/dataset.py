"""The data a run's fold tasks read, and the one builder of the store's predictions table.

A :class:`Dataset` is what the client loads once (from the feature cache) and an executor
ships to its workers once per run: the usable utterances in a fixed order, their classes,
speakers and groups, and the model inputs (a feature matrix, or one array per utterance).
It holds no paths: a worker needs neither the corpus nor the cache.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from serbench.errors import SerbenchError


class DatasetError(SerbenchError):
    """The corpus gives nothing a system can be trained on."""


@dataclass
class Dataset:
    """Usable utterances of one corpus and one input type, in manifest order.

    ``inputs``: ``(n, d)`` float64 features (baselines) or a list of ``n`` arrays
    ``(3, 60, T_i)`` (log-mel, deep systems). ``y (n,)`` int64 class indices into ``labels``;
    ``speakers``, ``utterance_ids`` and ``groups`` (the protocol's column) ``(n,)`` str.
    ``fingerprint`` identifies the content (resume only continues a run on the same data).
    ``meta``: what the inputs are (feature set, normalization), for the run record.
    """

    corpus: str
    labels: list[str]
    y: np.ndarray
    speakers: np.ndarray
    utterance_ids: np.ndarray
    inputs: Any
    fingerprint: str
    groups: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.y)
        for name in ("speakers", "utterance_ids"):
            if len(getattr(self, name)) != n:
                raise DatasetError(f"dataset {name} has {len(getattr(self, name))} rows, labels {n}")
        if len(self.inputs) != n:
            raise DatasetError(f"dataset inputs have {len(self.inputs)} rows, labels {n}")
        if n == 0:
            raise DatasetError(f"no usable utterances in {self.corpus}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    def true_labels(self, rows: np.ndarray) -> np.ndarray:
        """The emotion names of ``rows``."""
        return np.asarray(self.labels)[self.y[np.asarray(rows, dtype=np.int64)]]

    # ---- sharing with local worker processes (no pickle: .npy files, read memory-mapped) ----
    def save_shared(self, folder: str | Path) -> None:
        """Write the dataset into ``folder`` as ``.npy`` arrays and JSON, for :meth:`load_shared`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"y": self.y, "speakers": self.speakers.astype(str), "utterance_ids": self.utterance_ids.astype(str)}
        if self.groups is not None:
            arrays["groups"] = np.asarray(self.groups).astype(str)
        if isinstance(self.inputs, np.ndarray):
            arrays["inputs"] = self.inputs
            shapes = None
        else:  # one array per utterance: stored end to end, with their shapes
            shapes = [list(np.shape(a)) for a in self.inputs]
            arrays["inputs"] = (np.concatenate([np.asarray(a).ravel() for a in self.inputs]) if len(self.inputs)
                                else np.zeros(0, dtype=np.float32))
        for name, arr in arrays.items():
            np.save(folder / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
        info = {"corpus": self.corpus, "labels": list(self.labels), "fingerprint": self.fingerprint,
                "meta": self.meta, "shapes": shapes, "has_groups": self.groups is not None}
        (folder / "dataset.json").write_text(json.dumps(info, default=str), encoding="utf-8")

    @classmethod
    def load_shared(cls, folder: str | Path) -> "Dataset":
        """A dataset written by :meth:`save_shared`; its inputs are memory-mapped (read-only)."""
        folder = Path(folder)
        info = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
        load = (lambda name, mmap=None: np.load(folder / f"{name}.npy", mmap_mode=mmap, allow_pickle=False))
        flat = load("inputs", "r")
        if info["shapes"] is None:
            inputs: Any = flat
        else:
            inputs, start = [], 0
            for shape in info["shapes"]:
                size = int(np.prod(shape))
                inputs.append(flat[start:start + size].reshape(shape))
                start += size
        return cls(corpus=info["corpus"], labels=list(info["labels"]), y=load("y"), speakers=load("speakers"),
                   utterance_ids=load("utterance_ids"), inputs=inputs, fingerprint=info["fingerprint"],
                   groups=load("groups") if info["has_groups"] else None, meta=info["meta"])


@dataclass
class FoldOutput:
    """What a fold task returns: test scores, the decision, and what to record.

    ``scores (n_test, n_classes)`` float: probabilities or decision scores, columns in
    ``Dataset.labels`` order (NaN for a class the fold's model never saw). ``predicted
    (n_test,)`` int class indices (a system's own decision, e.g. the SVM's one-vs-one vote;
    None = argmax of ``scores``). ``info``: JSON-safe details (hyper-parameters, timings,
    training curves) stored with the fold.
    """

    scores: np.ndarray
    predicted: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def predictions_frame(data: Dataset, fold: str, test: np.ndarray, out: FoldOutput) -> pd.DataFrame:
    """The store's predictions of one fold: utterance_id, speaker, fold, true, predicted, score_<label>."""
    test = np.asarray(test, dtype=np.int64)
    scores = np.asarray(out.scores, dtype=np.float64)
    if scores.shape != (len(test), data.n_classes):
        raise DatasetError(f"fold {fold}: scores have shape {scores.shape}, expected {(len(test), data.n_classes)}")
    if out.predicted is None:
        if np.isnan(scores).all(axis=1).any():
            raise DatasetError(f"fold {fold}: a test utterance has no finite score to decide on")
        decided = np.nanargmax(scores, axis=1)
    else:
        decided = np.asarray(out.predicted, dtype=np.int64)
        if decided.shape != (len(test),):
            raise DatasetError(f"fold {fold}: {decided.shape} predictions for {len(test)} test utterances")
    frame = pd.DataFrame({
        "utterance_id": data.utterance_ids[test].astype(str),
        "speaker": data.speakers[test].astype(str),
        "fold": str(fold),
        "true": data.true_labels(test),
        "predicted": np.asarray(data.labels)[decided],
    })
    for j, label in enumerate(data.labels):
        frame[f"score_{label}"] = scores[:, j]
    return frame


def label_indices(emotions: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Emotion names -> ``(n,)`` int64 indices in ``labels`` order."""
    index = {lab: i for i, lab in enumerate(labels)}
    return np.array([index[str(e)] for e in emotions], dtype=np.int64)


__all__ = ["Dataset", "DatasetError", "FoldOutput", "predictions_frame", "label_indices"]
