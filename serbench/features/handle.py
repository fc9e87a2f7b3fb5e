"""A corpus as one command uses it: its name and folder, the feature cache, the emotions kept, and
where extraction runs. The layers pass this one object instead of six parameters.

>>> from serbench.features import CorpusHandle
>>> casia = CorpusHandle.of("casia", "/data/casia", cache="cache", jobs=2)     # doctest: +SKIP
>>> casia.manifest.shape                                                      # doctest: +SKIP
(1200, 10)
>>> X, manifest = casia.features("IS10")                                      # doctest: +SKIP

The corpus folder is scanned once per handle; the feature tables are read from the cache (what
it lacks is extracted on ``executor``, else in ``jobs`` local processes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:   # pandas and the scan types load with the first scan, not with the handle
    import pandas as pd

    from serbench.corpora.base import CorpusScan


@dataclass
class CorpusHandle:
    """``name`` (a known corpus), ``root`` (its folder), ``cache`` (feature cache root; None: the default),
    ``jobs`` (local extraction processes), ``emotions`` (canonical emotions kept; None: all), ``executor``
    (extracts what the cache lacks when given)."""

    name: str
    root: Path
    cache: Path | None = None
    jobs: int = 1
    emotions: tuple[str, ...] | None = None
    executor: Any = field(default=None, repr=False, compare=False)
    _scan: Any = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def of(cls, corpus: "str | CorpusHandle", root: str | Path | None = None, *, cache: str | Path | None = None,
           jobs: int = 1, emotions: Sequence[str] | None = None, executor: Any = None) -> "CorpusHandle":
        """A handle from a corpus name and its options, or ``corpus`` itself when it is a handle (an
        ``executor`` given here is attached to it when it has none)."""
        from serbench.corpora import check_corpus_name
        from serbench.corpora.base import CorpusError

        if isinstance(corpus, CorpusHandle):
            if executor is not None and corpus.executor is None:
                corpus.executor = executor
            return corpus
        if root is None:
            raise CorpusError(f"--corpus {corpus}: give its folder with --root DIR")
        return cls(check_corpus_name(corpus), Path(root), Path(cache) if cache is not None else None, int(jobs),
                   tuple(emotions) if emotions else None, executor)

    def scan(self) -> "CorpusScan":
        """The corpus scan (manifest and skipped files), parsed once for this handle."""
        if self._scan is None:
            from serbench.corpora import scan

            self._scan = scan(self.name, self.root, emotions=list(self.emotions) if self.emotions else None)
        return self._scan

    @property
    def manifest(self) -> "pd.DataFrame":
        return self.scan().manifest

    def features(self, feature_set: str, columns: Sequence[str] | None = None
                 ) -> tuple["pd.DataFrame", "pd.DataFrame"]:
        """``(X, manifest)`` of a vector feature set (:func:`serbench.features.load`; only ``columns``
        when given)."""
        from serbench.features import load

        return load(self.name, feature_set, root=self.root, cache=self.cache, jobs=self.jobs,
                    emotions=list(self.emotions) if self.emotions else None, executor=self.executor,
                    columns=columns)

    def arrays(self, feature_set: str = "melseg") -> tuple[dict, "pd.DataFrame"]:
        """``(arrays, manifest)`` of an array feature set (:func:`serbench.features.load_arrays`)."""
        from serbench.features import load_arrays

        return load_arrays(self.name, feature_set, root=self.root, cache=self.cache, jobs=self.jobs,
                           emotions=list(self.emotions) if self.emotions else None, executor=self.executor)


__all__ = ["CorpusHandle"]
