"""Corpora: parse a corpus' official folder layout into the manifest.

>>> from serbench.corpora import scan, load_manifest, list_corpora
>>> scan("casia", "/data/casia").summary()["utterances"]  # doctest: +SKIP
1200
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Sequence

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

if TYPE_CHECKING:
    import pandas as pd

_MODULES: dict[str, ModuleType] = {m.INFO.name: m for m in (casia, emodb, demo)}
#: What a corpus name may look like: it names folders of the cache and the results store.
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def register(module: ModuleType) -> None:
    """Add a loader module (with ``INFO`` and ``parse(root, **options)``) to the registry.

    ``INFO.name`` must be lower-case letters, digits, ``-`` and ``_`` (it becomes a folder name).
    """
    name = module.INFO.name
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise CorpusError(f"corpus name {name!r} of {module.__name__}: use lower-case letters, digits, '-' and '_'")
    _MODULES[name] = module


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


def check_corpus_name(corpus: object) -> str:
    """The registered name of ``corpus`` (case-insensitive); :class:`CorpusError` for anything else.

    Use it wherever a corpus name becomes part of a path (cache and results folders): only a
    known corpus name passes, so a path (``../x``, ``a/b``), a hidden name (``.x``) or an empty
    one never does. The message lists the known corpora.
    """
    if isinstance(corpus, str) and corpus.lower() in _MODULES:
        return _MODULES[corpus.lower()].INFO.name
    known = ", ".join(sorted(_MODULES))
    if isinstance(corpus, str) and (any(c in corpus for c in "/\\") or corpus.startswith(".")):
        raise CorpusError(f"corpus {corpus!r}: expected a corpus name, not a path; known corpora: {known}")
    raise CorpusError(f"unknown corpus {corpus!r}; known corpora: {known}")


def get_loader(corpus: str) -> ModuleType:
    """The loader module of a corpus name (validated by :func:`check_corpus_name`)."""
    return _MODULES[check_corpus_name(corpus)]


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
    def parse() -> CorpusScan:
        entries, skipped = loader.parse(root, **options)
        result = build_manifest(loader.INFO.name, root, entries, skipped, layout=loader.INFO.layout,
                                emotions=emotions, strict=strict, progress=progress)
        result.subset = bool(emotions) or any(bool(v) for v in options.values())
        return result

    if progress is not None:
        return parse()
    # Within one command that reads several feature sets (audio.reuse_file_facts), the corpus is parsed once.
    from serbench.audio import remembered_in_scope

    key = ("scan", loader.INFO.name, str(Path(root).resolve()), tuple(emotions or ()), strict,
           tuple(sorted((k, repr(v)) for k, v in options.items())))
    return remembered_in_scope(key, parse)  # type: ignore[return-value]


def load_manifest(corpus: str, root: str | Path, **kwargs: object) -> pd.DataFrame:
    """The manifest DataFrame of :func:`scan` (columns: :data:`MANIFEST_COLUMNS`)."""
    return scan(corpus, root, **kwargs).manifest


def expected_count(corpus: str) -> int | None:
    """Utterances in the full official release, where fixed."""
    return getattr(get_loader(corpus), "EXPECTED", None)


__all__ = [
    "EMOTIONS", "MANIFEST_COLUMNS", "CorpusInfo", "CorpusScan", "Entry", "Skipped",
    "list_corpora", "get_loader", "check_corpus_name", "scan", "load_manifest", "expected_count", "register",
]
