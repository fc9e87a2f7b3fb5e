"""A trained model ready to label new recordings: :class:`Model` and :func:`load_model`.

>>> import serbench
>>> model = serbench.load_model("models/casia-is10")                 # doctest: +SKIP
>>> model.predict(["a.wav", "recordings/"])                           # doctest: +SKIP
   file  segment  start_s  end_s  emotion  score_angry ...  status  error

A :class:`Model` comes from :func:`load_model` (a bundle folder) or from
:func:`serbench.bundles.train` (the model just fitted, before or after it was saved); both
predict through the same code, so a loaded bundle gives the scores of the model that was
trained, to float rounding.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from serbench.bundles.format import (
    BundleError, check_feature_set, check_files, check_versions, parse_files, read_record, read_system,
    settings_from_record,
)
from serbench.systems.base import System

if TYPE_CHECKING:
    import pandas as pd

    from serbench.features.registry import FeatureSet


@dataclass
class Model:
    """A fitted system with everything needed to predict: settings, labels, feature set, model.json.

    ``fitted`` is what the system's ``fit`` returned (or ``restore`` rebuilt); ``record`` is the
    bundle's model.json (for a model just trained: what was or will be written); ``device``
    where the torch parts live ('cpu' or 'cuda...').
    """

    system: System
    settings: Any
    labels: list[str]
    fitted: Any
    record: dict
    score_kind: str = "probability"
    device: str = "cpu"
    path: Path | None = None
    _extractor: Callable | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The stored system name (``IS10-svm-linear``, ``cnn-sru-N3``)."""
        return self.system.stored_name(self.settings)

    @property
    def feature_set(self) -> FeatureSet:
        from serbench.features.registry import get_feature_set

        return get_feature_set(self.system.feature_set(self.settings))

    @property
    def speaker_norm(self) -> bool:
        return bool(getattr(self.settings, "speaker_norm", False))

    @property
    def score_prefix(self) -> str:
        """``prob_`` for probabilities (the default output), ``score_`` for decision scores (SVM bundles written
        before calibration)."""
        return "prob_" if self.score_kind == "probability" else "score_"

    def extractor(self) -> Callable:
        """The feature set's extractor, built once per model."""
        if self._extractor is None:
            from serbench.bundles.extraction import make_extractor

            self._extractor = make_extractor(self.feature_set)
        return self._extractor

    def predict(self, inputs: Any, *, speakers: str | Sequence[str] | Callable[[Path], str] | None = None,
                window: float | None = None, hop: float | None = None, sample_rate: int = 16000,
                threads: int | None = None, batch: int = 64, progress: bool = False,
                scores: str | None = None, executor: Any = None) -> pd.DataFrame:
        """Emotion and per-class probabilities (or, ``scores='decision'``, an SVM's decision values) of each
        input; see :func:`serbench.bundles.inference.predict`."""
        from serbench.bundles.inference import predict

        return predict(self, inputs, speakers=speakers, window=window, hop=hop, sample_rate=sample_rate,
                       threads=threads, batch=batch, progress=progress, scores=scores, executor=executor)

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return f"<serbench Model {self.name}{where}: {', '.join(self.labels)}>"


@dataclass
class CheckedBundle:
    """A bundle folder that passed every check that needs no heavy library (:func:`check_bundle`):
    model.json, versions, system, feature set, labels, settings, and each file's size, SHA-256 and
    pickle sniffing. ``blobs``: the checked files' bytes, parsed by :func:`load_model`."""

    folder: Path
    record: dict
    system: System
    settings: Any
    labels: list[str]
    blobs: dict[str, bytes] = field(repr=False, default_factory=dict)

    @property
    def feature_set_name(self) -> str:
        return str((self.record.get("feature_set") or {}).get("name"))


def check_bundle(path: str | Path) -> CheckedBundle:
    """Every check of :func:`load_model` that imports nothing heavy (no numpy, torch, scikit-learn):
    a command refuses a damaged or incompatible bundle in a fraction of a second, before its imports."""
    folder, record = read_record(path)
    check_versions(record, folder)
    system = read_system(record, folder)
    check_feature_set(record.get("feature_set") or {}, folder)
    labels = record.get("labels")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise BundleError(f"{folder}: model.json holds no list of class labels; the bundle is damaged")
    saved = (record.get("system") or {}).get("settings")
    if not isinstance(saved, dict):
        raise BundleError(f"{folder}: model.json holds no settings; the bundle is damaged")
    s = settings_from_record(system, saved, folder)
    blobs = check_files(folder, record)
    return CheckedBundle(folder=folder, record=record, system=system, settings=s, labels=list(labels), blobs=blobs)


def load_model(path: str | Path | CheckedBundle, *, device: str = "cpu") -> Model:
    """The model bundle at ``path`` (a folder written by ``serbench train``, or one :func:`check_bundle`
    checked), checked and ready to predict.

    Raises :class:`~serbench.bundles.format.BundleError` naming what does not match: a newer
    bundle format or serbench, an unknown system, a feature set computed differently here,
    a missing, truncated or changed file, a pickle where weights should be, a type outside the
    system's allow-list in a skops file. ``device``: where the torch parts are loaded ('cpu',
    'cuda' or 'auto').
    """
    checked = path if isinstance(path, CheckedBundle) else check_bundle(path)
    folder, record, system, s, labels = checked.folder, checked.record, checked.system, checked.settings, checked.labels
    parts = parse_files(folder, record, system, checked.blobs)
    dev = _device(device, system)
    from serbench.systems.base import SystemOptionError

    try:
        fitted = system.restore(parts, s, labels, device=dev)
    except SystemOptionError as exc:
        raise BundleError(f"{folder}: {exc}") from None
    return Model(system=system, settings=s, labels=list(labels), fitted=fitted, record=record,
                 score_kind=parts.score_kind, device=dev, path=folder)


def _device(device: str, system: System) -> str:
    if system.kind != "deep":
        return "cpu"
    from serbench.systems.deep_runtime import resolve_device

    return str(resolve_device(device))


__all__ = ["Model", "load_model", "check_bundle", "CheckedBundle"]
