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
"""
from serbench.features.cache import CacheError, FeatureCache
from serbench.features.extract import ExtractReport, Failure, SetReport, extract, load, load_arrays
from serbench.features.registry import (
    DEFAULT_SETS,
    PAPER_SETS,
    FeatureSet,
    FeatureSetError,
    Kind,
    get_feature_set,
    list_feature_sets,
    register,
    resolve_feature_sets,
)

__all__ = [
    "extract", "load", "load_arrays", "ExtractReport", "SetReport", "Failure",
    "FeatureSet", "Kind", "get_feature_set", "list_feature_sets", "resolve_feature_sets", "register",
    "PAPER_SETS", "DEFAULT_SETS", "FeatureCache", "CacheError", "FeatureSetError",
]
