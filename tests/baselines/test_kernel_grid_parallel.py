"""Inner splits side by side (``jobs`` > 1) change nothing but speed: bit-identical to the plain sequential
computation, kernels independent of the BLAS thread count, and still no test speaker in any fitted step."""
import threading

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import ParameterGrid
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from serbench.baselines import kernel_grid, svm
from serbench.baselines.kernel_grid import TrainingKernel, concurrent_tasks
from serbench.experiments.harness import FoldContext
from serbench.experiments.protocol import inner_cv
from serbench.systems.run import prepare

from tests.baselines.test_leakage import loader, make_data
from tests.baselines.test_svm_kernels import corpus


def straightforward(X, y, g, classifier):
    """The search written out plainly, one step after another, every product on one BLAS thread:
    per inner split a scaler on its training rows, ``Xs @ Xs.T`` (or squared distances and exp), each
    candidate fitted and scored; GridSearchCV's ranking; the winner refit on all rows.
    Returns (split scores (n_candidates, n_splits), best params, refit pipeline's parts)."""
    pipe, grid = svm.make_svm(classifier)
    template = clone(pipe.named_steps["svc"]).set_params(kernel="precomputed")
    candidates = list(ParameterGrid(grid))

    def kernel(A, B, gamma):
        if classifier == "svm-linear":
            return A @ B.T
        d = -2.0 * (A @ B.T) + np.einsum("ij,ij->i", A, A)[:, None] + np.einsum("ij,ij->i", B, B)[None, :]
        d = np.maximum(d, 0.0)
        if A is B:
            np.fill_diagonal(d, 0.0)
        return np.exp(d * -float(gamma))

    def gamma_of(p, Xs):
        g_ = p.get("svc__gamma")
        return kernel_grid.scale_gamma(Xs) if g_ == "scale" else g_

    splits = list(inner_cv(g).split(X, y, g))
    scores = np.empty((len(candidates), len(splits)))
    with threadpool_limits(1, "blas"):
        for s, (tr, val) in enumerate(splits):
            sc = StandardScaler().fit(X[tr])
            A, B = sc.transform(X[tr]), sc.transform(X[val])
            for i, p in enumerate(candidates):
                gm = gamma_of(p, A)
                model = clone(template).set_params(C=p["svc__C"]).fit(kernel(A, A, gm), y[tr])
                scores[i, s] = balanced_accuracy_score(y[val], model.predict(kernel(B, A, gm)))
        means = scores.mean(axis=1)
        best = candidates[int(rankdata(-means, method="min").argmin())]
        sc = StandardScaler().fit(X)
        A = sc.transform(X)
        gm = gamma_of(best, A)
        model = clone(template).set_params(C=best["svc__C"]).fit(kernel(A, A, gm), y)
    return scores, best, (sc, A, gm, model, kernel)


@pytest.mark.parametrize("classifier", ["svm-linear", "svm-rbf"])
@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_every_jobs_is_bit_identical_to_the_straightforward_search(classifier, jobs):
    X, y, g = corpus(n_speakers=7, per_speaker=24, n_features=40, signal=0.7)  # 7 speakers: GroupKFold(5)
    test = g == "s6"
    Xtr, ytr, gtr = X[~test], y[~test], g[~test]
    scores, best, (sc, A, gm, model, kernel) = straightforward(Xtr, ytr, gtr, classifier)
    res = svm.select_model(Xtr, ytr, gtr, classifier=classifier, jobs=jobs)
    got = np.column_stack([res.cv_results_[f"split{s}_test_score"] for s in range(scores.shape[1])])
    np.testing.assert_array_equal(got, scores)
    assert res.best_params_ == best
    fitted = res.best_estimator_.named_steps
    np.testing.assert_array_equal(fitted["scaler"].mean_, sc.mean_)
    np.testing.assert_array_equal(fitted["kernel"].rows_, A)
    np.testing.assert_array_equal(fitted["svc"].dual_coef_, model.dual_coef_)
    np.testing.assert_array_equal(fitted["svc"].intercept_, model.intercept_)
    with threadpool_limits(1, "blas"):
        K_test = kernel(sc.transform(X[test]), A, gm)
        expected_scores, expected_labels = model.decision_function(K_test), model.predict(K_test)
    # whatever BLAS threads the caller runs with, the kernel of the test rows is computed on one
    with threadpool_limits(2, "blas"):
        np.testing.assert_array_equal(res.decision_function(X[test]), expected_scores)
        np.testing.assert_array_equal(res.predict(X[test]), expected_labels)


def test_kernels_do_not_depend_on_the_callers_blas_threads():
    rng = np.random.default_rng(3)
    A, B = rng.normal(size=(700, 900)), rng.normal(size=(300, 900))
    out = {}
    for threads in (1, 2):
        with threadpool_limits(threads, "blas"):
            km = TrainingKernel("rbf").fit(A)
            out[threads] = (km.base(), km.base(B), TrainingKernel("linear").fit(A).base(B))
    for one, two in zip(out[1], out[2]):
        np.testing.assert_array_equal(one, two)


