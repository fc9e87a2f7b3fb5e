"""The feature-set registry: every set serbench can extract, by name.

A :class:`FeatureSet` knows its name, its kind (``'vector'``: one fixed-length row
per utterance; ``'array'``: one n-d array per utterance), its version and
parameters, and the versions of the libraries whose output it depends on. The
cache key is a short hash of all of those, so changing any of them starts a new
cache folder instead of mixing old and new values.

Implementations are imported lazily: listing the sets or resolving a name does
not import openSMILE, librosa or torch.

>>> from serbench.features import get_feature_set
>>> get_feature_set("is09").name
'IS09'
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Protocol, Sequence

from serbench.errors import SerbenchError

if TYPE_CHECKING:  # the registry is read by `serbench --help`: it imports no numerical library
    import numpy as np


class FeatureSetError(SerbenchError):
    """An unknown or unusable feature-set name."""


class Kind(str, Enum):
    """What one utterance yields: a row of numbers or an n-d array."""

    VECTOR = "vector"
    ARRAY = "array"


#: Extracts one utterance: ``(signal float32 (n,), sample_rate) -> features``.
#: Vector sets return float64 ``(D,)`` (NaN where undefined); array sets an n-d array.
Extractor = Callable[["np.ndarray", int], "np.ndarray"]


class Backend(Protocol):
    """What an implementation provides to the registry (see :mod:`serbench.features.opensmile_sets`)."""

    version: str
    params: Mapping[str, object]

    def libraries(self) -> dict[str, str]: ...
    def feature_names(self) -> list[str]: ...
    def make_extractor(self) -> Extractor: ...


@dataclass(frozen=True)
class FeatureSet:
    """A registered feature set. ``backend`` builds the implementation on first use."""

    name: str
    kind: Kind
    description: str
    load_backend: Callable[[], Backend] = field(repr=False, compare=False)
    n_features: int | None = None  # documented width of a vector set, where fixed

    @cached_property
    def backend(self) -> Backend:
        return self.load_backend()

    @property
    def version(self) -> str:
        return str(self.backend.version)

    @property
    def params(self) -> dict[str, object]:
        return dict(self.backend.params)

    @property
    def libraries(self) -> dict[str, str]:
        """Versions of the libraries this set's values depend on (part of the key)."""
        return dict(self.backend.libraries())

    @cached_property
    def key(self) -> str:
        """12 hex digits of SHA-256 over name, kind, version, params and library versions."""
        blob = json.dumps(
            {"name": self.name, "kind": self.kind.value, "version": self.version,
             "params": self.params, "libraries": self.libraries},
            sort_keys=True, default=str,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]

    def feature_names(self) -> list[str]:
        """Column names of a vector set (empty for array sets)."""
        return list(self.backend.feature_names()) if self.kind is Kind.VECTOR else []

    def make_extractor(self) -> Extractor:
        """A ready extractor; build it once per process and reuse it for every file."""
        return self.backend.make_extractor()

    def describe(self) -> dict[str, object]:
        """JSON-able description (what the cache's ``meta.json`` records)."""
        return {"name": self.name, "kind": self.kind.value, "version": self.version,
                "params": self.params, "libraries": self.libraries, "key": self.key}


class ModuleBackend:
    """A set implemented by a module of serbench.features with ``VERSION``, ``PARAMS`` and a function.

    Vector modules provide ``extract(signal, sr) -> (D,)`` and ``feature_names()``;
    array modules name their function (``melseg.logmel3``). A module may list the
    libraries its values depend on in ``LIBRARIES``; by default numpy, scipy and
    librosa, by major.minor version, enter the key.
    """

    DEFAULT_LIBRARIES = ("numpy", "scipy", "librosa")

    def __init__(self, module: str, function: str = "extract") -> None:
        self.module_name = module
        self.function = function
        try:
            self.module = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            raise FeatureSetError(f"feature set implementation {module} is not installed") from None
        self.version = str(self.module.VERSION)
        self.params = dict(self.module.PARAMS)

    def libraries(self) -> dict[str, str]:
        names = getattr(self.module, "LIBRARIES", self.DEFAULT_LIBRARIES)
        return {n: _major_minor(_dist_version(n)) for n in names}

    def feature_names(self) -> list[str]:
        return list(self.module.feature_names())

    def make_extractor(self) -> Extractor:
        return getattr(self.module, self.function)


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _opensmile(name: str) -> Callable[[], Backend]:
    def load() -> Backend:
        from serbench.features.opensmile_sets import OpenSmileBackend

        return OpenSmileBackend(name)
    return load


