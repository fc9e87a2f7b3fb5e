"""The array model of a fitted SVM scores every row with the same bits as the scikit-learn pipeline.

Pipelines are fitted by :func:`serbench.baselines.svm.select_model` (the model selection a fold and
``serbench train`` run), then the array model's ``decision_function`` and ``predict`` are compared with
the pipeline's on unseen rows with ``assert_array_equal``: no tolerance.
"""
from __future__ import annotations

import numpy as np
import pytest

from serbench.baselines import svm_arrays
from serbench.baselines.svm import select_model
from serbench.baselines.svm_arrays import KernelSVM, LinearSVM, from_pipeline, from_tensors

N_FEATURES = 12
# Inner splits of a few rows, whose held-out speaker lacks a class: scikit-learn's scoring says so each time.
pytestmark = [pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true"),
              pytest.mark.filterwarnings("ignore:A single label was found")]


def random_data(n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Overlapping Gaussian classes: ``(X, labels, speakers, unseen rows)``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, N_FEATURES))
    y = np.arange(14 * n_classes + 5) % n_classes
    rng.shuffle(y)
    X = centres[y] + 1.5 * rng.normal(size=(len(y), N_FEATURES))
    test = centres[rng.integers(0, n_classes, 60)] + 2.0 * rng.normal(size=(60, N_FEATURES))
    return X, np.array([f"c{k}" for k in y]), np.array([f"s{k % 4}" for k in range(len(y))]), test


