"""Corpora: parse a corpus' official folder layout into the manifest.

>>> from serbench.corpora import scan, load_manifest, list_corpora
>>> scan("casia", "/data/casia").summary()["utterances"]  # doctest: +SKIP
1200
"""
from __future__ import annotations

import inspect
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

import pandas as pd

from serbench.corpora import casia, demo, emodb
from serbench.corpora.base import (
    EMOTIONS,
    MANIFEST_COLUMNS,
    CorpusInfo,
    CorpusScan,
    Entry,
    Skipped,
    build_manifest,
    check_root,
)
from serbench.errors import CorpusError

_MODULES: dict[str, ModuleType] = {m.INFO.name: m for m in (casia, emodb, demo)}


def register(module: ModuleType) -> None:
    """Add a loader module (with ``INFO`` and ``parse(root, **options)``) to the registry."""
    _MODULES[module.INFO.name] = module


def _load_optional() -> None:
    # Loaders for the other corpora live in their own modules; import them if present.
    import importlib

    for name in ("ravdess", "iemocap", "iemocap4", "savee", "tess", "cremad", "emovo"):
        try:
            register(importlib.import_module(f"serbench.corpora.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"serbench.corpora.{name}":
                raise


_load_optional()


def list_corpora() -> list[CorpusInfo]:
    """Every supported corpus, sorted by name."""
    return [m.INFO for _, m in sorted(_MODULES.items())]


def get_loader(corpus: str) -> ModuleType:
    try:
        return _MODULES[corpus.lower()]
    except KeyError:
        raise CorpusError(f"unknown corpus {corpus!r}; supported: {', '.join(sorted(_MODULES))}") from None


def scan(
    corpus: str,
    root: str | Path,
    *,
    emotions: Sequence[str] | None = None,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    **options: object,
) -> CorpusScan:
    """Parse ``root`` as ``corpus``: the manifest plus the files that did not fit.

    ``emotions`` keeps a subset of canonical labels; ``strict`` turns files that do
    not fit the layout into a :class:`CorpusError`; ``options`` go to the loader
    (for example ``four_class=True`` for IEMOCAP).
    """
    loader = get_loader(corpus)
    root = check_root(root, loader.INFO.name, loader.INFO.layout)
    params = inspect.signature(loader.parse).parameters
    unknown = sorted(k for k in options if k not in params)
    if unknown:
        accepted = [p for p in params if p != "root"]
        raise CorpusError(f"{loader.INFO.name} takes no option(s) {unknown}; it accepts {accepted or 'none'}")
    entries, skipped = loader.parse(root, **options)
    result = build_manifest(loader.INFO.name, root, entries, skipped, layout=loader.INFO.layout,
                            emotions=emotions, strict=strict, progress=progress)
    result.subset = bool(emotions) or any(bool(v) for v in options.values())
    return result


def load_manifest(corpus: str, root: str | Path, **kwargs: object) -> pd.DataFrame:
    """The manifest DataFrame of :func:`scan` (columns: :data:`MANIFEST_COLUMNS`)."""
    return scan(corpus, root, **kwargs).manifest


def expected_count(corpus: str) -> int | None:
    """Utterances in the full official release, where fixed."""
    return getattr(get_loader(corpus), "EXPECTED", None)


__all__ = [
    "EMOTIONS", "MANIFEST_COLUMNS", "CorpusInfo", "CorpusScan", "Entry", "Skipped",
    "list_corpora", "get_loader", "scan", "load_manifest", "expected_count", "register",
]
