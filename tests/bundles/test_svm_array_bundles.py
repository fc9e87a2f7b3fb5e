"""SVM bundles hold the fitted model as arrays: a loaded bundle predicts exactly the rows of the pipeline that
was trained (labels, probabilities, decision scores, windows), bundles of the older skops layout still load
and predict the same, and damaged arrays are refused in one line."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from serbench.baselines.svm_arrays import KernelSVM, LinearSVM
from serbench.bundles import load_model, train
from serbench.bundles.format import FORMAT_VERSION, MODEL_JSON, read_files, write_bundle
from serbench.experiments.dataset import Dataset
from serbench.experiments.harness import FoldContext
from serbench.systems import registry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bundle_edits import edit_json, refused, replace_file  # noqa: E402

SR = 16000
#: Four emotions, each its own pitch and brightness (the corpus of the two-class fixtures has two).
TONES = {"angry": (240.0, 8), "happy": (200.0, 5), "neutral": (150.0, 3), "sad": (110.0, 2)}


def tone(seconds: float, emotion: str, shift: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f0, n_harm = TONES[emotion]
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * shift * h * t) / h for h in range(1, n_harm + 1))
    return (0.3 * x / np.max(np.abs(x)) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus4(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus4")
    for s, (spk, shift) in enumerate((("spk1", 1.0), ("spk2", 1.15), ("spk3", 0.9))):
        for e in TONES:
            (root / spk / e).mkdir(parents=True)
            for k, seconds in enumerate((0.4, 0.6, 0.9)):
                sf.write(root / spk / e / f"t{k}.wav", tone(seconds, e, shift * (1 + 0.04 * k), 100 * s + k), SR)
    return root


def same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert (a.loc[a["segment"] != "summary", "status"] == "ok").all()


def check_bundle_predicts_the_pipeline(model, files: list[str]) -> None:
    """``model`` (just trained: the fitted pipeline in memory) and its bundle give the same rows, bit for bit."""
    loaded = load_model(model.path)
    assert isinstance(loaded.fitted.search, (KernelSVM, LinearSVM))
    assert not isinstance(model.fitted.search, (KernelSVM, LinearSVM))
    for kw in ({}, {"scores": "decision"}, {"window": 0.25, "hop": 0.1}, {"window": 0.3, "scores": "decision"}):
        same_rows(loaded.predict(files, **kw), model.predict(files, **kw))


def test_bundle_predicts_the_rows_of_the_pipeline_it_was_trained_as(trained, corpus_files, corpus, cache,
                                                                     benchmark_scores):
    model = trained("svm-linear")
    rec = json.loads((model.path / MODEL_JSON).read_text())
    assert rec["format_version"] == FORMAT_VERSION == 3 and set(rec["files"]) == {"weights.safetensors"}
    check_bundle_predicts_the_pipeline(model, corpus_files)
    # the benchmark's own inputs (the feature cache, float32): probabilities and decision values
    data, from_bundle = benchmark_scores(load_model(model.path), corpus, cache)
    _, from_pipeline = benchmark_scores(model, corpus, cache)
    np.testing.assert_array_equal(from_bundle, from_pipeline)
    emotions = model.predict(corpus_files)["emotion"]
    assert emotions.nunique() == 2                    # not a constant model


@pytest.mark.parametrize("system,overrides", [("svm-rbf", {}), ("svm-linear", {"class_weight": "balanced"}),
                                              ("svm-liblinear", {})])
def test_four_class_bundles_predict_the_rows_of_their_pipelines(corpus4, tmp_path, system, overrides):
    model = train(system, "demo", corpus4, tmp_path / "m", overrides={"feature": "MFCC", **overrides},
                  cache=tmp_path / "cache", runs=tmp_path / "runs", device="cpu", threads=1)
    files = sorted(str(p) for p in corpus4.rglob("*.wav"))
    check_bundle_predicts_the_pipeline(model, files)
    assert model.predict(files)["emotion"].nunique() >= 3


def test_old_skops_bundle_still_loads_and_predicts_the_same(trained, corpus_files):
    """A bundle of the layout before the arrays (format 2: the pipeline in svm.skops) loads through skops
    and predicts the rows of the pipeline, as the array bundle does."""
    from sklearn.pipeline import Pipeline

    old = trained("svm-skops")
    rec = json.loads((old.path / MODEL_JSON).read_text())
    assert rec["format_version"] == 2 and set(rec["files"]) == {"svm.skops"} and "stored_as" not in rec["model"]
    assert isinstance(old.fitted.search, Pipeline)
    model = trained("svm-linear")
    for kw in ({}, {"scores": "decision"}, {"window": 0.25, "hop": 0.1}):
        want = model.predict(corpus_files, **kw)
        same_rows(old.predict(corpus_files, **kw), want)
        same_rows(load_model(model.path).predict(corpus_files, **kw), want)


# ---------------------------------------------------------------- export / restore, without the audio

def dataset(seed: int, n_classes: int = 3) -> Dataset:
    """3 speakers x n_classes x 4 rows of 12 features (two 6-column layer blocks for the SSL case)."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.repeat(np.arange(n_classes), 4), 3)
    X = rng.normal(size=(len(y), 12)) + 1.5 * y[:, None] * rng.normal(size=12)[None, :]
    labels = ["angry", "happy", "neutral", "sad"][:n_classes]
    return Dataset(corpus="synthetic", labels=labels, y=y.astype(np.int64),
                   speakers=np.repeat(["spk0", "spk1", "spk2"], len(y) // 3),
                   utterance_ids=np.array([f"u{i}" for i in range(len(y))]), inputs=X.astype(np.float32),
                   fingerprint=f"svm-arrays-{seed}", meta={"layer_blocks": 2})


@pytest.mark.parametrize("name,overrides", [
    ("svm-linear", {"feature": "MFCC"}), ("svm-rbf", {"feature": "MFCC"}),
    ("svm-liblinear", {"feature": "MFCC", "class_weight": "balanced"}),
    # one layer block of a self-supervised set: the block's place in the whole row travels with the arrays
    ("svm-linear", {"feature": "wavlm-base-plus", "layer": "1"})])
def test_restored_arrays_give_the_fold_outputs_of_the_fitted_model(tmp_path, name, overrides):
    system = registry.get(name)
    s = system.settings(None, overrides)
    data, test = dataset(0), dataset(1)
    ctx = FoldContext(run_id="t", system=name, fold="t", seed=0, device="cpu", threads=1, log=lambda _m: None)
    fitted = system.fit(data, np.arange(len(data)), s, ctx)
    parts = system.export(fitted, s)
    assert not parts.estimators and all(k.startswith("svm.") for k in parts.tensors)
    record = write_bundle(tmp_path / "b", parts, {"system": {"name": name}, "scores": parts.score_kind,
                                                   "model": json.loads(json.dumps(parts.meta))})
    restored = system.restore(read_files(tmp_path / "b", record, system), s, data.labels)
    if "layer" in overrides:
        assert restored.columns == fitted.columns == (6, 12)
    rows = np.arange(len(test))
    after, before = system.predict(restored, test, rows, s, ctx), system.predict(fitted, test, rows, s, ctx)
    np.testing.assert_array_equal(after.scores, before.scores)
    np.testing.assert_array_equal(after.predicted, before.predicted)
    # exported again from the arrays: the same tensors
    again = system.export(restored, s)
    assert again.tensors.keys() == parts.tensors.keys()
    for k in parts.tensors:
        np.testing.assert_array_equal(again.tensors[k], parts.tensors[k])


def test_a_pipeline_the_arrays_cannot_hold_is_saved_with_skops(tmp_path):
    """GridSearchCV's pipeline (SVC computing its own kernel: method='grid', which no fold or bundle fit uses)
    has no array form that gives its bits: it is exported in the older skops layout, and says so."""
    from serbench.baselines.svm import select_model
    from serbench.systems.builtin.svm import FittedSVM

    system = registry.get("svm-linear")
    s = system.settings(None, {"feature": "MFCC"})
    data, test = dataset(0), dataset(1)
    search = select_model(data.inputs, data.true_labels(np.arange(len(data))), data.speakers, method="grid")
    fitted = FittedSVM(search, {"best_params": search.best_params_})
    parts = system.export(fitted, s)
    assert set(parts.estimators) == {"svm"} and not parts.tensors
    assert parts.meta["stored_as"].startswith("skops") and "not a scaler + LinearSVC pipeline" in parts.meta["stored_as"]
    record = write_bundle(tmp_path / "b", parts, {"system": {"name": "svm-linear"}, "scores": parts.score_kind,
                                                   "model": parts.meta})
    restored = system.restore(read_files(tmp_path / "b", record, system), s, data.labels)
    ctx = FoldContext(run_id="t", system="svm-linear", fold="t", seed=0, device="cpu", threads=1,
                      log=lambda _m: None)
    rows = np.arange(len(test))
    np.testing.assert_array_equal(system.predict(restored, test, rows, s, ctx).scores,
                                  system.predict(fitted, test, rows, s, ctx).scores)


# ---------------------------------------------------------------- damaged arrays

def rewrite_tensors(bundle: Path, change) -> None:
    """Change the bundle's tensors and update model.json's size and hash, as someone editing both would."""
    path = bundle / "weights.safetensors"
    tensors = dict(load_tensors(path.read_bytes()))
    change(tensors)
    data = save_tensors(tensors)
    replace_file(bundle, "weights.safetensors", data)


@pytest.mark.parametrize("change,needle", [
    (lambda t: t.update({"svm.dual_coef": t["svm.dual_coef"][:, :-1]}), "dual_coef"),
    (lambda t: t.update({"svm.rows": t["svm.rows"][:, :-1]}), "disagree"),
    (lambda t: t.update({"svm.support": t["svm.support"] + 10_000}), "outside the"),
    (lambda t: t.pop("svm.rho"), "['rho'] are missing"),
    (lambda t: t.update({"svm.mean": t["svm.mean"].astype(np.float32)}), "float64"),
], ids=["dual-coef", "rows", "support", "no-rho", "dtype"])
def test_damaged_arrays_are_refused_in_one_line(bundle_copy, change, needle):
    b = bundle_copy("svm-linear")
    rewrite_tensors(b, change)
    refused(b, "arrays do not fit together", needle, "damaged")


def test_model_json_that_does_not_fit_the_arrays_is_refused(bundle_copy):
    b = bundle_copy("svm-linear")
    edit_json(b, lambda rec: rec["model"].update(n_features=rec["model"]["n_features"] + 1))
    refused(b, "reads 312 features, model.json says 313")
    b = bundle_copy("svm-linear")
    edit_json(b, lambda rec: rec["model"].update(classes=["angry", "calm"]))
    refused(b, "classes ['calm'] outside its labels")
    b = bundle_copy("svm-linear")
    edit_json(b, lambda rec: rec["model"].pop("stored_as"))
    refused(b, "holds no SVM")
