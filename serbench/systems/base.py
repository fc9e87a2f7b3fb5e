"""What a system is: a name, settings, the inputs it reads, and how it trains and predicts.

A system subclasses :class:`System`, sets its class attributes and implements :meth:`fit`
and :meth:`predict` (or :meth:`run_fold` when fitting and predicting cannot be separated);
:func:`serbench.systems.register` makes it known to the CLI, the grid, the store and the
reports. See CONTRIBUTING.md for a worked example.

Heavy libraries (torch, scikit-learn) are imported inside the methods that need them, so
that the registry (which the CLI reads for its choices and help) stays cheap to import.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from serbench.errors import SerbenchError
from serbench.systems.naming import Naming, flag
from serbench.systems.settings import Settings

if TYPE_CHECKING:  # the registry stays light: numpy and the experiment types load when a system runs
    import numpy as np

    from serbench.experiments.dataset import Dataset, FoldOutput
    from serbench.experiments.harness import FoldContext
    from serbench.experiments.protocol import Fold


class SystemOptionError(SerbenchError):
    """A system cannot run as asked (bad options for it, data it cannot use)."""


@dataclass
class ModelParts:
    """A fitted model as data that loads without executing code (:meth:`System.export`).

    * ``tensors``: name -> numeric array (weights, normalization statistics), saved as safetensors;
    * ``estimators``: name -> scikit-learn estimator, saved with skops and loaded with the
      system's :attr:`System.trusted_types` allow-list only (never unpickled);
    * ``meta``: JSON-safe facts :meth:`System.restore` needs besides the settings (sizes, counts);
    * ``score_kind``: ``"probability"`` (softmax outputs) or ``"decision"`` (e.g. SVM
      one-vs-rest decision scores, not probabilities);
    * ``normalization``: JSON-safe input statistics the model standardizes with, recorded in the
      bundle for the reader (restore reads the tensors/estimators, not this copy).
    """

    tensors: dict[str, Any] = field(default_factory=dict)
    estimators: dict[str, Any] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    score_kind: str = "probability"
    normalization: dict = field(default_factory=dict)


class System:
    """Base class of every registered system.

    Class attributes:

    * ``name``: the registry key and the core of stored names (``svm-linear``, ``cnn-sru``);
    * ``kind``: ``"baseline"`` (feature functionals) or ``"deep"`` (log-mel input);
    * ``settings_class``: its :class:`~serbench.systems.settings.Settings` dataclass;
    * ``naming``: how settings appear in stored names (default: ``-spknorm`` only);
    * ``inputs``: ``"features"`` (the ``feature`` setting names the set) or ``"melseg"``;
    * ``summary``: one line for ``--help``; ``paper``: the reference it reproduces;
    * ``table``: where the reports show it: ``"features"`` (Table V rows), ``"cnn-sru"``
      (Tables I-IV), ``"systems"`` (the systems table) or ``""`` (only in overviews);
    * ``order``: where it sits in lists and tables (lower first);
    * ``preload``: modules worker processes import as they start (the heavy libraries of ``fit``).
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "deep"
    settings_class: ClassVar[type[Settings]] = Settings
    naming: ClassVar[Naming] = Naming(suffix=(flag("speaker_norm", "spknorm"),))
    inputs: ClassVar[str] = "melseg"
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    table: ClassVar[str] = ""
    order: ClassVar[int] = 100
    #: Modules worker processes import as they start, while the client loads data.
    preload: ClassVar[tuple[str, ...]] = ()
    #: Types beyond skops' defaults (scikit-learn, numpy, builtins) that this system's saved
    #: estimators may hold; a saved model holding any other type is refused on load.
    trusted_types: ClassVar[tuple[str, ...]] = ()

    # ---------------------------------------------------------------- settings and names
    def settings(self, profile: str | None = None, overrides: dict | None = None) -> Settings:
        """This system's settings for ``profile`` with ``overrides`` (``--set``), validated."""
        return self.settings_class.build(profile, overrides, system=self.name)

    def stored_name(self, s: Settings) -> str:
        """The results-store name of a run with settings ``s``."""
        return self.naming.format(self.name, s)

    def parse_name(self, name: str) -> dict[str, Any] | None:
        """The settings a stored name encodes (None: not a name of this system)."""
        return self.naming.parse(self.name, name)

    def feature_set(self, s: Settings) -> str:
        """The feature set this system reads with settings ``s``."""
        return str(getattr(s, "feature", None) or self.inputs)

    def feature_columns(self, s: Settings) -> list[str] | None:
        """The columns of :meth:`feature_set` this system reads with settings ``s`` (None: all of them); the
        others are never read from the cache."""
        return None

    def describe(self, s: Settings) -> dict:
        """Human-readable lines about what the settings mean, for run.json's config (JSON-safe)."""
        return {}

    def check_data(self, data: Dataset, s: Settings) -> None:
        """Refuse data this system cannot use (raise :class:`SystemOptionError`), before any run is opened."""

    def resources(self, s: Settings, device: str) -> dict | None:
        """Worker resources a fold task needs (``{"GPU": 1}`` for CUDA training)."""
        return {"GPU": 1} if device.startswith("cuda") else None

    # ---------------------------------------------------------------- training
    def fit(self, data: Dataset, rows: np.ndarray, s: Settings, ctx: FoldContext) -> Any:
        """Train on ``rows`` of ``data`` (training speakers only); return the fitted model."""
        raise NotImplementedError(f"{type(self).__name__}.fit")

    def predict(self, model: Any, data: Dataset, rows: np.ndarray, s: Settings, ctx: FoldContext) -> FoldOutput:
        """Scores (and decisions) of ``model`` for ``rows``; ``info`` may carry details."""
        raise NotImplementedError(f"{type(self).__name__}.predict")

    def run_fold(self, data: Dataset, s: Settings, fold: Fold, ctx: FoldContext) -> FoldOutput:
        """One fold: :meth:`fit` on ``fold.train``, :meth:`predict` ``fold.test``, with timings."""
        import numpy as np

        from serbench.experiments.dataset import FoldOutput

        t0 = time.perf_counter()
        model = self.fit(data, np.asarray(fold.train), s, ctx)
        t1 = time.perf_counter()
        out = self.predict(model, data, np.asarray(fold.test), s, ctx)
        t2 = time.perf_counter()
        info = dict(out.info)
        info.update(self.fold_info(model))
        timings = {"fit_s": t1 - t0, "predict_s": t2 - t1, **(info.get("timings") or {})}
        info["timings"] = timings
        return FoldOutput(out.scores, out.predicted, info)

    def fold_info(self, model: Any) -> dict:
        """What to store with a fold about its fitted model (chosen hyper-parameters, curves)."""
        info = getattr(model, "info", None)
        return dict(info) if isinstance(info, dict) else {}

    def summarize(self, fold_timings: dict[str, dict]) -> dict:
        """Run-level timings from the folds' timings (e.g. mean training speed)."""
        return {}

    # ---------------------------------------------------------------- saving a fitted model
    @property
    def exportable(self) -> bool:
        """Whether :meth:`export` and :meth:`restore` are implemented (a model bundle can be written)."""
        return type(self).export is not System.export and type(self).restore is not System.restore

    def export(self, model: Any, s: Settings) -> ModelParts:
        """``model`` (from :meth:`fit`) as :class:`ModelParts`: arrays, estimators and JSON facts.

        :meth:`restore` of the parts must give a model whose :meth:`predict` returns the same
        scores (to float rounding). Never include code or pickled objects.
        """
        raise SystemOptionError(f"system {self.name} cannot be saved as a model bundle: it implements no "
                                "export/restore")

    def restore(self, parts: ModelParts, s: Settings, labels: Sequence[str], device: str = "cpu") -> Any:
        """The fitted model from :meth:`export`'s ``parts``, ready for :meth:`predict` on ``device``.

        ``labels`` are the class labels the model was trained on (score columns, in order).
        Raise :class:`SystemOptionError` when the parts do not fit the settings.
        """
        raise SystemOptionError(f"system {self.name} cannot load a model bundle: it implements no export/restore")

    def __call__(self, data: Dataset, s: Settings, fold: Fold, ctx: FoldContext) -> FoldOutput:
        # The harness calls task(data, payload, fold, ctx): the system itself is the task.
        return self.run_fold(data, s, fold, ctx)

    def __repr__(self) -> str:
        return f"<system {self.name}>"


