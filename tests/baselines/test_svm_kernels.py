"""The precomputed-kernel grid search chooses and predicts as GridSearchCV(Pipeline(StandardScaler, SVC)) does."""
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from serbench.baselines import kernel_grid, svm
from serbench.baselines.kernel_grid import TrainingKernel, kernel_grid_search, scale_gamma
from serbench.baselines.svm import BaselineError, decision_scores, select_model
from serbench.experiments.protocol import inner_cv


def corpus(n_speakers=5, per_speaker=40, n_features=30, n_classes=4, signal=1.0, seed=0):
    """Rows (n, n_features) with class means in a low-dimensional subspace, a per-speaker offset,
    noise and wildly different feature scales (so standardization matters); labels and speakers (n,)."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(4, n_features))
    centers = rng.normal(size=(n_classes, 4))
    X, y, g = [], [], []
    for s in range(n_speakers):
        k = np.arange(per_speaker) % n_classes
        offset = rng.normal(size=n_features)
        X.append(signal * centers[k] @ basis + offset + rng.normal(size=(per_speaker, n_features)) * 2)
        y += [f"e{c}" for c in k]
        g += [f"s{s}"] * per_speaker
    scale = np.exp(rng.uniform(-3, 3, n_features))
    return np.vstack(X) * scale + rng.normal(size=n_features) * 10, np.array(y), np.array(g)


def both(X, y, g, test, **kw):
    """(GridSearchCV result, kernel result) fitted on the rows outside ``test``."""
    tr = ~test
    return (select_model(X[tr], y[tr], g[tr], method="grid", **kw),
            select_model(X[tr], y[tr], g[tr], method="kernel", **kw))


def assert_same(a, b, X_test):
    assert a.best_params_ == b.best_params_
    assert a.best_index_ == b.best_index_ and a.best_score_ == b.best_score_
    np.testing.assert_array_equal(a.cv_results_["mean_test_score"], b.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(a.cv_results_["rank_test_score"], b.cv_results_["rank_test_score"])
    assert a.cv_results_["params"] == b.cv_results_["params"]
    assert a.n_splits_ == b.n_splits_ and type(a.cv) is type(b.cv)
    np.testing.assert_array_equal(a.classes_, b.classes_)
    np.testing.assert_array_equal(a.predict(X_test), b.predict(X_test))
    np.testing.assert_allclose(b.decision_function(X_test), a.decision_function(X_test), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("classifier", ["svm-linear", "svm-rbf"])
@pytest.mark.parametrize("n_classes, class_weight", [(4, None), (2, "balanced")])
def test_kernel_path_chooses_and_predicts_as_gridsearchcv(classifier, n_classes, class_weight):
    X, y, g = corpus(n_classes=n_classes, signal=0.6)
    a, b = both(X, y, g, g == "s0", classifier=classifier, class_weight=class_weight)
    assert_same(a, b, X[g == "s0"])
    # the scores differ across the grid, so choosing the best is a real decision here
    assert len(np.unique(b.cv_results_["mean_test_score"])) > 2
    assert decision_scores(b, X[:3], sorted(set(y))).shape == (3, n_classes)


@pytest.mark.parametrize("classifier", ["svm-linear", "svm-rbf"])
def test_ties_go_to_the_first_best_in_grid_order(classifier):
    X, y, g = corpus(signal=4.0, seed=1)  # separable: many settings score 1.0
    a, b = both(X, y, g, g == "s4", classifier=classifier)
    ranks = b.cv_results_["rank_test_score"]
    assert (ranks == 1).sum() > 1, "the data should produce tied best scores"
    assert b.best_index_ == int(np.flatnonzero(ranks == 1)[0])
    assert_same(a, b, X[g == "s4"])


def test_gamma_scale_is_sklearns_value_on_the_standardized_rows():
    X, y, _ = corpus()
    Xs = StandardScaler().fit_transform(X)
    assert SVC(kernel="rbf").fit(Xs, y)._gamma == scale_gamma(Xs)
    # a constant feature lowers the variance, so 'scale' is not simply 1 / n_features
    Xc = np.column_stack([X, np.ones(len(X))])
    Xcs = StandardScaler().fit_transform(Xc)
    assert SVC(kernel="rbf").fit(Xcs, y)._gamma == scale_gamma(Xcs) != 1 / Xc.shape[1]


def test_training_kernel_matches_the_kernels_libsvm_uses():
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(7, 5)), rng.normal(size=(3, 5))
    lin = TrainingKernel("linear").fit(A)
    np.testing.assert_allclose(lin.gram(), A @ A.T)
    np.testing.assert_allclose(lin.transform(B), B @ A.T)
    rbf = TrainingKernel("rbf", gamma=0.3).fit(A)
    d = ((B[:, None, :] - A[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(rbf.transform(B), np.exp(-0.3 * d), rtol=1e-12)
    gram = rbf.gram()
    assert np.all(np.diag(gram) == 1.0) and np.allclose(gram, gram.T)


def test_each_split_is_standardized_with_its_own_training_rows_only(monkeypatch):
    X, y, g = corpus(n_speakers=4, seed=2)
    index = {row.tobytes(): i for i, row in enumerate(X)}
    fitted = {"scaler": [], "kernel": []}
    real_scaler_fit, real_kernel_fit = StandardScaler.fit, TrainingKernel.fit
    last = {}

    def scaler_fit(this, Z, y=None, **kw):
        fitted["scaler"].append(sorted(index[r.tobytes()] for r in np.asarray(Z)))
        last["scaler"] = this
        return real_scaler_fit(this, Z, y, **kw)

    def kernel_fit(this, Z, y=None):
        raw = np.asarray(Z) * last["scaler"].scale_ + last["scaler"].mean_
        # rows are matched to the nearest original row: the kernel must see standardized training rows only
        d = ((raw[:, None, :] - X[None, :, :]) ** 2).sum(-1)
        assert np.allclose(d.min(1), 0, atol=1e-6)
        fitted["kernel"].append(sorted(d.argmin(1).tolist()))
        return real_kernel_fit(this, Z, y)

    monkeypatch.setattr(StandardScaler, "fit", scaler_fit)
    monkeypatch.setattr(TrainingKernel, "fit", kernel_fit)
    result = select_model(X, y, g, classifier="svm-rbf")
    expected = [sorted(tr.tolist()) for tr, _ in LeaveOneGroupOut().split(X, y, g)] + [list(range(len(X)))]
    assert fitted["scaler"] == expected and fitted["kernel"] == expected
    assert result.best_estimator_.named_steps["scaler"] is last["scaler"]


def test_jobs_change_nothing_but_speed():
    X, y, g = corpus(signal=0.6)
    one = select_model(X, y, g, classifier="svm-rbf", jobs=1)
    two = select_model(X, y, g, classifier="svm-rbf", jobs=2)
    assert one.best_params_ == two.best_params_
    np.testing.assert_array_equal(one.cv_results_["mean_test_score"], two.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(one.decision_function(X[:5]), two.decision_function(X[:5]))


def test_result_keeps_the_select_model_contract():
    X, y, g = corpus(n_speakers=7)  # more speakers than MAX_INNER_SPLITS: GroupKFold
    res = select_model(X, y, g)
    assert type(res.cv) is type(inner_cv(g)) and res.n_splits_ == 5
    assert set(res.best_params_) == {"svc__C"} and res.best_params_["svc__C"] in svm.param_grid("svm-linear")["svc__C"]
    assert 0 <= res.best_score_ <= 1 and res.refit_time_ > 0 and res.scoring == "balanced_accuracy"
    assert list(res.classes_) == sorted(set(y))
    assert isinstance(res.best_estimator_, Pipeline) and res.best_estimator_.named_steps["svc"].kernel == "precomputed"
    assert res.decision_function(X[:4]).shape == (4, 4) and res.predict(X[:4]).shape == (4,)


def test_unknown_method_is_rejected():
    X, y, g = corpus()
    with pytest.raises(BaselineError, match="choose one of kernel, grid"):
        select_model(X, y, g, method="fast")


def test_memory_guard_names_the_alternative(monkeypatch):
    with pytest.raises(BaselineError, match=r"svm-rbf .* above the limit of 20000 rows; use --classifier svm-lib"):
        svm.check_kernel_rows(svm.MAX_KERNEL_ROWS + 1, "svm-rbf")
    svm.check_kernel_rows(svm.MAX_KERNEL_ROWS, "svm-linear")  # at the limit: allowed
    svm.check_kernel_rows(10 * svm.MAX_KERNEL_ROWS, "svm-liblinear")  # no kernel matrix: no limit
    X, y, g = corpus()
    monkeypatch.setattr(svm, "MAX_KERNEL_ROWS", len(X) - 1)
    called = []
    monkeypatch.setattr(kernel_grid, "kernel_grid_search", lambda *a, **k: called.append(1))
    with pytest.raises(BaselineError, match=f"{len(X)} training rows, above the limit of {len(X) - 1} rows"):
        select_model(X, y, g)
    assert not called  # refused before any kernel is computed
    assert select_model(X, y, g, classifier="svm-liblinear").best_params_  # the named alternative runs


def test_kernel_bytes_estimate():
    assert kernel_grid.kernel_bytes(1000, "linear") == 8 * 1000 * 1000
    assert kernel_grid.kernel_bytes(1000, "rbf", n_val=250) == 2 * 8 * 1000 * 1250
    assert kernel_grid.kernel_bytes(1000, "rbf") == 8 * 1000 * 1000  # a refit applies its gamma in place


def test_liblinear_classifier_is_standardized_and_selected_by_grouped_cv():
    pipe, grid = svm.make_svm("svm-liblinear", seed=2, class_weight="balanced")
    assert [type(s) for _, s in pipe.steps] == [StandardScaler, LinearSVC]
    assert pipe.named_steps["svc"].random_state == 2 and pipe.named_steps["svc"].class_weight == "balanced"
    assert grid == svm.param_grid("svm-liblinear") and grid["svc__C"] == pytest.approx(np.logspace(-5, 0, 6))
    assert "svm-liblinear" in svm.CLASSIFIERS
    X, y, g = corpus(signal=2.0)
    test = g == "s0"
    res = select_model(X[~test], y[~test], g[~test], classifier="svm-liblinear")
    assert isinstance(res, GridSearchCV) and isinstance(res.cv, LeaveOneGroupOut) and res.n_splits_ == 4
    assert res.best_params_["svc__C"] in grid["svc__C"]
    assert np.mean(res.predict(X[test]) == y[test]) > 0.8
    s = decision_scores(res, X[test], ["e3", "e2", "e1", "e0"])
    assert s.shape == (test.sum(), 4)
    assert list(np.array(["e3", "e2", "e1", "e0"])[s.argmax(1)]) == list(res.predict(X[test]))


@pytest.mark.slow
@pytest.mark.parametrize("classifier", ["svm-linear", "svm-rbf"])
def test_casia_sized_fold_matches_gridsearchcv(classifier):
    """CASIA's shape: 4 speakers x 300 utterances x 1582 features (IS10), 6 classes; one LOSO fold."""
    X, y, g = corpus(n_speakers=4, per_speaker=300, n_features=1582, n_classes=6, signal=0.15, seed=3)
    a, b = both(X, y, g, g == "s3", classifier=classifier)
    assert_same(a, b, X[g == "s3"])
    assert np.mean(b.predict(X[g == "s3"]) == y[g == "s3"]) > 1 / 6 + 0.1  # learnable, not chance


def test_kernel_grid_search_rejects_what_it_cannot_reproduce():
    X, y, g = corpus()
    cv = inner_cv(g)
    with pytest.raises(ValueError, match="balanced_accuracy only"):
        kernel_grid_search(X, y, g, cv=cv, kernel="linear", param_grid={"svc__C": [1.0]}, svc=SVC(),
                           scoring="accuracy")
    with pytest.raises(ValueError, match="svc__C"):
        kernel_grid_search(X, y, g, cv=cv, kernel="linear", param_grid={"svc__C": [1.0], "svc__tol": [1e-3]},
                           svc=SVC())