def near_tie_data(n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows that make libsvm's pairwise values and votes tie or nearly so: integer features with many equal
    kernel values, the same rows under different labels, a constant feature; unseen rows at the training
    rows, at midpoints between classes, at the mean (standardized to exact zeros: a linear kernel of 0),
    and far away (an RBF kernel that underflows to 0, leaving only the intercepts)."""
    rng = np.random.default_rng(seed)
    y = np.arange(10 * n_classes) % n_classes
    X = rng.integers(-2, 3, size=(len(y), N_FEATURES)).astype(np.float64) + y[:, None] * 0.5
    X[:, 0] = 3.0                                                 # no variance: scale 1
    X[len(y) // 2:len(y) // 2 + n_classes] = X[0]                 # one row under every label
    means = np.array([X[y == c].mean(axis=0) for c in range(n_classes)])
    mids = np.array([(means[i] + means[j]) / 2 for i in range(n_classes) for j in range(i + 1, n_classes)])
    # mixtures of the class means: where the pairwise decisions of three classes can go round in a circle
    mixes = rng.dirichlet(np.ones(n_classes), size=300) @ means + 0.3 * rng.normal(size=(300, N_FEATURES))
    test = np.vstack([X[:20], mids, X.mean(axis=0, keepdims=True), 1e3 * rng.normal(size=(3, N_FEATURES)),
                      X[:5] + 1e-12, mixes])
    return X, np.array([f"c{k}" for k in y]), np.array([f"s{k % 4}" for k in range(len(y))]), test


DATA = {"random": random_data, "near-tie": near_tie_data}


def boundary_rows(pipe, n: int = 60, seed: int = 0) -> np.ndarray:
    """Rows on (or within 1e-12 .. 1e-6 of) the pairwise boundaries of classes (0, 1), (1, 2), ... of a
    linear-kernel pipeline at once: each pair's value ``w_p . x_std - rho_p`` is an affine function of the
    standardized row, so rows with chosen tiny values (zero, or either sign: votes that tie, go round in a
    circle or flip on the last bit) solve a linear system."""
    model = from_pipeline(pipe)
    sv = model.rows[model.support]
    starts = np.concatenate([[0], np.cumsum(model.n_support)])
    W = []
    # The pairs (i, i+1) only: those of a degenerate SVM (every coefficient at its bound) are not independent.
    for i, j in [(k, k + 1) for k in range(len(model.classes_) - 1)]:
        c = np.zeros(len(model.support))
        c[starts[i]:starts[i + 1]] = model.dual_coef[j - 1, starts[i]:starts[i + 1]]
        c[starts[j]:starts[j + 1]] = model.dual_coef[i, starts[j]:starts[j + 1]]
        W.append(c @ sv)
    rng = np.random.default_rng(seed)
    t = rng.choice([0.0, 1e-12, 1e-9, 1e-6], size=(n, len(W))) * rng.choice([-1.0, 1.0], size=(n, len(W)))
    rho = model.rho[[p for p, (i, j) in enumerate(svm_arrays._pair_index(len(model.classes_))) if j == i + 1]]
    xs = np.linalg.lstsq(np.array(W), (rho[None, :] + t).T, rcond=None)[0].T
    return xs * model.scale + model.mean


def fitted(classifier: str, n_classes: int, class_weight: str | None, data: str, seed: int = 0):
    X, labels, speakers, test = DATA[data](n_classes, seed)
    search = select_model(X, labels, speakers, classifier=classifier, class_weight=class_weight)
    pipe = search.best_estimator_
    if data == "near-tie" and classifier == "svm-linear":
        test = np.vstack([test, boundary_rows(pipe)])
    return pipe, test


def assert_same(pipe, model, test: np.ndarray) -> None:
    np.testing.assert_array_equal(model.decision_function(test), pipe.decision_function(test))
    np.testing.assert_array_equal(model.predict(test), np.asarray(pipe.predict(test)).astype(str))
    np.testing.assert_array_equal(model.classes_, np.asarray(pipe.classes_).astype(str))


@pytest.mark.parametrize("data", ["random", "near-tie"])
@pytest.mark.parametrize("class_weight", [None, "balanced"])
@pytest.mark.parametrize("n_classes", [2, 3, 4, 6])
@pytest.mark.parametrize("classifier", ["svm-linear", "svm-rbf"])
def test_kernel_svm_equals_the_pipeline_bit_for_bit(classifier, n_classes, class_weight, data):
    pipe, test = fitted(classifier, n_classes, class_weight, data)
    model = from_pipeline(pipe)
    assert isinstance(model, KernelSVM) and model.kernel == classifier.split("-")[1]
    assert_same(pipe, model, test)
    assert_same(pipe, model, test.astype(np.float32))          # the feature cache's dtype: scaled in float32
    # through the bundle's tensors and back
    again = from_tensors(model.tensors(), model.meta())
    assert_same(pipe, again, test)


@pytest.mark.parametrize("classifier,n_classes", [("svm-linear", 2), ("svm-linear", 3), ("svm-linear", 4),
                                                  ("svm-linear", 6), ("svm-rbf", 4), ("svm-rbf", 6)])
def test_near_tie_rows_reach_ties(classifier, n_classes):
    """The near-tie rows do reach what they are meant to: rows whose one-vs-one votes tie (the label is then
    the lower class, the one-vs-rest score the larger summed confidence; 3 RBF classes tie too rarely to
    be sure of one), linear pairwise values within 1e-9 of 0, and rows whose kernel against every support
    vector is exactly 0 (the mean row, linear; far rows, RBF), whose pairwise values are the intercepts."""
    pipe, test = fitted(classifier, n_classes, None, "near-tie")
    model = from_pipeline(pipe)
    d = model.pair_values(test)
    votes = np.zeros((len(test), n_classes), dtype=int)
    for p, (i, j) in enumerate(svm_arrays._pair_index(n_classes)):
        votes[:, i] += d[:, p] > 0
        votes[:, j] += d[:, p] <= 0
    tied = (votes == votes.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert tied.any() or n_classes == 2
    if classifier == "svm-linear":
        assert (np.abs(d) < 1e-9).sum() >= 10
    # linear: the mean row's kernel is exactly 0; RBF: so is that of the far rows
    far = np.all(model.kernel_values(test) == 0.0, axis=0)
    assert far.any()
    np.testing.assert_array_equal(d[far], np.broadcast_to(-model.rho, d[far].shape))
    assert_same(pipe, model, test[tied | far])


@pytest.mark.parametrize("class_weight", [None, "balanced"])
@pytest.mark.parametrize("n_classes", [2, 3, 4, 6])
def test_liblinear_svm_equals_the_pipeline_bit_for_bit(n_classes, class_weight):
    pipe, test = fitted("svm-liblinear", n_classes, class_weight, "random")
    model = from_pipeline(pipe)
    assert isinstance(model, LinearSVM)
    assert_same(pipe, model, test)
    assert_same(pipe, from_tensors(model.tensors(), model.meta()), test)


def test_training_kernel_is_the_module_arithmetic():
    """TrainingKernel (training) and the array model (prediction) share one kernel implementation."""
    from serbench.baselines.kernel_grid import TrainingKernel

    rng = np.random.default_rng(3)
    rows, X = rng.normal(size=(30, 7)), rng.normal(size=(9, 7))
    for kernel, gamma in (("linear", None), ("rbf", 0.2)):
        km = TrainingKernel(kernel, gamma).fit(rows)
        base = svm_arrays.kernel_base(kernel, km.rows_, svm_arrays.squared_norms(km.rows_), X)
        np.testing.assert_array_equal(km.transform(X), svm_arrays.kernel_finish(kernel, base, gamma))
        np.testing.assert_array_equal(km.gram(), svm_arrays.kernel_finish(
            kernel, svm_arrays.kernel_base(kernel, km.rows_, km.sq_norms_), gamma))


def test_damaged_arrays_are_refused_naming_what_is_wrong():
    pipe, _ = fitted("svm-rbf", 3, None, "random")
    good = from_pipeline(pipe)
    meta = good.meta()

    def refused(change, needle: str, meta_change=None) -> None:
        tensors = dict(good.tensors())
        change(tensors)
        with pytest.raises(ValueError, match=needle):
            from_tensors(tensors, {**meta, **(meta_change or {})})

    refused(lambda t: t.pop("rho"), r"\['rho'\] are missing")
    refused(lambda t: t.pop("gamma"), r"\['gamma'\] are missing")
    refused(lambda t: t.update(rho=t["rho"][:-1]), "rho")
    refused(lambda t: t.update(dual_coef=t["dual_coef"][:, 1:]), "dual_coef")
    refused(lambda t: t.update(support=t["support"] + 10_000), "outside the")
    refused(lambda t: t.update(n_support=t["n_support"] + 1), "n_support sums")
    refused(lambda t: t.update(scale=t["scale"][:-1]), "disagree")
    refused(lambda t: t.update(mean=t["mean"].astype(np.float32)), "float64")
    refused(lambda t: t.update(rows=np.where(t["rows"] > 1, np.nan, t["rows"])), "NaN or inf")
    refused(lambda t: None, "2 classes", {"classes": ["c0"]})
    refused(lambda t: None, "n_support must be", {"classes": ["c0", "c1"]})
    refused(lambda t: None, "unknown SVM solver", {"solver": "libfoo"})
