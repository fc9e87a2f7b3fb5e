"""A fake results store in tmp_path, following CONTRIBUTING's on-disk format.

Predictions are synthetic and deterministic: for each speaker (= LOSO fold) and label,
``per_class`` utterances of which the first ``round(acc * per_class)`` are right and the rest
are predicted as the next label. Utterance ids are shared across systems so they pair.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

LABELS = ["angry", "happy", "neutral", "sad"]
SPEAKERS = ["s1", "s2", "s3", "s4"]


def synth_predictions(acc: dict[str, float] | float, *, labels=LABELS, speakers=SPEAKERS,
                      per_class: int = 10) -> pd.DataFrame:
    """Predictions with per-speaker accuracy ``acc`` (a dict by speaker, or one value for all)."""
    rows = []
    for spk in speakers:
        a = acc[spk] if isinstance(acc, dict) else acc
        k = round(a * per_class)
        for li, label in enumerate(labels):
            for i in range(per_class):
                pred = label if i < k else labels[(li + 1) % len(labels)]
                row = {"utterance_id": f"{spk}_{label}_{i}", "speaker": spk, "fold": spk,
                       "true": label, "predicted": pred}
                for lab in labels:
                    row[f"score_{lab}"] = 1.0 if lab == pred else 0.0
                rows.append(row)
    return pd.DataFrame(rows)


class FakeStore:
    """Builds ``<root>/<corpus>/<system>/<run_id>[.partial]/`` run folders."""

    synth = staticmethod(synth_predictions)

    def __init__(self, root: Path, corpus: str = "casia") -> None:
        self.root = root
        self.corpus = corpus

    def add(self, system: str, run_id: str = "20260101T000000", *, acc: dict[str, float] | float = 0.5,
            predictions: pd.DataFrame | None = None, kind: str | None = None, config: dict | None = None,
            metrics: dict | None = None, partial: bool = False, finished: str | None = None,
            corpus: str | None = None) -> Path:
        corpus = corpus or self.corpus
        preds = predictions if predictions is not None else synth_predictions(acc)
        folder = self.root / corpus / system / (run_id + (".partial" if partial else ""))
        folder.mkdir(parents=True)
        preds.to_parquet(folder / "predictions.parquet", index=False)
        record = {
            "run_id": run_id, "corpus": corpus, "system": system,
            "kind": kind or ("deep" if "-N" in system else "baseline"),
            "command": f"serbench fake {system}", "config": config or {},
            "labels": sorted(preds["true"].unique()), "seed": 0, "versions": {}, "git_commit": None,
            "started": finished or "2026-01-01T00:00:00+00:00", "finished": finished or "2026-01-01T00:00:00+00:00",
            "timings": {}, "folds": [], "metrics": metrics or {},
            "status": "partial" if partial else "complete",
        }
        (folder / "run.json").write_text(json.dumps(record))
        return folder


@pytest.fixture
def store(tmp_path: Path) -> FakeStore:
    return FakeStore(tmp_path / "runs")