def _module(module: str, function: str = "extract") -> Callable[[], Backend]:
    return lambda: ModuleBackend(f"serbench.features.{module}", function)


_REGISTRY: dict[str, FeatureSet] = {}


def register(feature_set: FeatureSet) -> FeatureSet:
    """Add (or replace) a feature set; names are unique case-insensitively."""
    _REGISTRY[feature_set.name.lower()] = feature_set
    return feature_set


def unregister(name: str) -> None:
    """Remove a set added with :func:`register` (tests use this to clean up)."""
    _REGISTRY.pop(name.lower(), None)


for _fs in (
    FeatureSet("IS09", Kind.VECTOR, "INTERSPEECH 2009 Emotion Challenge functionals (openSMILE)",
               _opensmile("IS09"), 384),
    FeatureSet("IS10", Kind.VECTOR, "INTERSPEECH 2010 Paralinguistic Challenge functionals (openSMILE)",
               _opensmile("IS10"), 1582),
    FeatureSet("eGeMAPS", Kind.VECTOR, "extended Geneva minimalistic acoustic parameter set v02 (openSMILE)",
               _opensmile("eGeMAPS"), 88),
    FeatureSet("ComParE", Kind.VECTOR, "ComParE 2016 functionals (openSMILE)", _opensmile("ComParE"), 6373),
    FeatureSet("MFCC", Kind.VECTOR, "paper statistics of MFCCs and their deltas", _module("mfcc")),
    FeatureSet("PLP", Kind.VECTOR, "paper statistics of PLP cepstra and their deltas", _module("plp")),
    FeatureSet("HuWSF", Kind.VECTOR, "paper statistics of Hu-moment weighted spectral features",
               _module("huwsf")),
    FeatureSet("melseg", Kind.ARRAY, "3-channel log-mel (static, delta, delta-delta), 60 bands, (3, 60, T)",
               _module("melseg", "logmel3")),
):
    register(_fs)

# Self-supervised upstreams (WavLM, HuBERT, ...): one vector set each, read from a local model folder.
from serbench.features.ssl import feature_sets as _ssl_sets  # noqa: E402  (after the names it imports)

for _fs in _ssl_sets():
    register(_fs)

#: What ``serbench extract`` does without ``--features``: the functional sets the shipped experiments
#: read and ``melseg`` (the deep models' input); tests check it covers recipes/jiang2019.toml.
DEFAULT_SETS: tuple[str, ...] = ("PLP", "MFCC", "HuWSF", "IS09", "IS10", "melseg")


def list_feature_sets() -> list[FeatureSet]:
    """Every registered set, in registration order."""
    return list(_REGISTRY.values())


def get_feature_set(name: str | FeatureSet) -> FeatureSet:
    """Resolve a name case-insensitively; unknown names raise :class:`FeatureSetError` listing the choices."""
    if isinstance(name, FeatureSet):
        return name
    try:
        return _REGISTRY[str(name).strip().lower()]
    except KeyError:
        choices = ", ".join(fs.name for fs in _REGISTRY.values())
        raise FeatureSetError(f"unknown feature set {name!r}; choose from {choices}") from None


def resolve_feature_sets(names: str | Iterable[str | FeatureSet] | None) -> list[FeatureSet]:
    """Names (a list, or one comma-separated string) -> unique sets in the given order.

    ``None`` or an empty selection means :data:`DEFAULT_SETS`.
    """
    if isinstance(names, str):
        names = [n for n in names.split(",")]
    items: Sequence[str | FeatureSet] = [n for n in (names or ()) if not isinstance(n, str) or n.strip()]
    if not items:
        items = DEFAULT_SETS
    out: list[FeatureSet] = []
    for n in items:
        fs = get_feature_set(n)
        if fs not in out:
            out.append(fs)
    return out
