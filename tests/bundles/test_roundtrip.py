"""Train, save, load in a fresh process, predict: the scores of the model that was trained."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serbench.bundles import load_model, train
from serbench.bundles.format import FORMAT, FORMAT_VERSION, MODEL_JSON, sha256_bytes

FRESH = """
import sys, torch
torch.set_num_threads(1)
import serbench
serbench.load_model(sys.argv[1]).predict(sys.argv[3:]).to_parquet(sys.argv[2])
"""


def score_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith(("prob_", "score_"))]


def predict_in_fresh_process(bundle: Path, files: list[str], tmp_path: Path) -> pd.DataFrame:
    out = tmp_path / "fresh.parquet"
    subprocess.run([sys.executable, "-c", FRESH, str(bundle), str(out), *files], check=True, timeout=300)
    return pd.read_parquet(out)


def check_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    cols = score_columns(a)
    assert cols and cols == score_columns(b)
    assert list(a["file"]) == list(b["file"]) and (a["status"] == "ok").all()
    np.testing.assert_allclose(b[cols].to_numpy(), a[cols].to_numpy(), rtol=0, atol=1e-9)
    assert list(a["emotion"]) == list(b["emotion"])


@pytest.mark.slow   # a fresh interpreter imports torch and scikit-learn (skops enumerates its types): 5-15 s
@pytest.mark.parametrize("key", ["svm-linear", "cnn-sru", "crnn"])
def test_fresh_process_gives_the_in_memory_scores(trained, corpus_files, tmp_path, key):
    model = trained(key)
    in_memory = model.predict(corpus_files)
    fresh = predict_in_fresh_process(model.path, corpus_files, tmp_path)
    check_same(in_memory, fresh)
    # Not a constant model: both classes are predicted on this corpus.
    assert in_memory["emotion"].nunique() == 2


@pytest.mark.parametrize("key", ["svm-linear", pytest.param("cnn-sru", marks=pytest.mark.slow)])
def test_predicting_corpus_files_gives_the_benchmark_inputs_scores(trained, corpus, cache, key,
                                                                   benchmark_scores):
    """Features computed from the audio at predict time are exactly those the benchmark reads from its cache."""
    from serbench.corpora import scan

    model = load_model(trained(key).path)
    data, expected = benchmark_scores(model, corpus, cache)
    manifest = scan("demo", corpus).manifest.set_index("utterance_id").loc[data.utterance_ids].reset_index()
    got = model.predict(manifest)
    assert list(got["utterance_id"]) == list(data.utterance_ids)
    assert list(got["true"]) == list(data.true_labels(np.arange(len(data))))
    np.testing.assert_allclose(got[score_columns(got)].to_numpy(), expected, rtol=0, atol=1e-12)


def test_model_json_records_what_the_model_is(trained, corpus):
    model = trained("svm-linear")
    rec = json.loads((model.path / MODEL_JSON).read_text())
    assert rec["format"] == FORMAT and rec["format_version"] == FORMAT_VERSION
    assert rec["system"]["type"] == "svm-linear" and rec["system"]["name"] == "MFCC-svm-linear"
    assert rec["system"]["settings"]["feature"] == "MFCC" and rec["labels"] == ["angry", "sad"]
    assert rec["scores"] == "probability" and "fitted out of fold" in rec["scores_note"]
    assert rec["model"]["calibration"]["scale"] > 0
    from serbench.features import get_feature_set

    fs = get_feature_set("MFCC")
    assert rec["feature_set"]["key"] == fs.key and rec["feature_set"]["params"] == json.loads(json.dumps(fs.params))
    assert rec["normalization"]["speaker_norm"] is False
    n_features = rec["model"]["n_features"]
    assert len(rec["normalization"]["model"]["mean"]) == n_features == len(fs.feature_names())
    tr = rec["training"]
    assert tr["corpus"] == "demo" and tr["n_utterances"] == 18 and tr["n_speakers"] == 3
    assert tr["class_counts"] == {"angry": 9, "sad": 9} and len(tr["manifest_sha256"]) == 64
    assert tr["details"]["best_params"] and "svc__C" in tr["details"]["best_params"]
    assert rec["versions"]["scikit-learn"] and "git_commit" in rec and rec["benchmark_run"] is None
    # Every file's SHA-256 and size, and nothing else in the folder.
    assert set(rec["files"]) == {p.name for p in model.path.iterdir()} - {MODEL_JSON} == {"weights.safetensors"}
    assert rec["model"]["stored_as"].startswith("arrays") and rec["model"]["svm"]["solver"] == "libsvm"
    for name, entry in rec["files"].items():
        data = (model.path / name).read_bytes()
        assert entry["bytes"] == len(data) and entry["sha256"] == sha256_bytes(data)


def test_deep_bundle_is_safetensors_with_normalization(trained):
    model = trained("crnn")
    rec = json.loads((model.path / MODEL_JSON).read_text())
    assert set(rec["files"]) == {"weights.safetensors"} and rec["scores"] == "probability"
    from safetensors.numpy import load_file

    tensors = load_file(model.path / "weights.safetensors")
    assert tensors["norm.mean"].shape == (3, 60) == np.asarray(rec["normalization"]["model"]["mean"]).shape
    assert any(k.startswith("net.") for k in tensors)


def test_bundle_names_the_benchmark_run_of_the_same_settings_and_data(tmp_path, corpus, cache):
    from serbench.systems import run_baseline

    runs = tmp_path / "runs"
    res = run_baseline("demo", corpus, "MFCC", cache=cache, runs=runs)
    model = train("svm-linear", "demo", corpus, tmp_path / "m", overrides={"feature": "MFCC"}, cache=cache, runs=runs)
    run = model.record["benchmark_run"]
    assert run["run_id"] == res.run_id and run["ua"] == pytest.approx(res.ua) and run["protocol"] == "loso"
    # Other settings (balanced class weights) are another system: no run to name.
    other = train("svm-linear", "demo", corpus, tmp_path / "b", overrides={"feature": "MFCC", "class_weight": "balanced"},
                  cache=cache, runs=runs)
    assert other.record["benchmark_run"] is None


@pytest.mark.slow   # two benchmark runs and two bundles
def test_train_from_the_best_benchmark_run(tmp_path, corpus, cache):
    from click.testing import CliRunner

    from serbench.cli import cli
    from serbench.systems import run_baseline

    runs = tmp_path / "runs"
    done = [run_baseline("demo", corpus, "MFCC", classifier=c, cache=cache, runs=runs) for c in ("svm-rbf", "svm-linear")]
    best = sorted(done, key=lambda r: (-r.ua, r.system))[0]
    args = ["train", "--corpus", "demo", "--root", str(corpus), "--cache", str(cache), "--runs", str(runs),
            "--out", str(tmp_path / "m")]
    res = CliRunner().invoke(cli, [*args, "--from-run", "best"])
    assert res.exit_code == 0, res.output
    assert f"run {best.run_id}: {best.record['system']} (UA" in res.output      # the stored name of the run
    model = load_model(tmp_path / "m")
    assert model.name == best.system and model.record["benchmark_run"]["run_id"] == best.run_id
    other = next(r for r in done if r is not best)
    res = CliRunner().invoke(cli, [*args, "--from-run", other.run_id, "--overwrite"])
    assert res.exit_code == 0 and load_model(tmp_path / "m").name == other.system
    res = CliRunner().invoke(cli, [*args, "--from-run", "best", "--feature", "IS10", "--overwrite"])
    assert res.exit_code == 2 and "leave out --feature" in res.output
    res = CliRunner().invoke(cli, [*args, "--from-run", "nope", "--overwrite"])
    assert res.exit_code == 2 and "--from-run nope: no complete run" in res.output
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "give --system NAME" in res.output
