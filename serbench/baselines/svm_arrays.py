"""A fitted SVM as plain arrays, scored with numpy alone: the same bits as the scikit-learn pipeline.

Prediction with a model bundle must not import scikit-learn, SciPy or skops (together 1.2 s of a
cold start on a 2-core machine). The fitted pipelines of :mod:`serbench.baselines.svm` are held here
as arrays, and their ``decision_function`` and ``predict`` are computed with the same floating-point
operations in the same order as scikit-learn and libsvm compute them, so every score and label is
bit-identical (tests/baselines/test_svm_arrays.py compares them on random and near-tie rows):

* :class:`KernelSVM`: ``StandardScaler -> TrainingKernel -> SVC(kernel='precomputed')`` (svm-linear,
  svm-rbf). The scaler as scikit-learn applies it (in the input's float dtype); the kernel against
  every stored standardized training row on one BLAS thread (:func:`kernel_base`,
  :func:`kernel_finish`, which :class:`~serbench.baselines.kernel_grid.TrainingKernel` itself calls),
  of which the support vectors' columns are taken; then libsvm's ``svm_predict_values``: for each
  class pair ``(i, j)``, ``i < j``, a sum started at 0 adding ``coef * K`` over the support vectors of
  class ``i`` then of ``j``, one term at a time in double (no pairwise or BLAS summation), minus
  ``rho``; the one-vs-one vote (ties to the lower class) gives the label, and the one-vs-rest scores are
  scikit-learn's: the negated value for two classes, else votes plus summed confidences
  ``s / (3 (|s| + 1))``.
* :class:`LinearSVM`: ``StandardScaler -> LinearSVC`` (svm-liblinear): ``X @ coef.T + intercept``, with
  ``coef.T`` held as the C-contiguous (F, C) array that scikit-learn's ``coef_.T`` is (liblinear's
  ``coef_`` is a transposed view), so numpy makes the same BLAS call.

Arrays (tensors of the bundle's safetensors file, :meth:`KernelSVM.tensors`): ``mean``, ``scale``
(F,); ``rows`` (n_train, F) the standardized training rows; ``support`` (l,) indices into them,
grouped by class; ``n_support`` (C,); ``dual_coef`` (C-1, l) libsvm's ``sv_coef``; ``rho`` (C(C-1)/2,);
``gamma`` (0-d, RBF). Classes are strings kept in model.json.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

KERNELS: tuple[str, ...] = ("linear", "rbf")
#: The dtypes a StandardScaler keeps (numpy's float types); any other input becomes float64 first.
_SCALER_DTYPES = (np.float64, np.float32, np.float16)

_CONTROLLER: list = []


def one_blas_thread() -> Any:
    """A context in which BLAS runs on one thread: every kernel product is computed in it.

    OpenBLAS rounds ``A @ B.T`` differently with 1 and 2 threads (last bits, ~1e-13 relative), so a
    kernel computed with the caller's thread count would make decision scores depend on ``--threads``
    and the executor. With one thread they do not.
    """
    if not _CONTROLLER:  # inspecting the loaded libraries takes milliseconds: once per process
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def squared_norms(rows: np.ndarray) -> np.ndarray:
    """``(n,)`` squared Euclidean norm of each row of ``rows`` (n, F) float64."""
    return np.einsum("ij,ij->i", rows, rows)


def kernel_base(kernel: str, rows: np.ndarray, sq_norms: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
    """The gamma-free matrix of ``X`` against the training ``rows``: dot products (linear) or squared
    distances (RBF), (n_rows, n_train) float64 C-contiguous, on one BLAS thread.

    ``rows`` (n_train, F) float64 C-contiguous, ``sq_norms`` their :func:`squared_norms`. ``X=None``
    means the training rows themselves; the result is then symmetric and, for RBF, has an exactly
    zero diagonal.
    """
    same = X is None
    A = rows if same else np.asarray(X, dtype=np.float64)
    with one_blas_thread():
        out = A @ rows.T
    if kernel == "linear":
        return out
    out *= -2.0
    out += (sq_norms if same else squared_norms(A))[:, None]
    out += sq_norms[None, :]
    np.maximum(out, 0.0, out=out)  # rounding can make a tiny distance negative
    if same:
        np.fill_diagonal(out, 0.0)
    return out


def kernel_finish(kernel: str, base: np.ndarray, gamma: float | None, out: np.ndarray | None = None) -> np.ndarray:
    """The kernel from :func:`kernel_base`: itself (linear) or ``exp(-gamma * base)`` (RBF) into ``out``."""
    if kernel == "linear":
        return base
    out = np.multiply(base, -float(gamma), out=out)
    return np.exp(out, out=out)


def standardize(X: Any, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(X - mean) / scale`` as ``StandardScaler.transform`` computes it: a copy in X's float dtype
    (float64 for other dtypes), the statistics cast to that dtype first."""
    X = np.asarray(X)
    if X.dtype not in _SCALER_DTYPES:
        X = X.astype(np.float64)
    if X.ndim != 2 or X.shape[1] != mean.shape[0]:
        raise ValueError(f"X has shape {X.shape}; the model expects (n_rows, {mean.shape[0]})")
    X = np.array(X, copy=True)
    X -= mean.astype(X.dtype)
    X /= scale.astype(X.dtype)
    return X


