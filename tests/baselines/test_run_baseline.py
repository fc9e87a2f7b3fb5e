import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from serbench.baselines import svm
from serbench.errors import SerbenchError
from serbench.experiments import metrics
from serbench.experiments.inputs import NAN_POLICY
from serbench.experiments.store import PREDICTIONS, RUN_JSON, RunStore, load_run
from serbench.systems import registry
from serbench.systems.run import run_baseline


def system_name(feature, classifier="svm-linear", speaker_norm=False, class_weight="none"):
    system = registry.get(classifier)
    return system.stored_name(system.settings(None, {"feature": feature, "speaker_norm": speaker_norm,
                                                     "class_weight": class_weight}))

CLASSES = ("angry", "neutral", "sad")


def make_data(make, **kw):
    """The shared synthetic features (tests/conftest.py) with a strong per-speaker offset."""
    return make(**{"speaker_offset": 4.0, **kw})


def loader_for(X, manifest):
    calls = []

    def load(corpus, feature, *, root, cache=None, jobs=1, emotions=None, **_):
        calls.append({"corpus": corpus, "feature": feature, "emotions": emotions})
        return X.copy(), manifest.copy()

    load.calls = calls
    return load


def test_run_writes_the_store_contract(make_features, tmp_path):
    X, m = make_data(make_features)
    res = run_baseline("demo", "/corpus", "is10", runs=tmp_path, load_features=loader_for(X, m))
    assert res.system == "IS10-svm-linear" and res.path == tmp_path / "demo" / "IS10-svm-linear" / res.run_id
    preds = pd.read_parquet(res.path / PREDICTIONS)
    assert list(preds.columns) == ["utterance_id", "speaker", "fold", "true", "predicted",
                                   "score_angry", "score_neutral", "score_sad"]
    assert sorted(preds["utterance_id"]) == sorted(m["utterance_id"])  # every utterance tested once
    assert (preds["fold"] == preds["speaker"]).all()
    rec = json.loads((res.path / RUN_JSON).read_text())
    assert rec["status"] == "complete" and rec["kind"] == "baseline"
    assert rec["config"]["speaker_norm"] is False and rec["config"]["protocol"] == "loso"
    assert rec["config"]["nan_policy"] == NAN_POLICY and rec["excluded"]["n"] == 0
    assert rec["command"]  # the command line that started the run
    assert len(rec["folds"]) == 4
    for f in rec["folds"]:
        assert f["best_params"]["svc__C"] in svm.param_grid("svm-linear")["svc__C"]
        assert f["n_train"] == 45 and f["n_train_speakers"] == 3
    t = rec["timings"]
    assert 0 <= t["model_selection_s"] <= t["total_s"] and t["executor"] == "in-process"
    s = metrics.summarize(preds)
    assert rec["metrics"]["ua"] == pytest.approx(s["ua"]) and res.ua == pytest.approx(s["ua"])
    # the predicted class is the arg-max of the stored decision scores
    scores = preds[[f"score_{c}" for c in CLASSES]].to_numpy()
    assert (np.array(CLASSES)[scores.argmax(1)] == preds["predicted"].to_numpy()).all()


def test_nan_policy_excludes_and_counts_rows(make_features, tmp_path):
    X, m = make_data(make_features)
    bad = ["spk0_angry_0", "spk2_sad_3", "spk3_neutral_1"]
    X.loc[bad] = np.nan
    m.loc[m["utterance_id"].isin(bad), "status"] = ["nan", "failed", "nan"]
    res = run_baseline("demo", "/c", "IS09", runs=tmp_path, load_features=loader_for(X, m))
    assert len(res.excluded) == 3 and sorted(e["utterance_id"] for e in res.excluded) == sorted(bad)
    assert not set(bad) & set(res.predictions["utterance_id"])
    assert len(res.predictions) == len(m) - 3
    assert res.record["excluded"]["by_status"] == {"nan": 2, "failed": 1}
    # 'ok' rows that hold NaN are a broken cache: an error, never a silent drop
    m.loc[m["utterance_id"] == "spk0_angry_1", "status"] = "ok"
    X.loc["spk0_angry_1"] = np.nan
    with pytest.raises(SerbenchError, match="marked 'ok' but hold NaN"):
        run_baseline("demo", "/c", "IS09", runs=tmp_path, load_features=loader_for(X, m))


def test_speaker_norm_is_a_separate_recorded_system(make_features, tmp_path):
    X, m = make_data(make_features, speaker_offset=6.0)
    load = loader_for(X, m)
    plain = run_baseline("demo", "/c", "IS10", runs=tmp_path, load_features=load)
    norm = run_baseline("demo", "/c", "IS10", runs=tmp_path, load_features=load, speaker_norm=True)
    assert norm.system == "IS10-svm-linear-spknorm" == system_name("IS10", "svm-linear", True)
    assert system_name("is09", "svm-rbf", False, "balanced") == "IS09-svm-rbf-balanced"
    assert norm.record["config"]["speaker_norm"] is True and plain.record["config"]["speaker_norm"] is False
    assert norm.path.parent != plain.path.parent
    listed = RunStore(tmp_path).list_runs("demo")
    assert sorted(zip(listed["system"], listed["speaker_norm"])) == [("IS10-svm-linear", False),
                                                                     ("IS10-svm-linear-spknorm", True)]


