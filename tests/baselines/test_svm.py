import numpy as np
import pytest
from sklearn.model_selection import LeaveOneGroupOut
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from serbench.baselines.svm import BaselineError, decision_scores, make_svm, param_grid, select_model


def _data(n_speakers=4, per_class=6, classes=("a", "b", "c"), seed=0):
    centers = np.random.default_rng(0).normal(size=(len(classes), 5)) * 3  # same classes for every seed
    rng = np.random.default_rng(seed + 1)
    X, y, g = [], [], []
    for s in range(n_speakers):
        for k, c in enumerate(classes):
            X.append(centers[k] + rng.normal(size=(per_class, 5)))
            y += [c] * per_class
            g += [f"s{s}"] * per_class
    return np.vstack(X), np.array(y), np.array(g)


def test_make_svm_pipeline_and_grids():
    pipe, grid = make_svm("svm-linear", seed=3)
    assert isinstance(pipe, Pipeline) and [type(s) for _, s in pipe.steps] == [StandardScaler, SVC]
    svc = pipe.named_steps["svc"]
    assert svc.kernel == "linear" and svc.random_state == 3 and svc.class_weight is None
    assert grid["svc__C"] == pytest.approx(np.logspace(-4, 1, 6))
    pipe, grid = make_svm("svm-rbf", class_weight="balanced")
    assert pipe.named_steps["svc"].kernel == "rbf" and pipe.named_steps["svc"].class_weight == "balanced"
    assert set(grid) == {"svc__C", "svc__gamma"} and "scale" in grid["svc__gamma"]
    assert param_grid("svm-rbf") == grid


@pytest.mark.parametrize("kwargs, match", [
    ({"classifier": "svm-poly"}, "choose one of svm-linear, svm-rbf"),
    ({"class_weight": "heavy"}, "choose one of none, balanced"),
    ({"seed": 1.5}, "seed must be an integer"),
])
def test_bad_options_are_rejected(kwargs, match):
    with pytest.raises(BaselineError, match=match):
        make_svm(**kwargs)


@pytest.mark.parametrize("method", ["kernel", "grid"])
def test_select_model_uses_speaker_grouped_cv_and_ua_scoring(method):
    X, y, g = _data()
    search = select_model(X, y, g, classifier="svm-linear", method=method)
    assert isinstance(search.cv, LeaveOneGroupOut) and search.n_splits_ == 4
    assert search.scoring == "balanced_accuracy"
    assert search.best_params_["svc__C"] in param_grid("svm-linear")["svc__C"]
    Xt, yt, _ = _data(n_speakers=1, seed=1)
    assert np.mean(search.predict(Xt) == yt) > 0.8  # well-separated classes are learnt


def test_select_model_needs_two_classes():
    X, y, g = _data(classes=("a",))
    with pytest.raises(BaselineError, match="one class only"):
        select_model(X, y, g)


@pytest.mark.parametrize("method", ["kernel", "grid"])
def test_decision_scores_columns_follow_labels(method):
    X, y, g = _data()
    search = select_model(X, y, g, method=method)
    s = decision_scores(search, X[:5], ["c", "b", "a", "z"])
    assert s.shape == (5, 4) and np.isnan(s[:, 3]).all()
    raw = search.decision_function(X[:5])
    np.testing.assert_allclose(s[:, 0], raw[:, 2])
    # the largest score is the predicted class
    assert list(np.array(["c", "b", "a"])[np.argmax(s[:, :3], axis=1)]) == list(search.predict(X[:5]))
    # binary: libsvm gives one column; both labels get a score
    keep = y != "c"
    search2 = select_model(X[keep], y[keep], g[keep], method=method)
    s2 = decision_scores(search2, X[:3], ["a", "b"])
    np.testing.assert_allclose(s2[:, 0], -s2[:, 1])