def _pair_index(n_classes: int) -> list[tuple[int, int]]:
    """The class pairs ``(i, j)``, ``i < j``, in libsvm's order (the columns of its decision values)."""
    return [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]


def one_vs_rest(pair_values: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's one-vs-rest scores from libsvm's pairwise values (n_rows, C(C-1)/2): per class, the
    pairs it wins (value >= 0 for the first class of the pair, < 0 for the second) plus its summed
    confidences ``s`` squashed to ``s / (3 (|s| + 1))``; (n_rows, C)."""
    n = pair_values.shape[0]
    votes = np.zeros((n, n_classes))
    summed = np.zeros((n, n_classes))
    for p, (i, j) in enumerate(_pair_index(n_classes)):
        d = pair_values[:, p]
        summed[:, i] += d
        summed[:, j] -= d
        second = d < 0
        votes[~second, i] += 1
        votes[second, j] += 1
    return votes + summed / (3 * (np.abs(summed) + 1))


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise ValueError(what)


def _floats(a: Any, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(a)
    _check(a.dtype == np.float64 and a.ndim == ndim, f"{name} must be a {ndim}-d float64 array, got {a.dtype} "
                                                     f"{a.shape}")
    _check(bool(np.all(np.isfinite(a))), f"{name} holds NaN or inf")
    return np.ascontiguousarray(a)


@dataclass(eq=False)
class KernelSVM:
    """``StandardScaler -> TrainingKernel -> SVC(kernel='precomputed', decision_function_shape='ovr')`` as
    arrays (see the module docstring); ``decision_function`` and ``predict`` as the pipeline's, bit for bit."""

    classes_: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    rows: np.ndarray
    kernel: str
    gamma: float | None
    support: np.ndarray
    n_support: np.ndarray
    dual_coef: np.ndarray
    rho: np.ndarray
    sq_norms: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.classes_ = np.asarray([str(c) for c in self.classes_])
        C = len(self.classes_)
        _check(C >= 2, f"an SVM needs at least 2 classes, got {C}")
        _check(self.kernel in KERNELS, f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        self.mean = _floats(self.mean, "mean", 1)
        self.scale = _floats(self.scale, "scale", 1)
        self.rows = _floats(self.rows, "rows", 2)
        self.dual_coef = _floats(self.dual_coef, "dual_coef", 2)
        self.rho = _floats(self.rho, "rho", 1)
        F = self.mean.shape[0]
        _check(self.scale.shape == (F,) and self.rows.shape[1] == F,
               f"mean {self.mean.shape}, scale {self.scale.shape} and rows {self.rows.shape} disagree")
        self.support = np.asarray(self.support)
        self.n_support = np.asarray(self.n_support)
        _check(self.support.ndim == 1 and self.support.dtype.kind in "iu", "support must be 1-d integers")
        _check(self.n_support.shape == (C,) and self.n_support.dtype.kind in "iu" and bool(np.all(self.n_support >= 0)),
               f"n_support must be {C} counts, got {self.n_support}")
        l = len(self.support)
        _check(int(self.n_support.sum()) == l, f"n_support sums to {int(self.n_support.sum())}, not {l} support vectors")
        _check(l == 0 or (int(self.support.min()) >= 0 and int(self.support.max()) < self.rows.shape[0]),
               f"support indices outside the {self.rows.shape[0]} training rows")
        _check(self.dual_coef.shape == (C - 1, l), f"dual_coef {self.dual_coef.shape}, expected {(C - 1, l)}")
        _check(self.rho.shape == (C * (C - 1) // 2,), f"rho {self.rho.shape}, expected ({C * (C - 1) // 2},)")
        if self.kernel == "rbf":
            _check(self.gamma is not None and np.isfinite(self.gamma) and self.gamma > 0,
                   f"an RBF kernel needs gamma > 0, got {self.gamma!r}")
            self.gamma = float(self.gamma)
        else:
            self.gamma = None
        self.support = self.support.astype(np.intp)
        self.n_support = self.n_support.astype(np.intp)
        self.sq_norms = squared_norms(self.rows)

    @property
    def n_features_in_(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def from_pipeline(cls, pipe: Any) -> "KernelSVM":
        """The arrays of a fitted ``Pipeline([('scaler', ...), ('kernel', TrainingKernel), ('svc', SVC)])``
        (:func:`~serbench.baselines.kernel_grid.kernel_grid_search`'s ``best_estimator_``); ValueError for
        any other shape."""
        steps = getattr(pipe, "named_steps", {})
        _check(list(steps) == ["scaler", "kernel", "svc"], f"not a scaler + kernel + SVC pipeline: {list(steps)}")
        scaler, km, svc = steps["scaler"], steps["kernel"], steps["svc"]
        _check(type(km).__name__ == "TrainingKernel", "the kernel step is not a TrainingKernel")
        _check(getattr(scaler, "with_mean", False) and getattr(scaler, "with_std", False),
               "the scaler must centre and scale")
        _check(getattr(svc, "kernel", None) == "precomputed" and getattr(svc, "_impl", None) == "c_svc"
               and getattr(svc, "decision_function_shape", None) == "ovr" and not getattr(svc, "break_ties", True)
               and not getattr(svc, "_sparse", True),
               "the SVC must be a dense C-SVC on a precomputed kernel with one-vs-rest scores and no tie breaking")
        binary = len(svc.classes_) == 2
        # scikit-learn flips the sign of the public coefficients and intercept of a two-class SVC;
        # libsvm scores with the unflipped ones and rho = -intercept.
        coef = -svc.dual_coef_ if binary else svc.dual_coef_
        intercept = -svc.intercept_ if binary else svc.intercept_
        return cls(classes_=svc.classes_, mean=scaler.mean_, scale=scaler.scale_, rows=km.rows_, kernel=km.kernel,
                   gamma=km.gamma, support=svc.support_, n_support=svc.n_support_,
                   dual_coef=np.asarray(coef, dtype=np.float64), rho=-np.asarray(intercept, dtype=np.float64))

    def kernel_values(self, X: Any) -> np.ndarray:
        """(l, n_rows): the kernel of the standardized rows against each support vector, as libsvm reads it
        (the kernel against every training row, then the support columns)."""
        Xs = standardize(X, self.mean, self.scale)
        base = kernel_base(self.kernel, self.rows, self.sq_norms, Xs)
        K = kernel_finish(self.kernel, base, self.gamma, out=base)
        return np.ascontiguousarray(K[:, self.support].T)

    def pair_values(self, X: Any) -> np.ndarray:
        """libsvm's decision values (n_rows, C(C-1)/2), one column per class pair in :func:`_pair_index` order."""
        kv = self.kernel_values(X)
        n = kv.shape[1]
        starts = np.concatenate([[0], np.cumsum(self.n_support)[:-1]]).astype(np.intp)
        pairs = _pair_index(len(self.classes_))
        out = np.empty((n, len(pairs)))
        for p, (i, j) in enumerate(pairs):
            acc = np.zeros(n)
            # One term at a time, in libsvm's order: the sum is sequential in double.
            for cls_, row in ((i, j - 1), (j, i)):
                coef = self.dual_coef[row]
                for k in range(starts[cls_], starts[cls_] + self.n_support[cls_]):
                    acc += coef[k] * kv[k]
            acc -= self.rho[p]
            out[:, p] = acc
        return out

    def decision_function(self, X: Any) -> np.ndarray:
        """One-vs-rest scores (n_rows, C), or (n_rows,) for two classes (larger: ``classes_[1]``)."""
        d = self.pair_values(X)
        if len(self.classes_) == 2:
            return -d[:, 0]
        return one_vs_rest(d, len(self.classes_))

    def predict(self, X: Any) -> np.ndarray:
        """libsvm's one-vs-one vote: per pair a vote for the first class where its value is > 0, else for
        the second; the most votes win, ties go to the lower class index."""
        d = self.pair_values(X)
        C = len(self.classes_)
        votes = np.zeros((d.shape[0], C), dtype=np.int64)
        for p, (i, j) in enumerate(_pair_index(C)):
            first = d[:, p] > 0
            votes[first, i] += 1
            votes[~first, j] += 1
        return self.classes_[np.argmax(votes, axis=1)]

    def tensors(self) -> dict[str, np.ndarray]:
        out = {"mean": self.mean, "scale": self.scale, "rows": self.rows,
               "support": self.support.astype(np.int64), "n_support": self.n_support.astype(np.int64),
               "dual_coef": self.dual_coef, "rho": self.rho}
        if self.gamma is not None:
            out["gamma"] = np.array(self.gamma, dtype=np.float64)
        return out

    def meta(self) -> dict:
        return {"solver": "libsvm", "kernel": self.kernel, "classes": [str(c) for c in self.classes_],
                "n_support_vectors": int(len(self.support)), "n_training_rows": int(self.rows.shape[0])}

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], meta: dict) -> "KernelSVM":
        need = ["mean", "scale", "rows", "support", "n_support", "dual_coef", "rho"]
        if meta.get("kernel") == "rbf":
            need.append("gamma")
        missing = [k for k in need if k not in tensors]
        _check(not missing, f"tensors {missing} are missing")
        gamma = tensors.get("gamma")
        if gamma is not None:
            _check(np.asarray(gamma).shape == (), "gamma must be one number")
        return cls(classes_=np.asarray(meta.get("classes") or []), mean=tensors["mean"], scale=tensors["scale"],
                   rows=tensors["rows"], kernel=str(meta.get("kernel")),
                   gamma=None if gamma is None else float(gamma), support=tensors["support"],
                   n_support=tensors["n_support"], dual_coef=tensors["dual_coef"], rho=tensors["rho"])


@dataclass(eq=False)
class LinearSVM:
    """``StandardScaler -> LinearSVC`` as arrays: ``decision_function`` and ``predict`` as the pipeline's."""

    classes_: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    coef_t: np.ndarray      # (F, C) C-contiguous: LinearSVC's coef_.T (C = 1 for two classes)
    intercept: np.ndarray

    def __post_init__(self) -> None:
        self.classes_ = np.asarray([str(c) for c in self.classes_])
        C = len(self.classes_)
        _check(C >= 2, f"an SVM needs at least 2 classes, got {C}")
        self.mean = _floats(self.mean, "mean", 1)
        self.scale = _floats(self.scale, "scale", 1)
        self.coef_t = _floats(self.coef_t, "coef_t", 2)
        self.intercept = _floats(self.intercept, "intercept", 1)
        cols = 1 if C == 2 else C
        F = self.mean.shape[0]
        _check(self.scale.shape == (F,) and self.coef_t.shape == (F, cols) and self.intercept.shape == (cols,),
               f"mean {self.mean.shape}, scale {self.scale.shape}, coef_t {self.coef_t.shape} and intercept "
               f"{self.intercept.shape} disagree for {C} classes")

    @property
    def n_features_in_(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def from_pipeline(cls, pipe: Any) -> "LinearSVM":
        steps = getattr(pipe, "named_steps", {})
        _check(list(steps) == ["scaler", "svc"] and type(steps["svc"]).__name__ == "LinearSVC",
               f"not a scaler + LinearSVC pipeline: {list(steps)}")
        scaler, svc = steps["scaler"], steps["svc"]
        _check(getattr(scaler, "with_mean", False) and getattr(scaler, "with_std", False),
               "the scaler must centre and scale")
        return cls(classes_=svc.classes_, mean=scaler.mean_, scale=scaler.scale_, coef_t=svc.coef_.T,
                   intercept=np.asarray(svc.intercept_, dtype=np.float64))

    def decision_function(self, X: Any) -> np.ndarray:
        """``X_std @ coef.T + intercept``: (n_rows, C), or (n_rows,) for two classes."""
        scores = standardize(X, self.mean, self.scale) @ self.coef_t + self.intercept
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        return self.classes_[(scores > 0).astype(np.intp) if scores.ndim == 1 else np.argmax(scores, axis=1)]

    def tensors(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "coef_t": self.coef_t, "intercept": self.intercept}

    def meta(self) -> dict:
        return {"solver": "liblinear", "kernel": "linear", "classes": [str(c) for c in self.classes_]}

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], meta: dict) -> "LinearSVM":
        missing = [k for k in ("mean", "scale", "coef_t", "intercept") if k not in tensors]
        _check(not missing, f"tensors {missing} are missing")
        return cls(classes_=np.asarray(meta.get("classes") or []), mean=tensors["mean"], scale=tensors["scale"],
                   coef_t=tensors["coef_t"], intercept=tensors["intercept"])


def from_pipeline(pipe: Any) -> KernelSVM | LinearSVM:
    """The array model of a fitted serbench SVM pipeline (precomputed-kernel SVC or LinearSVC); ValueError
    for a pipeline it cannot hold exactly."""
    steps = list(getattr(pipe, "named_steps", {}))
    return KernelSVM.from_pipeline(pipe) if "kernel" in steps else LinearSVM.from_pipeline(pipe)


def from_tensors(tensors: dict[str, np.ndarray], meta: dict) -> KernelSVM | LinearSVM:
    """The array model stored by :func:`to_tensors`; ValueError naming what is missing or misshapen."""
    solver = meta.get("solver")
    if solver == "libsvm":
        return KernelSVM.from_tensors(tensors, meta)
    if solver == "liblinear":
        return LinearSVM.from_tensors(tensors, meta)
    raise ValueError(f"unknown SVM solver {solver!r}")


__all__ = ["KERNELS", "KernelSVM", "LinearSVM", "from_pipeline", "from_tensors", "kernel_base", "kernel_finish",
           "one_blas_thread", "one_vs_rest", "squared_norms", "standardize"]
