import numpy as np
import pandas as pd
import pytest

from serbench.experiments import metrics


def test_wa_ua_differ_on_imbalanced_data():
    y_true = ["a"] * 8 + ["b"] * 2
    y_pred = ["a"] * 10
    assert metrics.weighted_accuracy(y_true, y_pred) == pytest.approx(0.8)
    assert metrics.unweighted_accuracy(y_true, y_pred) == pytest.approx(0.5)
    assert metrics.per_class_recall(y_true, y_pred) == {"a": 1.0, "b": 0.0}


def test_confusion_rows_are_true_labels():
    cm = metrics.confusion(["a", "a", "b"], ["b", "a", "b"], labels=["a", "b"])
    assert cm.loc["a", "b"] == 1 and cm.loc["a", "a"] == 1 and cm.loc["b", "b"] == 1
    assert cm.to_numpy().sum() == 3


def test_summarize_pooled_and_per_fold():
    df = pd.DataFrame({
        "fold": ["s1"] * 4 + ["s2"] * 2,
        "true": ["a", "a", "b", "b", "a", "b"],
        "predicted": ["a", "a", "b", "a", "b", "b"],
    })
    s = metrics.summarize(df)
    assert s["wa"] == pytest.approx(4 / 6)
    assert [f["wa"] for f in s["folds"]] == pytest.approx([0.75, 0.5])
    assert s["wa_mean"] == pytest.approx(0.625)
    assert s["wa_sd"] == pytest.approx(np.std([0.75, 0.5], ddof=1))
    assert s["ua"] == pytest.approx(np.mean([2 / 3, 2 / 3]))


def test_mismatched_lengths_rejected():
    with pytest.raises(ValueError, match="2 labels"):
        metrics.weighted_accuracy(["a", "b"], ["a"])
