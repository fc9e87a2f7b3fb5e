"""Features: a registry of feature sets, their extractors, and a Parquet cache.

>>> from serbench.features import extract, load
>>> report = extract("casia", "/data/casia", ["IS09", "IS10"], jobs=2)   # doctest: +SKIP
>>> X, manifest = load("casia", "IS10", root="/data/casia")              # doctest: +SKIP
>>> X.shape                                                             # doctest: +SKIP
(1200, 1582)

Sets: ``IS09`` (384), ``IS10`` (1582), ``eGeMAPS`` (88), ``ComParE`` (6373) via
openSMILE; ``MFCC``, ``PLP``, ``HuWSF`` (the paper's statistics of frame-level
features); ``melseg`` (per utterance a float32 (3, 60, T) log-mel array, see
:mod:`serbench.features.melseg`). Names are case-insensitive.

Importing this package is light (the registry only): the cache (pandas, pyarrow) and the
extraction loop are imported on first use of their names, the extractors' libraries
(openSMILE, librosa, torch) only when a set is actually extracted.
"""
from __future__ import annotations

import importlib
import sys
import types

from serbench.features.registry import (
    DEFAULT_SETS,
    FeatureSet,
    FeatureSetError,
    Kind,
    get_feature_set,
    list_feature_sets,
    register,
    resolve_feature_sets,
)

_LAZY: dict[str, str] = {
    "extract": "serbench.features.extract", "load": "serbench.features.extract",
    "load_arrays": "serbench.features.extract", "ExtractReport": "serbench.features.extract",
    "SetReport": "serbench.features.extract", "Failure": "serbench.features.extract",
    "FeatureCache": "serbench.features.cache", "CacheError": "serbench.features.cache",
    "CorpusHandle": "serbench.features.handle",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    # Importing the submodule serbench.features.extract sets the package attribute
    # ``extract`` to that module; the public name is the function, as it was when the
    # package imported everything eagerly. The module stays reachable via sys.modules.
    def __setattr__(self, name: str, value: object) -> None:
        if name == "extract" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "extract", "load", "load_arrays", "ExtractReport", "SetReport", "Failure",
    "FeatureSet", "Kind", "get_feature_set", "list_feature_sets", "resolve_feature_sets", "register",
    "DEFAULT_SETS", "FeatureCache", "CacheError", "FeatureSetError", "CorpusHandle",
]
