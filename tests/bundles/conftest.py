"""Fixtures of the model-bundle tests: a tiny synthesized corpus and bundles trained on it (CPU, seconds)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16000
EMOTIONS = ("angry", "sad")
SPEAKERS = (("spk1", 1.0), ("spk2", 1.1), ("spk3", 0.9))


def harmonic(seconds: float, emotion: str, shift: float = 1.0, k: int = 0, seed: int = 0) -> np.ndarray:
    """'angry': loud, high, buzzy; 'sad': quiet, low, smooth (separable from any of the feature sets)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = (260.0 if emotion == "angry" else 110.0) * shift * (1 + 0.03 * k)
    n_harm = 8 if emotion == "angry" else 2
    x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, n_harm + 1))
    x = (0.5 if emotion == "angry" else 0.1) * x / np.max(np.abs(x)) + 0.005 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def write_corpus(root: Path, durations=(0.3, 0.55, 0.8)) -> Path:
    """Demo layout ``<speaker>/<emotion>/t<k>.wav``: 3 speakers x 2 emotions x len(durations) texts."""
    for s, (spk, shift) in enumerate(SPEAKERS):
        for e in EMOTIONS:
            folder = root / spk / e
            folder.mkdir(parents=True)
            for k, seconds in enumerate(durations):
                sf.write(folder / f"t{k}.wav", harmonic(seconds, e, shift, k, seed=10 * s + k), SR)
    return root


@pytest.fixture(scope="session", name="harmonic")
def harmonic_fixture():
    """:func:`harmonic` (``harmonic(seconds, emotion, shift=1.0, k=0, seed=0) -> float32 (n,) at 16 kHz``)."""
    return harmonic


def speaker_files(folder: Path, emotion: str, n: int, start: int = 0) -> list[Path]:
    """``n`` short recordings of one speaker in ``emotion`` (``<emotion><k>.wav``, k from ``start``), each a
    little different: the inputs of the speaker-normalization tests."""
    out = []
    for k in range(start, start + n):
        path = folder / f"{emotion}{k}.wav"
        sf.write(path, harmonic(0.3 + 0.02 * (k % 7), emotion, shift=1.0 + 0.01 * (k % 5), k=k % 4, seed=k), SR)
        out.append(path)
    return out


@pytest.fixture(scope="session")
def spk_files():
    """:func:`speaker_files` (``spk_files(folder, emotion, n, start=0) -> [Path]``)."""
    return speaker_files


def _benchmark_scores(model, corpus: Path, cache: Path):
    """``(data, scores (n, C))``: the model's scores on the benchmark's own inputs (the feature cache)."""
    from serbench.experiments.harness import FoldContext
    from serbench.systems.run import prepare

    settings = {k: v for k, v in model.settings.as_dict().items() if k != "profile"}
    plan = prepare(model.system.name, "demo", corpus, profile=model.settings.profile, overrides=settings,
                   cache=cache)
    ctx = FoldContext(run_id="t", system=model.name, fold="t", seed=0, device="cpu")
    out = model.system.predict(model.fitted, plan.data, np.arange(len(plan.data)), model.settings, ctx)
    return plan.data, np.asarray(out.scores)


@pytest.fixture(scope="session")
def benchmark_scores():
    """``benchmark_scores(model, corpus, cache) -> (data, scores)``: what a benchmark fold would score."""
    return _benchmark_scores


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("bundle-corpus"))


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bundle-cache")


@pytest.fixture(scope="session")
def corpus_files(corpus) -> list[str]:
    return sorted(str(p) for p in corpus.rglob("*.wav"))


#: What each trained test bundle is: (system, profile, overrides).
SPECS = {
    "svm-linear": ("svm-linear", None, {"feature": "MFCC"}),
    "svm-spknorm": ("svm-linear", None, {"feature": "MFCC", "speaker_norm": True}),
    "cnn-sru": ("cnn-sru", "tiny", {"segments": 2}),
    "crnn": ("crnn", "tiny", {}),
}


#: :func:`trained`'s key of the svm-linear bundle written in the layout before the array format.
OLD_LAYOUT = "svm-skops"


def write_old_layout(model, out: Path) -> Path:
    """``model`` (an SVM just trained, in memory) written as serbench wrote SVM bundles before the array
    format: format 2, the fitted pipeline in ``svm.skops``, the model.json of ``model``'s own bundle."""
    import json

    from serbench.bundles.format import MODEL_JSON, write_bundle
    from serbench.experiments.store import jsonable
    from serbench.systems.builtin.svm import export_skops

    record = json.loads((model.path / MODEL_JSON).read_text())
    record.pop("files")
    parts = export_skops(model.fitted)
    record.update(format_version=2, scores=parts.score_kind, model=jsonable(parts.meta))
    write_bundle(out, parts, record)
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory, corpus, cache):
    """``trained(key) -> Model``: the bundle of :data:`SPECS` ``key``, trained once per session (``model.path``);
    :data:`OLD_LAYOUT`: the svm-linear model in the old layout, loaded from its bundle."""
    import torch

    from serbench.bundles import load_model, train

    torch.set_num_threads(1)
    made: dict = {}
    base = tmp_path_factory.mktemp("bundles")

    def get(key: str):
        if key == OLD_LAYOUT and key not in made:
            made[key] = load_model(write_old_layout(get("svm-linear"), base / key))
        if key not in made:
            system, profile, overrides = SPECS[key]
            made[key] = train(system, "demo", corpus, base / key, profile=profile, overrides=overrides,
                              cache=cache, runs=base / "runs", device="cpu", threads=1)
        return made[key]
    return get


@pytest.fixture
def bundle_copy(tmp_path, trained):
    """``bundle_copy(key) -> Path``: a copy of a trained bundle folder that a test may damage."""
    made = []

    def copy(key: str) -> Path:
        made.append(key)
        dst = tmp_path / f"copy{len(made)}-{key}"
        shutil.copytree(trained(key).path, dst)
        return dst
    return copy