def checkpoint(ctx: FoldContext, stage: str) -> Path | None:
    """Where ``stage`` of this fold checkpoints (None: no checkpoints, e.g. on a Dask worker)."""
    return None if ctx.checkpoint_dir is None else Path(ctx.checkpoint_dir) / f"{stage}.pt"


def module_tensors(prefix: str, module: Any) -> dict[str, np.ndarray]:
    """A torch module's state dict as ``{prefix + key: numpy array}`` (CPU copies, C-contiguous, same shapes)."""
    # .contiguous().numpy().copy(), not np.ascontiguousarray: that makes 0-d tensors (BatchNorm's
    # num_batches_tracked) 1-d, and the shapes must round-trip exactly.
    return {prefix + k: v.detach().cpu().contiguous().numpy().copy() for k, v in module.state_dict().items()}


def load_module(module: Any, tensors: dict[str, np.ndarray], prefix: str, what: str) -> Any:
    """Load ``tensors[prefix + key]`` into ``module`` (every key, exact shapes); returns it in eval mode.

    A missing, extra or misshapen tensor raises :class:`SystemOptionError` naming ``what``.
    """
    import numpy as np
    import torch

    own = module.state_dict()
    given = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing = sorted(set(own) - set(given))
    extra = sorted(set(given) - set(own))
    wrong = sorted(k for k in set(own) & set(given) if tuple(own[k].shape) != tuple(given[k].shape))
    if missing or extra or wrong:
        parts = [f"{label} {keys[:3]}{' ...' if len(keys) > 3 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong)) if keys]
        raise SystemOptionError(f"the saved {what} does not fit its settings: {'; '.join(parts)}")
    module.load_state_dict({k: torch.from_numpy(np.array(v, copy=True)) for k, v in given.items()}, strict=True)
    return module.eval()


__all__ = ["System", "SystemOptionError", "ModelParts", "checkpoint", "module_tensors", "load_module"]
