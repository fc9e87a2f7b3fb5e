import json

import pandas as pd
import pytest

from serbench.reports.collect import ReportError, collect, load_run, parse_system


def test_latest_complete_run_is_used_and_partial_ignored(store):
    store.add("IS10-svm-linear", "run-old", acc=0.3, finished="2026-01-01T00:00:00+00:00")
    store.add("IS10-svm-linear", "run-new", acc=0.6, finished="2026-02-01T00:00:00+00:00")
    # A later partial run (killed) must not win, even though it is the newest.
    store.add("IS10-svm-linear", "run-newest", acc=0.9, partial=True, finished="2026-03-01T00:00:00+00:00")
    col = collect("casia", store.root)
    run = col.get("IS10-svm-linear")
    assert run.run_id == "run-new"
    assert run.metrics["wa"] == pytest.approx(0.6)
    assert [p.name for p in col.partial] == ["run-newest.partial"]
    assert col.older == {"IS10-svm-linear": ["run-old"]}
    notes = "\n".join(col.notes())
    assert "1 partial run folder(s) ignored" in notes and "run-old" in notes


def test_metrics_recomputed_not_trusted(store):
    # run.json claims 99% but the predictions say 50%.
    store.add("IS09-svm-linear", acc=0.5, metrics={"wa": 0.99, "ua": 0.99})
    col = collect("casia", store.root)
    assert col.get("IS09-svm-linear").metrics["ua"] == pytest.approx(0.5)
    assert any("disagrees" in w and "0.9900" in w for w in col.warnings)


def test_fold_series_per_speaker(store):
    store.add("cnn-sru-N5", acc={"s1": 0.2, "s2": 0.4, "s3": 0.6, "s4": 0.8})
    run = collect("casia", store.root).get("cnn-sru-N5")
    ua = run.fold_series("ua")
    assert list(ua.index) == ["s1", "s2", "s3", "s4"]
    assert ua.tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8])


def test_empty_or_absent_corpus_gives_empty_collection(tmp_path):
    col = collect("casia", tmp_path / "nowhere")
    assert col.runs == {} and col.partial == []


def test_broken_run_folder_is_skipped_with_reason(store):
    folder = store.add("IS10-svm-linear", "bad")
    (folder / "predictions.parquet").unlink()
    store.add("IS10-svm-linear", "good", finished="2025-01-01T00:00:00+00:00")
    col = collect("casia", store.root)
    assert col.get("IS10-svm-linear").run_id == "good"
    assert len(col.skipped) == 1 and "predictions.parquet" in col.skipped[0][1]


def test_missing_prediction_column_names_the_file(store):
    preds = store.synth(0.5).drop(columns=["fold"])
    folder = store.add("IS10-svm-linear", predictions=preds)
    with pytest.raises(ReportError, match=r"predictions\.parquet.*fold"):
        load_run(folder)


def test_status_partial_in_complete_folder_is_rejected(store):
    folder = store.add("IS10-svm-linear")
    record = json.loads((folder / "run.json").read_text())
    record["status"] = "partial"
    (folder / "run.json").write_text(json.dumps(record))
    with pytest.raises(ReportError, match="status"):
        load_run(folder)


def test_tables_output_folder_is_not_a_system(store):
    store.add("IS10-svm-linear")
    (store.root / "casia" / "tables").mkdir()
    (store.root / "casia" / "tables" / "table5.csv").write_text("x\n")
    col = collect("casia", store.root)
    assert list(col.runs) == ["IS10-svm-linear"] and col.skipped == []


@pytest.mark.parametrize("name, kind, feature, classifier, spk, model, n", [
    ("IS10-svm-linear", "baseline", "IS10", "svm-linear", False, None, None),
    ("IS10-svm-linear-spknorm", "baseline", "IS10", "svm-linear", True, None, None),
    ("eGeMAPS-svm-rbf", "baseline", "eGeMAPS", "svm-rbf", False, None, None),
    ("cnn-sru-N5", "deep", None, None, False, "cnn-sru", 5),
    ("cnn-N3", "deep", None, None, False, "cnn", 3),
    ("sru-N2-spknorm", "deep", None, None, True, "sru", 2),
    ("cnn-sru-xfit3-N5", "deep", None, None, False, "cnn-sru-xfit3", 5),
    ("crnn", "deep", None, None, False, "crnn", None),
    ("crnn-mk-nomk-mean-spknorm", "deep", None, None, True, "crnn-mk-nomk-mean", None),
    # Names no registered system writes are 'other' (crnn reads whole utterances: no N).
    ("crnn-N1", "other", None, None, False, None, None),
    ("my-odd-name", "other", None, None, False, None, None),
])
def test_parse_system_names(name, kind, feature, classifier, spk, model, n):
    s = parse_system(name)
    assert (s.kind, s.feature, s.classifier, s.speaker_norm, s.model, s.segments) == \
        (kind, feature, classifier, spk, model, n)


def test_parse_system_prefers_run_config():
    # Runs written now record their system and settings: those win over the folder name.
    s = parse_system("my-odd-name", {"kind": "baseline", "config": {
        "system_type": "svm-rbf", "settings": {"feature": "IS09", "speaker_norm": True}}})
    assert (s.kind, s.feature, s.classifier, s.speaker_norm) == ("baseline", "IS09", "svm-rbf", True)
    d = parse_system("whatever", {"kind": "deep", "config": {"system_type": "cnn-sru", "settings": {"segments": 4}}})
    assert (d.kind, d.model, d.segments, d.table) == ("deep", "cnn-sru", 4, "cnn-sru")
    # Older records keep their settings at the top of config; they win over what the name says.
    old = parse_system("IS10-svm-linear", {"kind": "baseline", "config": {"feature": "IS09", "speaker_norm": True}})
    assert (old.feature, old.classifier, old.speaker_norm) == ("IS09", "svm-linear", True)
    old = parse_system("cnn-sru-N3", {"kind": "deep", "config": {"model": "cnn-sru", "segments": 4}})
    assert (old.model, old.segments) == ("cnn-sru", 4)


def test_int_folds_are_read_as_names(store):
    preds = store.synth(0.5)
    preds["fold"] = preds["fold"].str[1:].astype(int)
    folder = store.add("IS10-svm-linear", predictions=preds)
    run = load_run(folder)
    assert list(run.fold_series().index) == ["1", "2", "3", "4"]
    assert isinstance(run.predictions, pd.DataFrame)


def test_different_label_sets_are_flagged(store):
    store.add("IS10-svm-linear", acc=0.5)
    store.add("IS09-svm-linear", predictions=store.synth(0.5, labels=["angry", "sad"]))
    col = collect("casia", store.root)
    assert any("different label sets" in w for w in col.warnings)


def test_spknorm_config_name_disagreement_is_flagged(store):
    store.add("IS10-svm-linear", config={"feature": "IS10", "classifier": "svm-linear", "speaker_norm": True})
    col = collect("casia", store.root)
    assert col.get("IS10-svm-linear").spec.speaker_norm is True
    assert any("speaker_norm=True" in w for w in col.warnings)
