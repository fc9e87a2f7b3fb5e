"""Shared test helpers: tiny synthesized WAV files (tests never read the shared real corpora)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def write_tone(path: Path, seconds: float = 0.2, sr: int = 16000, channels: int = 1,
               freq: float = 220.0, amplitude: float = 0.3, subtype: str = "PCM_16") -> Path:
    """Write a sine tone WAV (optionally multi-channel) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    x = amplitude * np.sin(2 * np.pi * freq * t)
    data = np.stack([x * (c + 1) / channels for c in range(channels)], axis=1) if channels > 1 else x
    sf.write(path, data, sr, subtype=subtype)
    return path


@pytest.fixture
def tone():
    return write_tone


def assert_one_line_error(result, *words) -> None:
    """A CLI result that failed with a usage error (exit 2) in one line starting 'error:', holding every word."""
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert text.startswith("error:") and len(text.splitlines()) == 1, text
    for w in words:
        assert w in text, text


@pytest.fixture
def one_line_error():
    """:func:`assert_one_line_error` (``one_line_error(cli_result, *words)``)."""
    return assert_one_line_error


@pytest.fixture
def toy_systems(monkeypatch):
    """Register the systems of ``tests/toy_systems.py``, importable by name in worker processes too."""
    import os
    import sys

    here = str(Path(__file__).resolve().parent)
    monkeypatch.syspath_prepend(here)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
    import toy_systems as module

    from serbench.systems import registry

    module.register_all()
    yield module
    for name in ("toy-mean", "toy-killer", "toy-slow"):
        registry.unregister(name)
    sys.modules.pop("toy_systems", None)


def synthetic_features(n_speakers: int = 4, per_class: int = 5, n_features: int = 6, classes=("angry", "neutral", "sad"),
                       speaker_offset: float = 2.0, seed: int = 0):
    """``(X, manifest)`` as :func:`serbench.features.load` returns them: class signal + speaker offset + noise."""
    import pandas as pd

    from serbench.corpora import MANIFEST_COLUMNS

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(len(classes), n_features)) * 1.5
    rows, feats = [], []
    for s in range(n_speakers):
        offset = rng.normal(size=n_features) * speaker_offset
        for k, c in enumerate(classes):
            for i in range(per_class):
                uid = f"spk{s}_{c}_{i}"
                rows.append({"utterance_id": uid, "path": f"/nowhere/{uid}.wav", "speaker": f"spk{s}",
                             "gender": "f", "emotion": c, "label": c[0], "text_id": str(i), "session": pd.NA,
                             "duration": 1.0, "sample_rate": 16000})
                feats.append(centers[k] + offset + rng.normal(size=n_features))
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).astype(MANIFEST_COLUMNS)
    manifest["status"] = "ok"
    manifest["status_detail"] = ""
    X = pd.DataFrame(np.vstack(feats), index=pd.Index(manifest["utterance_id"], name="utterance_id"),
                     columns=[f"f{j}" for j in range(n_features)])
    return X, manifest


def feature_loader(X, manifest):
    """A ``load_features`` stand-in returning ``(X, manifest)`` whatever it is asked for."""
    def load(corpus, feature, *, root, cache=None, jobs=1, emotions=None, **_):
        return X.copy(), manifest.copy()
    return load


@pytest.fixture
def make_features():
    """:func:`synthetic_features` (``make_features(**kw) -> (X, manifest)``)."""
    return synthetic_features


@pytest.fixture
def features():
    """``features(**kw) -> (X, manifest, loader)``: a synthetic feature matrix and a loader serving it."""
    def make(**kw):
        X, m = synthetic_features(**kw)
        return X, m, feature_loader(X, m)
    return make
