"""No test speaker's data reaches any fitted step, in any fold, inner CV included."""
import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from serbench.baselines import svm
from serbench.baselines.kernel_grid import TrainingKernel
from serbench.experiments.harness import FoldContext
from serbench.systems.run import prepare
from serbench.corpora import MANIFEST_COLUMNS
from serbench.experiments.normalize import normalize_per_speaker

CLASSES = ("angry", "happy", "sad")


def make_data(n_speakers=4, per_class=4, n_features=5, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(len(CLASSES), n_features)) * 2
    rows, feats = [], []
    for s in range(n_speakers):
        for k, c in enumerate(CLASSES):
            for i in range(per_class):
                uid = f"s{s}_{c}_{i}"
                rows.append({"utterance_id": uid, "path": f"/x/{uid}.wav", "speaker": f"s{s}", "gender": pd.NA,
                             "emotion": c, "label": c, "text_id": str(i), "session": pd.NA, "duration": 1.0,
                             "sample_rate": 16000})
                feats.append(centers[k] + rng.normal(size=n_features) + s)
    m = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).astype(MANIFEST_COLUMNS)
    m["status"], m["status_detail"] = "ok", ""
    X = pd.DataFrame(np.vstack(feats), index=pd.Index(m["utterance_id"], name="utterance_id"))
    return X, m


def loader(X, m):
    return lambda corpus, feature, **kw: (X.copy(), m.copy())


class FitRecorder:
    """Patches StandardScaler.fit, TrainingKernel.fit and SVC.fit to record which speakers' rows each fit saw.

    Rows are identified by matching them (the SVC's and the kernel's after undoing the scaler
    fitted just before them, as Pipeline.fit and the kernel grid search do) to the rows of the
    matrix the experiment works on. An SVC on a precomputed kernel saw the rows of the kernel
    fitted just before it.
    """

    def __init__(self, monkeypatch, matrix, speakers):
        self.matrix, self.speakers = np.asarray(matrix, float), np.asarray(speakers)
        self.fits = []  # (step, set of speakers), in call order
        self._last_scaler = None
        self._last_kernel = None  # (n rows, their speakers)
        real_scaler_fit, real_svc_fit, real_kernel_fit = StandardScaler.fit, SVC.fit, TrainingKernel.fit
        rec = self

        def scaler_fit(this, X, y=None, **kw):
            out = real_scaler_fit(this, X, y, **kw)
            rec.fits.append(("scaler", rec._speakers_of(np.asarray(X, float))))
            rec._last_scaler = this
            return out

        def kernel_fit(this, X, y=None):
            s = rec._last_scaler
            seen = rec._speakers_of(np.asarray(X, float) * s.scale_ + s.mean_)
            rec.fits.append(("kernel", seen))
            rec._last_kernel = (len(X), seen)
            return real_kernel_fit(this, X, y)

        def svc_fit(this, X, y, **kw):
            if this.kernel == "precomputed":
                n, seen = rec._last_kernel
                assert np.shape(X) == (n, n), "a precomputed-kernel SVC was not fitted on the last kernel"
            else:
                s = rec._last_scaler
                seen = rec._speakers_of(np.asarray(X, float) * s.scale_ + s.mean_)
            rec.fits.append(("svc", seen))
            return real_svc_fit(this, X, y, **kw)

        monkeypatch.setattr(StandardScaler, "fit", scaler_fit)
        monkeypatch.setattr(TrainingKernel, "fit", kernel_fit)
        monkeypatch.setattr(SVC, "fit", svc_fit)

    def _speakers_of(self, rows):
        d = ((rows[:, None, :] - self.matrix[None, :, :]) ** 2).sum(-1)
        nearest = d.argmin(1)
        assert np.allclose(d[np.arange(len(rows)), nearest], 0, atol=1e-8), "a fitted row matches no data row"
        return set(self.speakers[nearest].tolist())

    def take(self):
        out, self.fits = self.fits, []
        return out


