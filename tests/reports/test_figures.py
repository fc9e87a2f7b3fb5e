import json

import numpy as np
import pytest

from serbench.reports.collect import collect
from serbench.reports.figures import confusion_figure, confusion_table, figure_path, write_confusion

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_confusion_rows_normalized_with_counts(store):
    store.add("cnn-sru-N5", acc=0.7)
    run = collect("casia", store.root).get("cnn-sru-N5")
    counts, percent = confusion_table(run)
    assert counts.to_numpy().sum() == len(run.predictions)
    assert np.allclose(percent.sum(axis=1), 100.0)
    # 7 of 10 right per speaker and class; the other 3 go to the next label.
    assert percent.loc["angry", "angry"] == pytest.approx(70.0)
    assert percent.loc["angry", "happy"] == pytest.approx(30.0)
    assert counts.loc["angry", "angry"] == 28


def test_class_without_test_utterances_gives_nan_row(store):
    preds = store.synth(0.5)
    folder = store.add("IS10-svm-linear", predictions=preds)
    # Declare an extra label that never occurs: its row must be NaN, not 0 / 0 noise or an error.
    record = json.loads((folder / "run.json").read_text())
    record["labels"] = record["labels"] + ["surprise"]
    (folder / "run.json").write_text(json.dumps(record))
    run = collect("casia", store.root).get("IS10-svm-linear")
    _, percent = confusion_table(run)
    assert percent.loc["surprise"].isna().all()
    confusion_figure(run, "casia")  # renders without error


def test_png_written_and_valid(store, tmp_path):
    store.add("IS10-svm-linear-spknorm", acc=0.6)
    run = collect("casia", store.root).get("IS10-svm-linear-spknorm")
    path = write_confusion(run, "casia", tmp_path / "figs")
    assert path == figure_path(tmp_path / "figs", "IS10-svm-linear-spknorm")
    data = path.read_bytes()
    assert len(data) > 0 and data[:8] == PNG_MAGIC
    assert not list((tmp_path / "figs").glob("*.tmp"))


def test_title_names_system_corpus_and_metrics(store):
    store.add("cnn-sru-N3", acc=0.5)
    run = collect("casia", store.root).get("cnn-sru-N3")
    fig = confusion_figure(run, "casia")
    title = fig.axes[0].get_title()
    assert "cnn-sru-N3" in title and "casia" in title and "WA 50.0%" in title and "UA 50.0%" in title
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["angry", "happy", "neutral", "sad"]


def test_figure_path_is_filename_safe(tmp_path):
    assert figure_path(tmp_path, "a/b c").name == "confusion-a_b_c.png"
