"""Fixtures for the feature tests: a tiny demo-layout corpus and cheap probe feature sets.

The probe sets compute a few statistics of the signal and count their calls, so the
cache mechanics (hit, miss, invalidation, resume) are tested in milliseconds without
openSMILE; the openSMILE sets are tested on the same tiny corpus where it matters.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serbench.features.registry import FeatureSet, Kind, register, unregister

extract_mod = importlib.import_module("serbench.features.extract")  # the module, not the function it exports

SR = 16000


def write_wav(path: Path, signal: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal, sr, subtype=subtype)
    return path


def tone_signal(seed: int, seconds: float = 0.5, sr: int = SR) -> np.ndarray:
    """A sine (frequency from the seed) plus a little noise, amplitude ~0.3."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return 0.3 * np.sin(2 * np.pi * (150 + 40 * seed) * t) + 0.02 * rng.standard_normal(t.size)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Demo layout ``<speaker>/<emotion>/<id>.wav``: 2 speakers x 2 emotions x 2 files of 0.5 s = 8 files."""
    root = tmp_path / "corpus"
    seed = 0
    for speaker in ("spk1", "spk2"):
        for emotion in ("angry", "sad"):
            for i in range(2):
                write_wav(root / speaker / emotion / f"t{i}.wav", tone_signal(seed))
                seed += 1
    return root


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


class ProbeState:
    """Shared by the probe extractors: counts calls and can simulate a crash."""

    def __init__(self) -> None:
        self.calls = 0
        self.crash_after: int | None = None  # raise KeyboardInterrupt on call number crash_after + 1
        self.crash_with: type[BaseException] = KeyboardInterrupt
        self.fail_peak_above: float | None = None  # raise ValueError for louder signals (an extractor bug)


class _ProbeBackend:
    def __init__(self, state: ProbeState, kind: Kind, version: str = "1") -> None:
        self.state = state
        self.kind = kind
        self.version = version
        self.params = {"stats": ["mean", "std", "max", "min"]}

    def libraries(self) -> dict[str, str]:
        return {}

    def feature_names(self) -> list[str]:
        return ["mean", "std", "max", "min"]

    def make_extractor(self):
        state, kind = self.state, self.kind

        def probe(signal: np.ndarray, sr: int) -> np.ndarray:
            if state.crash_after is not None and state.calls >= state.crash_after:
                raise state.crash_with()
            state.calls += 1
            x = np.asarray(signal, dtype=np.float64)
            if state.fail_peak_above is not None and np.abs(x).max() > state.fail_peak_above:
                raise ValueError("probe cannot handle loud input")
            v = np.array([x.mean(), x.std(), x.max(), x.min()])
            if kind is Kind.VECTOR:
                return v
            # An array set: (2, 3, T) with T from the length, like a tiny spectrogram.
            frames = max(1, x.size // 1600)
            return np.stack([np.tile(v[:3, None], frames), -np.tile(v[:3, None], frames)]).astype(np.float32)

        return probe


@pytest.fixture
def probe():
    """Registers vector set ``Probe`` and array set ``ProbeArr``; yields their shared state."""
    state = ProbeState()
    register(FeatureSet("Probe", Kind.VECTOR, "test probe", lambda: _ProbeBackend(state, Kind.VECTOR)))
    register(FeatureSet("ProbeArr", Kind.ARRAY, "test probe array", lambda: _ProbeBackend(state, Kind.ARRAY)))
    yield state
    unregister("Probe")
    unregister("ProbeArr")
    for k in [k for k in extract_mod._EXTRACTORS if k[0] in ("Probe", "ProbeArr")]:
        del extract_mod._EXTRACTORS[k]


@pytest.fixture
def wav():
    """``wav(path, signal, sr=16000, subtype='PCM_16') -> path``."""
    return write_wav


@pytest.fixture
def make_tone():
    """``make_tone(seed, seconds=0.5) -> float64 (n,)``."""
    return tone_signal


@pytest.fixture
def models(tmp_path, monkeypatch):
    """An empty models root for tiny SSL upstreams (``SERBENCH_MODELS``), on the CPU, default batch budget."""
    root = tmp_path / "models"
    root.mkdir()
    monkeypatch.setenv("SERBENCH_MODELS", str(root))
    monkeypatch.setenv("SERBENCH_SSL_DEVICE", "cpu")
    monkeypatch.delenv("SERBENCH_SSL_BATCH_S", raising=False)
    return root