def fit_each_fold(X, m, speaker_norm, on_fold):
    """The svm-linear system's own fold fit (what the harness runs), fold by fold: ``on_fold(fold, search)``."""
    plan = prepare("svm-linear", "demo", "/c", overrides={"feature": "IS09", "speaker_norm": speaker_norm},
                   load_features=loader(X, m))
    for fold in plan.folds:
        ctx = FoldContext(run_id="t", system=plan.system, fold=fold.name, seed=0)
        model = plan.task.fit(plan.data, fold.train, plan.payload, ctx)
        on_fold(fold, model.search)


@pytest.mark.parametrize("speaker_norm", [False, True])
def test_no_fitted_step_sees_the_test_speaker(tmp_path, monkeypatch, speaker_norm):
    X, m = make_data()
    spk = m["speaker"].to_numpy(str)
    matrix = normalize_per_speaker(X.to_numpy(), spk) if speaker_norm else X.to_numpy()
    recorder = FitRecorder(monkeypatch, matrix, spk)
    per_fold = {}
    fit_each_fold(X, m, speaker_norm, lambda fold, search: per_fold.__setitem__(fold.name, recorder.take()))
    assert sorted(per_fold) == ["s0", "s1", "s2", "s3"]
    n_grid = len(svm.param_grid("svm-linear")["svc__C"])
    for test_speaker, fits in per_fold.items():
        # 3 inner splits x grid, plus the refit; one scaler and one kernel per split and for the refit
        steps = [step for step, _ in fits]
        assert steps.count("svc") == 3 * n_grid + 1 and steps.count("scaler") == steps.count("kernel") == 3 + 1
        for step, seen in fits:
            assert test_speaker not in seen, f"{step} of fold {test_speaker} was fitted on its test speaker"
        # the inner CV itself holds out training speakers: some fits see only 2 of the 3
        assert any(len(seen) == 2 for _, seen in fits) and fits[-1][1] == set(spk) - {test_speaker}


def test_the_recorder_catches_a_leaky_fit(monkeypatch):
    """Negative control: a scaler fitted on all rows is reported, so the test above can fail."""
    X, m = make_data()
    spk = m["speaker"].to_numpy(str)
    recorder = FitRecorder(monkeypatch, X.to_numpy(), spk)
    pipe, _ = svm.make_svm()
    pipe.fit(X.to_numpy(), m["emotion"].to_numpy(str))
    assert all("s3" in seen for _, seen in recorder.take())


@pytest.mark.parametrize("speaker_norm", [False, True])
def test_outliers_in_the_test_speaker_change_nothing_fitted(tmp_path, speaker_norm):
    X, m = make_data()
    poisoned = X.copy()
    rows = (m["speaker"] == "s3").to_numpy()
    poisoned.loc[rows] = np.random.default_rng(1).normal(size=(rows.sum(), X.shape[1])) * 1e6

    def fitted(Xd):
        out = {}

        def keep(fold, search):
            est = search.best_estimator_
            sc, svc = est.named_steps["scaler"], est.named_steps["svc"]
            out[fold.name] = {"params": search.best_params_, "inner": search.cv_results_["mean_test_score"],
                              "mean": sc.mean_, "scale": sc.scale_, "sv": svc.support_vectors_,
                              "dual": svc.dual_coef_, "b": svc.intercept_}

        fit_each_fold(Xd, m, speaker_norm, keep)
        return out

    clean, dirty = fitted(X), fitted(poisoned)
    a, b = clean["s3"], dirty["s3"]  # s3 is the test speaker: its model must be bit-identical
    assert a["params"] == b["params"]
    for key in ("inner", "mean", "scale", "sv", "dual", "b"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # where s3 is a training speaker the model does change, so the comparison has power
    assert not np.array_equal(clean["s0"]["mean"], dirty["s0"]["mean"])
