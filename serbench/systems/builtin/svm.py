"""The SVM baselines of the paper's Table V: standardize + SVM on a functional feature set.

Stored as ``<feature>-<classifier>`` (``IS10-svm-linear``), ``-spknorm`` with per-speaker
normalization, ``-balanced`` with balanced class weights (not the paper's).

Per outer fold, on the training speakers only (:func:`serbench.baselines.svm.select_model`):
the scaler and every hyper-parameter are chosen by an inner CV that holds out whole
training speakers, scoring UA; the winner is refit on all training rows; the test
speaker's rows are only ever passed to ``predict`` / ``decision_function``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from serbench.systems.base import ModelParts, System, SystemOptionError
from serbench.systems.naming import Naming, Part, flag, text, word
from serbench.systems.registry import register
from serbench.systems.settings import Options, Settings, setting

if TYPE_CHECKING:
    import numpy as np

    from serbench.experiments.dataset import Dataset, FoldOutput
    from serbench.experiments.harness import FoldContext

CLASS_WEIGHTS: tuple[str, ...] = ("none", "balanced")


@dataclass(frozen=True)
class SVMSettings(Settings):
    """Settings of the SVM baselines (the grids themselves are in :mod:`serbench.baselines.svm`)."""

    feature: str | None = setting(None, "functional feature set the SVM reads", flag="--feature")
    class_weight: str = setting("none", "'balanced' weights classes by inverse frequency (not the paper's)",
                                check=Options(*CLASS_WEIGHTS), flag="--class-weight")
    layer: str | None = setting(None, "self-supervised sets only: the hidden layer whose pooled mean and std the SVM "
                                      "reads (0: the input of the first transformer layer), or 'auto' (the default "
                                      "for those sets): chosen per fold by the inner speaker-grouped CV",
                                flag="--layer")

    def as_dict(self) -> dict:
        # Unset (every non-SSL run) it is left out, so the identities of runs stored before it existed hold.
        d = super().as_dict()
        if d.get("layer") is None:
            d.pop("layer", None)
        return d

    def check(self) -> None:
        from serbench.features.ssl import is_ssl

        if self.layer is not None:
            if not is_ssl(self.feature):
                raise self.bad("layer", f"{self.feature} has no layers; --layer is for the self-supervised sets "
                                        "(`serbench models`)")
            if self.layer != "auto" and not str(self.layer).isdigit():
                raise self.bad("layer", "give a layer number (0: the input of the first transformer layer) or auto")
        if self.feature == "melseg":
            raise self.bad("feature", "melseg is the log-mel the deep systems read, not a functional set; "
                                      "run it with `serbench deep --corpus C --root DIR --model cnn-sru --segments N`")


def functional_sets() -> list[str]:
    """The feature sets an SVM can read: every registered set of one vector per utterance."""
    from serbench.features.registry import Kind, list_feature_sets

    return [fs.name for fs in list_feature_sets() if fs.kind == Kind.VECTOR]


def canonical_feature(feature: str) -> str:
    """'is10' -> 'IS10': the feature registry's spelling; unknown names pass through unchanged
    (the feature loader rejects them, naming the known sets)."""
    from serbench.features.registry import FeatureSetError, get_feature_set

    try:
        return get_feature_set(feature).name
    except FeatureSetError:
        return str(feature)


class collected_warnings:
    """Collect the warnings of a block (scikit-learn repeats one per inner fit) into one line per kind:
    ``ConvergenceWarning x12: Liblinear failed to converge...``."""

    def __enter__(self) -> list[str]:
        import warnings

        self._ctx = warnings.catch_warnings(record=True)
        self._seen = self._ctx.__enter__()
        warnings.simplefilter("always")
        self.lines: list[str] = []
        return self.lines

    def __exit__(self, *exc: object) -> None:
        from collections import Counter

        self._ctx.__exit__(*exc)
        counts = Counter((w.category.__name__, str(w.message).splitlines()[0]) for w in self._seen)
        self.lines.extend(f"{cat} x{n}: {msg}" for (cat, msg), n in counts.items())


@dataclass
class FittedSVM:
    """A fold's fitted model selection (refit on all training rows) and what to record about it.

    ``calibration`` (model bundles only, :meth:`SVMBaseline.calibrate`): ``{"method", "scale", ...}``;
    with it :meth:`SVMBaseline.predict` gives probabilities, ``softmax(scale * decision values)``.
    """

    search: Any   # the model selection refit on all rows, or (restored from a bundle) its array model
    info: dict
    calibration: dict | None = None
    columns: tuple[int, int] | None = None   # the layer block an SSL set's SVM reads (None: every column)


def _rows(data: Dataset, rows: np.ndarray, columns: tuple[int, int] | None) -> np.ndarray:
    """``rows`` of the inputs, only the ``columns`` block when given (one copy, of that block only).

    ``columns`` place a layer in the set's whole row; data that holds only some layers' blocks
    (``meta['layers']``) has that layer's block elsewhere.
    """
    if columns is None:
        return data.inputs[rows]
    a, b = columns
    held = data.meta.get("layers")
    if held:
        i = list(held).index(a // (b - a))
        a, b = i * (b - a), (i + 1) * (b - a)
    return data.inputs[rows, a:b]


#: model.json ``model.stored_as`` of bundles whose SVM is held as arrays (older bundles: a skops pipeline).
STORED_AS = "arrays: svm.* tensors of weights.safetensors, scored with numpy (serbench.baselines.svm_arrays)"


def _meta(model: FittedSVM, n_features: int, classes: Any) -> dict:
    """What model.json records about a fitted SVM (both layouts)."""
    meta = {"n_features": int(n_features), "classes": [str(c) for c in classes],
            "best_params": {str(k): v for k, v in (model.info.get("best_params") or {}).items()},
            "inner_cv_ua": model.info.get("inner_cv_ua")}
    if model.calibration:
        meta["calibration"] = dict(model.calibration)
    if model.columns is not None:   # the layer block of a self-supervised set the SVM reads
        meta["columns"] = [int(c) for c in model.columns]
    return meta


def _normalization(mean: Any, scale: Any) -> dict:
    return {"standardize": "x -> (x - mean) / scale, fitted on every training row",
            "mean": [float(v) for v in mean], "scale": [float(v) for v in scale]}


def export_skops(model: FittedSVM) -> ModelParts:
    """The parts of the bundle layout before the array format: the refit pipeline in a skops file
    (``svm.skops``). Kept to write such bundles in tests; :meth:`SVMBaseline.restore` still reads them."""
    pipe = getattr(model.search, "best_estimator_", model.search)
    scaler = pipe.named_steps["scaler"]
    return ModelParts(estimators={"svm": pipe}, score_kind="probability" if model.calibration else "decision",
                      meta=_meta(model, scaler.n_features_in_, pipe.classes_),
                      normalization=_normalization(scaler.mean_, scaler.scale_))


def grid_edge_warnings(best: dict, grid: dict) -> list[str]:
    """One line per hyper-parameter chosen at the lowest or highest number of its grid.

    ``best`` ``{'svc__C': 0.0001}``, ``grid`` ``{'svc__C': [0.0001, ..., 10.0]}``. The same choice
    gives the same line in every fold, so the reports group the folds under it.
    """
    out = []
    for key, values in grid.items():
        numbers = sorted(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))
        value = best.get(key)
        if len(numbers) < 2 or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        name = key.split("__")[-1]
        if value in (numbers[0], numbers[-1]):
            side, beyond = ("lowest", "below") if value == numbers[0] else ("highest", "above")
            shown = ", ".join(repr(v) if isinstance(v, str) else f"{v:g}" for v in values)
            out.append(f"{name} = {value:g} is the {side} value of its grid ({shown}): the best {name} may lie "
                       f"{beyond} it")
    return out


class SVMBaseline(System):
    """Standardize + SVC with hyper-parameters from a speaker-grouped inner CV."""

    kind = "baseline"
    inputs = "features"
    table = "features"
    settings_class = SVMSettings
    # A fixed layer of a self-supervised set is part of the name (wavlm-base-plus-svm-linear-L12); the
    # per-fold choice (layer auto, the default) is not.
    naming = Naming(prefix=(text("feature"),),
                    suffix=(flag("speaker_norm", "spknorm"), word("class_weight", CLASS_WEIGHTS, omit="none"),
                            Part("layer", lambda v: None if v in (None, "auto") else f"L{v}", r"L(?P<v>\d+)",
                                 lambda t: t, absent=None)))
    paper = "Jiang et al., Table V (SVM on openSMILE and spectral functionals)"
    preload = ("serbench.baselines.kernel_grid", "sklearn.model_selection")

    def settings(self, profile: str | None = None, overrides: dict | None = None) -> Settings:
        overrides = dict(overrides or {})
        if overrides.get("feature"):
            overrides["feature"] = canonical_feature(overrides["feature"])
        # The SVM has one recipe: a deep --profile given to a whole grid does not apply to it.
        s = self.settings_class.build(None, overrides, system=self.name)
        if s.feature is None:
            raise SystemOptionError(f"{self.name} needs --feature: one of {', '.join(functional_sets())}")
        from serbench.features.ssl import is_ssl

        if is_ssl(s.feature) and s.layer is None:
            s = s.replace(layer="auto")
        return s

    def describe(self, s: Settings) -> dict:
        from serbench.baselines import svm
        from serbench.experiments.inputs import NAN_POLICY
        from serbench.experiments.protocol import MAX_INNER_SPLITS

        from serbench.features.ssl import provenance

        out = {"param_grid": svm.param_grid(self.name), "scoring": svm.SCORING, "classifier": self.name,
               "inner_cv": "speaker-grouped over the fold's training speakers: LeaveOneGroupOut with at most "
                           f"{MAX_INNER_SPLITS} speakers, else GroupKFold({MAX_INNER_SPLITS})",
               "nan_policy": NAN_POLICY}
        upstream = provenance(s.feature)
        if upstream is not None:
            out["upstream"] = upstream
            out["layer"] = (f"layer {s.layer}" if s.layer != "auto" else
                            "chosen per fold: the layer whose model selection scores the best inner-CV UA on the "
                            "fold's training speakers (fold records: layer, layer_inner_ua)")
        return out

    def feature_columns(self, s: Settings) -> list[str] | None:
        # A fixed layer of a self-supervised set: only its block is read from the cache (a large upstream's
        # row holds every layer: wavlm-large 25 x 2,048 columns).
        if s.layer is None or s.layer == "auto":
            return None
        from serbench.features.ssl import columns_of_layer

        return columns_of_layer(s.feature, int(s.layer))

    def check_data(self, data: Dataset, s: Settings) -> None:
        import numpy as np

        n = len(np.unique(data.speakers))
        if n < 3:  # each fold's inner CV needs 2 training speakers
            raise SystemOptionError(f"{self.name}: the inner model-selection CV needs at least 2 training speakers "
                                    f"per fold, so at least 3 speakers; {data.corpus} has {n}")
        if s.layer is not None:
            from serbench.features.ssl import check_layer_data

            check_layer_data(data, s.feature, s.layer)

    def fit(self, data: Dataset, rows: np.ndarray, s: Settings, ctx: FoldContext) -> FittedSVM:
        import numpy as np

        from serbench.baselines import svm

        speakers = data.speakers[rows]
        t0 = time.perf_counter()

        def select(X):
            return svm.select_model(X, data.true_labels(rows), speakers, classifier=self.name, seed=int(ctx.seed),
                                    class_weight=None if s.class_weight == "none" else s.class_weight,
                                    jobs=int(ctx.threads or 1))

        columns, layer_info = None, {}
        with collected_warnings() as caught:
            if s.layer is None:
                search = select(data.inputs[rows])
            else:  # an SSL set: one layer's block, given or chosen on the training speakers' inner CV
                from serbench.features.ssl import layer_blocks

                blocks = layer_blocks(data.inputs.shape[1], int(data.meta["layer_blocks"]))
                # The layers the blocks hold: every one, or the one fixed layer read alone.
                held = list(data.meta.get("layers") or range(len(blocks)))
                layers = held if s.layer == "auto" else [int(s.layer)]
                # The training rows of one block at a time: a fold never copies every layer's columns.
                searches = {k: select(data.inputs[rows, slice(*blocks[held.index(k)])]) for k in layers}
                best = max(searches, key=lambda k: (searches[k].best_score_, -k))
                width = blocks[0][1] - blocks[0][0]
                # The bundle's columns are the layer's place in the set's whole row, as prediction extracts it.
                search, columns = searches[best], (best * width, (best + 1) * width)
                layer_info = {"layer": int(best)}
                if s.layer == "auto":
                    layer_info["layer_inner_ua"] = {str(k): float(v.best_score_) for k, v in searches.items()}
        fit_s = time.perf_counter() - t0
        refit_s = float(search.refit_time_)
        return FittedSVM(search, {
            **layer_info,
            "best_params": {str(k): v for k, v in search.best_params_.items()},
            "inner_cv_ua": float(search.best_score_),
            "inner_cv": type(search.cv).__name__,
            "n_inner_splits": int(search.n_splits_),
            "n_train": int(len(rows)),
            "n_train_speakers": int(len(np.unique(speakers))),
            "timings": {"model_selection_s": fit_s - refit_s, "refit_s": refit_s},
            "warnings": caught + grid_edge_warnings(search.best_params_, svm.param_grid(self.name)),
        }, columns=columns)

    def calibrate(self, model: FittedSVM, data: Dataset, rows: np.ndarray, s: Settings,
                  ctx: FoldContext) -> FittedSVM:
        """``model`` with probabilities: one softmax slope fitted on out-of-fold decision values.

        The chosen pipeline (same hyper-parameters) is refit on each speaker-grouped split of
        ``rows`` (:func:`~serbench.experiments.protocol.inner_cv`, as the model selection) and
        scores the held-out speakers; :func:`serbench.baselines.calibration.fit_scale` fits the
        slope on those values only. Used by ``serbench train``, not by benchmark folds (the store
        keeps decision scores). Costs one more fit per split.
        """
        import numpy as np

        from serbench.baselines import calibration
        from serbench.experiments.protocol import inner_cv

        t0 = time.perf_counter()
        pipe = getattr(model.search, "best_estimator_", model.search)
        X, speakers = _rows(data, rows, getattr(model, "columns", None)), data.speakers[rows]
        cv = inner_cv(speakers)
        with collected_warnings() as caught:
            oof = calibration.out_of_fold_decisions(pipe, X, data.true_labels(rows), speakers, data.labels, cv=cv)
        y = np.asarray(data.y[rows])
        usable = ~np.all(np.isnan(oof), axis=1)
        scale = calibration.fit_scale(oof[usable], y[usable])
        probs = calibration.probabilities(oof[usable], scale)
        plain = calibration.probabilities(oof[usable], 1.0)
        record = {
            "method": "temperature: softmax(scale * decision values), scale fitted by maximum likelihood on "
                      f"out-of-fold decision values of speaker-grouped splits ({type(cv).__name__}, "
                      f"{cv.get_n_splits(X, y, speakers)} splits)",
            "scale": scale, "n_rows": int(usable.sum()),
            "out_of_fold": {"brier": calibration.brier_score(probs, y[usable]),
                            "brier_unit_scale": calibration.brier_score(plain, y[usable]),
                            "log_loss": calibration.log_loss(probs, y[usable])},
            "fit_s": time.perf_counter() - t0, "warnings": caught,
        }
        import dataclasses

        return dataclasses.replace(model, calibration=record)

    def predict(self, model: FittedSVM, data: Dataset, rows: np.ndarray, s: Settings,
                ctx: FoldContext) -> FoldOutput:
        import numpy as np

        from serbench.baselines import svm
        from serbench.experiments.dataset import FoldOutput

        X = _rows(data, rows, model.columns)
        scores = svm.decision_scores(model.search, X, data.labels)
        if model.calibration:
            from serbench.baselines.calibration import probabilities

            # The class is the arg-max of the decision values, hence of the probabilities (one shared
            # slope keeps their order). It differs from libsvm's one-vs-one vote only where votes
            # tie (libsvm takes the first class, the decision values the larger summed confidence):
            # 30 of 1200 CASIA rows.
            filled = np.where(np.isnan(scores), -np.inf, scores)
            return FoldOutput(probabilities(scores, model.calibration["scale"]),
                              np.argmax(filled, axis=1).astype(np.int64), {"decision": scores})
        decided = np.asarray(model.search.predict(X)).astype(str)  # libsvm's one-vs-one vote
        index = {lab: i for i, lab in enumerate(data.labels)}
        return FoldOutput(scores, np.array([index[d] for d in decided], dtype=np.int64))

    def summarize(self, fold_timings: dict[str, dict]) -> dict:
        ms = float(sum(t.get("model_selection_s") or 0.0 for t in fold_timings.values()))
        return {"model_selection_s": ms,
                "refit_s": float(sum(t.get("refit_s") or 0.0 for t in fold_timings.values()))}

    # Bundles written before the array format hold the refit pipeline (scaler, [kernel,] SVC) in a skops
    # file; its precomputed-kernel step keeps the standardized training rows.
    trusted_types = ("serbench.baselines.kernel_grid.TrainingKernel",)

    def export(self, model: FittedSVM, s: Settings) -> ModelParts:
        """The fitted model as arrays in the bundle's safetensors file (``svm.*`` tensors, see
        :mod:`serbench.baselines.svm_arrays`) and facts in model.json; prediction then needs numpy only."""
        from serbench.baselines import svm_arrays

        fitted = getattr(model.search, "best_estimator_", model.search)
        try:
            arrays = (fitted if isinstance(fitted, (svm_arrays.KernelSVM, svm_arrays.LinearSVM))
                      else svm_arrays.from_pipeline(fitted))
        except ValueError as exc:   # a pipeline serbench's own fit never makes (GridSearchCV's SVC(kernel=...))
            parts = export_skops(model)
            parts.meta["stored_as"] = f"skops: svm.skops (not as arrays: {exc})"
            return parts
        meta = _meta(model, arrays.n_features_in_, arrays.classes_)
        meta.update(stored_as=STORED_AS, svm=arrays.meta())
        return ModelParts(tensors={f"svm.{k}": v for k, v in arrays.tensors().items()},
                          score_kind="probability" if model.calibration else "decision", meta=meta,
                          normalization=_normalization(arrays.mean, arrays.scale))

    def restore(self, parts: ModelParts, s: Settings, labels, device: str = "cpu") -> FittedSVM:
        if "svm" in parts.estimators:   # a bundle written before the array format: the skops pipeline
            from sklearn.pipeline import Pipeline

            fitted = parts.estimators["svm"]
            if not isinstance(fitted, Pipeline) or "scaler" not in fitted.named_steps:
                raise SystemOptionError(f"the saved {self.name} model is not a standardize + SVM pipeline")
            n_features = int(fitted.named_steps["scaler"].n_features_in_)
        elif str(parts.meta.get("stored_as") or "").startswith("arrays"):
            from serbench.baselines import svm_arrays

            tensors = {k[len("svm."):]: v for k, v in parts.tensors.items() if k.startswith("svm.")}
            try:
                fitted = svm_arrays.from_tensors(tensors, {**(parts.meta.get("svm") or {}),
                                                           "classes": parts.meta.get("classes")})
            except ValueError as exc:
                raise SystemOptionError(f"the saved {self.name} model's arrays do not fit together ({exc}); the "
                                        "bundle is damaged") from None
            n_features = fitted.n_features_in_
        else:
            raise SystemOptionError(f"the saved {self.name} model holds no SVM (neither svm.* tensors nor a skops "
                                    "pipeline); the bundle is damaged")
        unknown = sorted(set(map(str, fitted.classes_)) - set(map(str, labels)))
        if unknown:
            raise SystemOptionError(f"the saved {self.name} model predicts classes {unknown} outside its labels")
        want = parts.meta.get("n_features")
        if want is not None and want != n_features:
            raise SystemOptionError(f"the saved {self.name} model reads {n_features} features, model.json says "
                                    f"{want}; the bundle is damaged")
        calibration = parts.meta.get("calibration")
        if parts.score_kind == "probability":
            scale = (calibration or {}).get("scale")
            if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not scale > 0:
                raise SystemOptionError(f"the saved {self.name} model gives probabilities but holds no calibration "
                                        "slope (model.json 'model.calibration.scale'); the bundle is damaged")
        else:
            calibration = None
        columns = parts.meta.get("columns")
        if columns is not None and (not isinstance(columns, list) or len(columns) != 2
                                    or not all(isinstance(c, int) and c >= 0 for c in columns)
                                    or columns[1] - columns[0] != n_features):
            raise SystemOptionError(f"the saved {self.name} model's layer columns {columns!r} do not fit its "
                                    "scaler; the bundle is damaged")
        return FittedSVM(fitted, {"best_params": parts.meta.get("best_params")}, calibration,
                         tuple(columns) if columns is not None else None)

    def hyper_parameter_grid(self) -> dict[str, list]:
        """The grid the speaker-grouped inner CV searches (``serbench systems NAME`` shows it)."""
        from serbench.baselines import svm

        return {k.split("__")[-1]: v for k, v in svm.param_grid(self.name).items()}


@register
class LinearSVM(SVMBaseline):
    name = "svm-linear"
    order = 10
    summary = "linear SVM on standardized functionals (the paper's Table V)"


@register
class RBFSVM(SVMBaseline):
    name = "svm-rbf"
    order = 11
    summary = "RBF SVM on standardized functionals"


@register
class LiblinearSVM(SVMBaseline):
    name = "svm-liblinear"
    order = 12
    summary = "linear SVM by liblinear, for corpora too large for a kernel matrix (not the paper's solver)"
