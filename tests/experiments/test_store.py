import datetime as dt
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from serbench.experiments import metrics
from serbench.experiments.store import (
    PREDICTIONS,
    RUN_JSON,
    RunStore,
    StoreError,
    load_run,
    new_run_id,
)

LABELS = ["angry", "sad"]
CONFIG = {"feature": "IS10", "classifier": "svm-linear", "speaker_norm": False, "seed": 0}


def _fold_preds(name, true, predicted):
    n = len(true)
    return pd.DataFrame({
        "utterance_id": [f"{name}_{i}" for i in range(n)], "speaker": name, "fold": name,
        "true": true, "predicted": predicted,
        "score_angry": np.linspace(-1, 1, n), "score_sad": np.linspace(1, -1, n),
    })


FOLDS = {
    "spk1": _fold_preds("spk1", ["angry", "angry", "sad", "sad"], ["angry", "sad", "sad", "sad"]),
    "spk/2": _fold_preds("spk/2", ["angry", "sad"], ["sad", "sad"]),  # a name that is not file-safe
}


def _complete_run(store, **kw):
    w = store.start_run("casia", "IS10-svm-linear", CONFIG, LABELS, "serbench baseline ...", seed=0, **kw)
    for name, df in FOLDS.items():
        w.write_fold(name, df, {"best_params": {"svc__C": 0.01}, "timings": {"fold_s": 1.0}})
    return w, w.finish(timings={"total_s": 2.0})


def test_run_layout_and_record_follow_the_contract(tmp_path):
    store = RunStore(tmp_path)
    w = store.start_run("casia", "IS10-svm-linear", CONFIG, LABELS, ["serbench", "baseline"], seed=0)
    assert w.path.name.endswith(".partial") and w.path.parent == tmp_path / "casia" / "IS10-svm-linear"
    assert json.loads((w.path / RUN_JSON).read_text())["status"] == "partial"
    for name, df in FOLDS.items():
        w.write_fold(name, df, {"best_params": {"svc__C": 0.01}})
    final = w.finish(timings={"total_s": 2.0})
    assert final == tmp_path / "casia" / "IS10-svm-linear" / w.run_id
    assert not list(final.parent.glob("*.partial")) and sorted(p.name for p in final.iterdir()) == [PREDICTIONS,
                                                                                                    RUN_JSON]
    rec = json.loads((final / RUN_JSON).read_text())
    for key in ("run_id", "corpus", "system", "kind", "command", "config", "labels", "seed", "versions",
                "git_commit", "started", "finished", "timings", "folds", "metrics", "status"):
        assert key in rec, key
    assert rec["status"] == "complete" and rec["kind"] == "baseline" and rec["command"] == "serbench baseline"
    preds = pd.read_parquet(final / PREDICTIONS)
    assert list(preds.columns[:5]) == ["utterance_id", "speaker", "fold", "true", "predicted"]
    assert {"score_angry", "score_sad"} <= set(preds.columns)
    expected = metrics.summarize(pd.concat(FOLDS.values()))
    assert rec["metrics"]["wa"] == pytest.approx(expected["wa"]) == pytest.approx(4 / 6)
    assert rec["metrics"]["ua"] == pytest.approx(expected["ua"])
    assert {f["fold"]: f["best_params"] for f in rec["folds"]} == {"spk1": {"svc__C": 0.01},
                                                                     "spk/2": {"svc__C": 0.01}}


def test_load_run_recomputes_metrics_instead_of_trusting_run_json(tmp_path):
    _, final = _complete_run(RunStore(tmp_path))
    rec = json.loads((final / RUN_JSON).read_text())
    rec["metrics"]["wa"] = 0.99
    rec["folds"][0]["ua"] = 0.99
    (final / RUN_JSON).write_text(json.dumps(rec))
    with pytest.warns(UserWarning, match="stored wa=0.9900 disagrees with the predictions"):
        run = load_run(final)
        loaded, preds = run.record, run.predictions
    assert loaded["metrics"]["wa"] == pytest.approx(4 / 6)
    assert [f["ua"] for f in loaded["folds"]] == pytest.approx([f["ua"] for f in metrics.summarize(preds)["folds"]])
    listed = RunStore(tmp_path).list_runs()
    assert listed.loc[0, "wa"] == pytest.approx(4 / 6)


def test_list_runs_shows_complete_partial_and_broken_runs(tmp_path):
    store = RunStore(tmp_path)
    _complete_run(store)
    partial = store.start_run("casia", "IS09-svm-linear", CONFIG, LABELS, "x")
    partial.write_fold("spk1", FOLDS["spk1"])
    other = store.start_run("emodb", "IS09-svm-linear", CONFIG, LABELS, "x")
    (other.path / RUN_JSON).write_text("{not json")
    df = store.list_runs()
    assert list(df.columns[:8]) == ["corpus", "system", "run_id", "status", "wa", "ua", "finished", "path"]
    by_system = {(r.corpus, r.system): r for r in df.itertuples()}
    assert by_system[("casia", "IS10-svm-linear")].status == "complete"
    assert by_system[("casia", "IS09-svm-linear")].status == "partial"
    assert np.isnan(by_system[("casia", "IS09-svm-linear")].ua)  # a subset of folds is not a result
    assert by_system[("emodb", "IS09-svm-linear")].status == "invalid"
    assert set(store.list_runs("casia")["corpus"]) == {"casia"}