def test_concurrency_stays_within_the_memory_budget():
    assert concurrent_tasks(2, 100, 100, 5, budget=1000) == 2
    assert concurrent_tasks(8, 100, 100, 5, budget=10_000) == 6          # at most one per task
    assert concurrent_tasks(4, 300, 200, 5, budget=1000) == 2            # 200 + 2 x 300 <= 1000 < 200 + 3 x 300
    assert concurrent_tasks(4, 600, 500, 5, budget=1000) == 1            # the sequential path
    assert concurrent_tasks(1, 1, 1, 5, budget=10**9) == 1


class ThreadAwareRecorder:
    """Which speakers' rows each StandardScaler / TrainingKernel / SVC fit saw, when the inner splits
    run in several threads: a kernel is undone with the scaler fitted last IN ITS THREAD, and a
    precomputed-kernel SVC saw the rows of the kernel fitted last in its thread (each split task fits
    its scaler, its kernel and its SVCs in one thread); the refit's SVC, fitted in the calling thread,
    saw the rows of the only kernel of its size (all training rows)."""

    def __init__(self, monkeypatch, matrix, speakers):
        self.matrix, self.speakers = np.asarray(matrix, float), np.asarray(speakers)
        self.fits, self.threads, self.kernels = [], set(), []
        self.local = threading.local()
        self.lock = threading.Lock()
        real = StandardScaler.fit, TrainingKernel.fit, SVC.fit
        rec = self

        def scaler_fit(this, X, y=None, **kw):
            out = real[0](this, X, y, **kw)
            rec._add("scaler", rec._speakers_of(np.asarray(X, float)))
            rec.local.scaler = this
            return out

        def kernel_fit(this, X, y=None):
            s = rec.local.scaler
            seen = rec._speakers_of(np.asarray(X, float) * s.scale_ + s.mean_)
            rec._add("kernel", seen)
            rec.local.kernel = (len(X), seen)
            with rec.lock:
                rec.kernels.append((len(X), seen))
            return real[1](this, X, y)

        def svc_fit(this, X, y, **kw):
            n, seen = getattr(rec.local, "kernel", (None, None))
            if n is None:  # the refit's SVC runs in the calling thread: the one kernel of its size
                sizes = [k for k in rec.kernels if k[0] == len(X)]
                assert len(sizes) == 1, "no kernel, or several, of this size: cannot tell what the SVC saw"
                n, seen = sizes[0]
            assert this.kernel == "precomputed" and np.shape(X) == (n, n)
            rec._add("svc", seen)
            return real[2](this, X, y, **kw)

        monkeypatch.setattr(StandardScaler, "fit", scaler_fit)
        monkeypatch.setattr(TrainingKernel, "fit", kernel_fit)
        monkeypatch.setattr(SVC, "fit", svc_fit)

    def _add(self, step, seen):
        with self.lock:
            self.fits.append((step, seen))
            self.threads.add(threading.get_ident())

    def _speakers_of(self, rows):
        d = ((rows[:, None, :] - self.matrix[None, :, :]) ** 2).sum(-1)
        nearest = d.argmin(1)
        assert np.allclose(d[np.arange(len(rows)), nearest], 0, atol=1e-8), "a fitted row matches no data row"
        return set(self.speakers[nearest].tolist())


def test_no_fitted_step_sees_the_test_speaker_with_splits_side_by_side(monkeypatch):
    X, m = make_data(n_speakers=5)
    spk = m["speaker"].to_numpy(str)
    recorder = ThreadAwareRecorder(monkeypatch, X.to_numpy(), spk)
    plan = prepare("svm-linear", "demo", "/c", overrides={"feature": "IS09"}, load_features=loader(X, m))
    n_grid = len(svm.param_grid("svm-linear")["svc__C"])
    for fold in plan.folds:
        recorder.fits, recorder.kernels = [], []
        ctx = FoldContext(run_id="t", system=plan.system, fold=fold.name, seed=0, threads=2)
        plan.task.fit(plan.data, fold.train, plan.payload, ctx)
        steps = [step for step, _ in recorder.fits]
        assert steps.count("svc") == 4 * n_grid + 1 and steps.count("scaler") == steps.count("kernel") == 4 + 1
        for step, seen in recorder.fits:
            assert fold.name not in seen, f"{step} of fold {fold.name} was fitted on its test speaker"
        assert any(len(seen) == 3 for _, seen in recorder.fits)          # inner splits hold speakers out
        assert set(spk) - {fold.name} in [seen for _, seen in recorder.fits]  # the refit saw all 4
    assert len(recorder.threads) >= 2, "the splits did not run side by side"