def test_resume_after_interruption_mid_fold_matches_uninterrupted_run(make_features, tmp_path, monkeypatch):
    X, m = make_data(make_features, seed=3)
    load = loader_for(X, m)
    reference = run_baseline("demo", "/c", "MFCC", runs=tmp_path / "ref", load_features=load)

    real = svm.select_model
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the third fold dies in the middle of model selection
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(svm, "select_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_baseline("demo", "/c", "MFCC", runs=tmp_path / "store", load_features=load)
    partial = list((tmp_path / "store" / "demo" / "MFCC-svm-linear").glob("*.partial"))
    assert len(partial) == 1 and len(list(partial[0].glob("fold-*.parquet"))) == 2
    monkeypatch.setattr(svm, "select_model", real)

    resumed = run_baseline("demo", "/c", "MFCC", runs=tmp_path / "store", load_features=load)
    assert resumed.resumed_folds == ["spk0", "spk1"] and resumed.path == partial[0].with_name(resumed.run_id)
    assert not list(resumed.path.parent.glob("*.partial"))
    cols = ["utterance_id", "fold", "true", "predicted"]
    pd.testing.assert_frame_equal(resumed.predictions[cols], reference.predictions[cols])
    np.testing.assert_allclose(resumed.predictions.filter(like="score_").to_numpy(),
                               reference.predictions.filter(like="score_").to_numpy(), rtol=1e-9)
    assert [f["best_params"] for f in resumed.record["folds"]] == [f["best_params"] for f in reference.record["folds"]]
    assert len(resumed.record["resumed"]) == 1


def test_changed_data_starts_a_new_run_instead_of_resuming(make_features, tmp_path, monkeypatch):
    X, m = make_data(make_features)
    real, calls = svm.select_model, []

    def second_fold_dies(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(svm, "select_model", second_fold_dies)
    with pytest.raises(KeyboardInterrupt):
        run_baseline("demo", "/c", "PLP", runs=tmp_path, load_features=loader_for(X, m))
    monkeypatch.undo()
    X2 = X.copy()
    X2.iloc[0, 0] += 1.0
    res = run_baseline("demo", "/c", "PLP", runs=tmp_path, load_features=loader_for(X2, m))
    assert res.resumed_folds == []
    assert len(list(res.path.parent.glob("*.partial"))) == 1  # the stale partial (1 fold) is left alone


def test_a_run_that_fails_before_any_fold_leaves_no_partial_folder(make_features, tmp_path, monkeypatch):
    X, m = make_data(make_features)
    monkeypatch.setattr(svm, "select_model", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        run_baseline("demo", "/c", "PLP", runs=tmp_path, load_features=loader_for(X, m))
    assert not list((tmp_path / "demo" / "PLP-svm-linear").glob("*"))


def test_emotions_and_protocol_options_reach_the_loader_and_record(make_features, tmp_path):
    X, m = make_data(make_features)
    m["session"] = m["speaker"].map({"spk0": "S1", "spk1": "S1", "spk2": "S2", "spk3": "S3"})
    load = loader_for(X, m)
    res = run_baseline("demo", "/c", "IS10", protocol="loso-session", emotions=["angry", "sad", "neutral"],
                       runs=tmp_path, load_features=load)
    assert load.calls[-1]["emotions"] == ["angry", "sad", "neutral"]
    assert sorted(res.predictions["fold"].unique()) == ["S1", "S2", "S3"]
    assert res.record["config"]["protocol"] == "loso-session"
    with pytest.raises(SerbenchError, match="--classifier 'knn'.*svm-linear, svm-rbf"):
        run_baseline("demo", "/c", "IS10", classifier="knn", runs=tmp_path, load_features=load)


def test_cli_baseline_and_runs(make_features, tmp_path, monkeypatch):
    from serbench.cli import cli

    X, m = make_data(make_features)
    X.loc["spk1_sad_0"] = np.nan
    m.loc[m["utterance_id"] == "spk1_sad_0", "status"] = "failed"
    import serbench.features

    monkeypatch.setattr(serbench.features, "load", loader_for(X, m))
    runner = CliRunner()
    out = runner.invoke(cli, ["baseline", "--corpus", "demo", "--root", str(tmp_path), "--feature", "IS10",
                              "--speaker-norm", "--runs", str(tmp_path / "runs")])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "speaker normalization ON" in text and "IS10-svm-linear-spknorm" in text
    assert "excluded utterances: 1 of 60" in text
    assert "pooled: WA" in text and "over folds: WA" in text and "recall per class: angry" in text
    res_path = next((tmp_path / "runs" / "demo" / "IS10-svm-linear-spknorm").iterdir())
    assert "run:" in text and res_path.name in text
    rec = load_run(res_path).record
    assert f"UA {100 * rec['metrics']['ua']:.1f}%" in text

    listing = runner.invoke(cli, ["runs", "--runs", str(tmp_path / "runs"), "--corpus", "demo"])
    assert listing.exit_code == 0, listing.output
    assert "IS10-svm-linear-spknorm" in listing.output and "complete" in listing.output

    empty = runner.invoke(cli, ["runs", "--runs", str(tmp_path / "nothing")])
    assert empty.exit_code == 0 and "no runs under" in empty.output

    bad = runner.invoke(cli, ["baseline", "--corpus", "demo", "--root", str(tmp_path), "--feature", "IS10",
                              "--protocol", "loso-session", "--runs", str(tmp_path / "runs")])
    assert bad.exit_code == 2 and "error:" in bad.output and "session" in bad.output