def test_resume_reopens_the_matching_partial_run_only(tmp_path):
    store = RunStore(tmp_path)
    w = store.start_run("casia", "IS10-svm-linear", CONFIG, LABELS, "a", fingerprint="f1")
    w.write_fold("spk1", FOLDS["spk1"], {"best_params": {"svc__C": 1}})
    again = store.start_run("casia", "IS10-svm-linear", CONFIG, LABELS, "b", fingerprint="f1", resume=True)
    assert again.path == w.path and again.resumed and again.finished_folds() == ["spk1"]
    assert again.fold_info("spk1")["best_params"] == {"svc__C": 1}
    other_cfg = store.start_run("casia", "IS10-svm-linear", {**CONFIG, "seed": 1}, LABELS, "c",
                                fingerprint="f1", resume=True)
    other_data = store.start_run("casia", "IS10-svm-linear", CONFIG, LABELS, "d", fingerprint="f2", resume=True)
    fresh = store.start_run("casia", "IS10-svm-linear", CONFIG, LABELS, "e", fingerprint="f1", resume=False)
    assert len({w.path, other_cfg.path, other_data.path, fresh.path}) == 4
    assert other_cfg.finished_folds() == [] and other_data.finished_folds() == []


def test_bad_predictions_are_rejected(tmp_path):
    w = RunStore(tmp_path).start_run("casia", "S", CONFIG, LABELS, "x")
    with pytest.raises(StoreError, match="lack column"):
        w.write_fold("spk1", FOLDS["spk1"].drop(columns="true"))
    with pytest.raises(StoreError, match="must equal the fold name"):
        w.write_fold("other", FOLDS["spk1"])
    with pytest.raises(StoreError, match="not in the run's labels"):
        w.write_fold("spk1", FOLDS["spk1"].assign(true="happy"))
    with pytest.raises(StoreError, match="no finished folds"):
        w.finish()
    with pytest.raises(StoreError, match="invalid system"):
        RunStore(tmp_path).start_run("casia", "../evil", CONFIG, LABELS, "x")


def test_run_ids_sort_by_time_and_are_unique():
    t0 = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)
    ids = [new_run_id(t0 + dt.timedelta(microseconds=k * 997)) for k in range(50)]
    assert ids == sorted(ids)
    assert len({new_run_id(t0) for _ in range(50)}) == 50


def test_single_fold_nan_sd_is_written_as_null(tmp_path):
    w = RunStore(tmp_path).start_run("casia", "S", CONFIG, LABELS, "x")
    w.write_fold("spk1", FOLDS["spk1"])
    final = w.finish()
    rec = json.loads((final / RUN_JSON).read_text())  # strict JSON: NaN would not parse in other tools
    assert rec["metrics"]["wa_sd"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_run(final)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="POSIX advisory locks")
def test_a_run_another_process_is_writing_is_not_resumed_twice(tmp_path):
    import subprocess
    import sys

    store = RunStore(tmp_path)
    w = store.start_run("casia", "IS10-svm-linear", CONFIG, LABELS, "a", fingerprint="f1")
    w.write_fold("spk1", FOLDS["spk1"])
    from serbench.experiments import store as store_mod

    store_mod._release_lock(w.path)      # hand the partial run over, as if this process had died
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from serbench.experiments.store import RunStore;"
         f"w = RunStore({str(tmp_path)!r}).start_run('casia', 'IS10-svm-linear', {CONFIG!r}, {LABELS!r}, 'b',"
         " fingerprint='f1', resume=True); print(w.path, flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == str(w.path)
        with pytest.raises(StoreError, match=rf"another process \(pid {holder.pid}\).*--no-resume"):
            store.start_run("casia", "IS10-svm-linear", CONFIG, LABELS, "c", fingerprint="f1", resume=True)
        # Listing and reading the run do not need its lock: it shows as running, with its finished fold.
        listed = store.list_runs("casia").iloc[0]
        assert (listed["status"], listed["note"], listed["n_folds"]) == ("running", f"written now by pid {holder.pid}", 1)
        assert load_run(w.path).record["status"] == "partial"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
    # The holder has gone: its lock went with it, and the run resumes here.
    again = store.start_run("casia", "IS10-svm-linear", CONFIG, LABELS, "e", fingerprint="f1", resume=True)
    assert again.path == w.path and again.finished_folds() == ["spk1"]
    assert store.list_runs("casia").iloc[0]["status"] == "partial"   # ours now: not 'running' elsewhere
    final = again.finish()
    assert not (final / ".lock").exists()
