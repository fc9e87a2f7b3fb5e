"""Decoding and feature extraction of a prediction's inputs on an executor's workers, in chunks a few ahead
of the batch being scored, handed back in input order.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from serbench.bundles.sources import Source
from serbench.bundles.units import Unit, units_of

#: What the functions here take as ``model``: a :class:`serbench.bundles.model.Model` (not imported:
#: model.py imports the prediction modules).
Model = Any


@dataclass
class FeatureSpec:
    """What extracting a model's inputs needs, without the fitted model: sent to worker processes.

    Has what :func:`model_input`, :func:`units_of` and :func:`bandwidth_warning` read of a model:
    ``feature_set``, ``record`` (the parts of model.json they read) and ``extractor()``.
    """

    feature_set_name: str
    record: dict

    @classmethod
    def of(cls, model: Model) -> "FeatureSpec":
        rec = model.record or {}
        return cls(model.feature_set.name, {"model": {"n_features": (rec.get("model") or {}).get("n_features")},
                                            "training": {"audio": ((rec.get("training") or {}).get("audio") or {})}})

    @property
    def feature_set(self) -> Any:
        from serbench.features.registry import get_feature_set

        return get_feature_set(self.feature_set_name)

    def extractor(self) -> Callable:
        """The feature set's extractor, built once per process."""
        if self.feature_set_name not in _EXTRACTORS:
            _EXTRACTORS[self.feature_set_name] = make_extractor(self.feature_set)
        return _EXTRACTORS[self.feature_set_name]


#: Extractors of worker processes (and of :class:`FeatureSpec` in this one), by feature set name.
_EXTRACTORS: dict[str, Callable] = {}


def make_extractor(fs: Any) -> Callable:
    """``fs.make_extractor()``, without the scan of every installed distribution that opensmile's
    ``Smile`` object asks of audobject (``importlib.metadata.packages_distributions()``, 0.5-0.8 s):
    the distributions of the modules it names are looked up one by one instead (same answers)."""
    _seed_audobject()
    return fs.make_extractor()


def _seed_audobject() -> None:
    utils = sys.modules.get("audobject.core.utils")
    if utils is None:
        try:
            import audobject.core.utils as utils
        except ImportError:
            return
    table = getattr(utils, "PACKAGES_DISTRIBUTIONS", None)
    if not isinstance(table, dict):
        return
    import importlib.metadata as md

    for module in ("opensmile", "audobject", "audeer", "audinterface", "audformat", "audresample", "audmath"):
        if module in table:
            continue
        try:
            dist = md.distribution(module)
        except md.PackageNotFoundError:
            continue
        names = {str(f).split("/", 1)[0] for f in (dist.files or ())}
        if module in names:        # the distribution of that name holds the module: what the scan would say
            table[module] = [dist.metadata["Name"]]


def extract_chunk(spec: FeatureSpec, window: float | None, hop: float | None,
                   items: list[tuple[int, Source]]) -> list[tuple[int, list[Unit], list[str], int | None]]:
    """A task: decode and extract each ``(index, source)``; ``(index, units, warnings, original rate)`` each."""
    out = []
    for i, src in items:
        units = units_of(spec, i, src, window, hop)
        out.append((i, units, list(src.warnings), src.orig_rate))
    return out


def _chunk_size(n: int, workers: int) -> int:
    # As serbench extract: small enough for a lively bar and balanced workers, large enough to amortize IPC.
    return max(1, min(8, math.ceil(n / (workers * 8))))


def extracted_units(model: Model, sources: list[Source], window: float | None, hop: float | None, executor: Any,
               tick: Callable[[], None]) -> Iterator[tuple[int, list[Unit]]]:
    """``(index, units)`` of every source, in input order, extracted in this process (``executor`` None) or
    on the executor, with at most a few chunks per worker extracted ahead of the one awaited (a reorder
    buffer: memory stays bounded however many inputs there are)."""
    if executor is None:
        for i, src in enumerate(sources):
            units = units_of(model, i, src, window, hop)
            tick()
            yield i, units
        return
    spec = FeatureSpec.of(model)
    workers = max(1, int(getattr(executor, "workers", 1) or 1))
    size = _chunk_size(len(sources), workers)
    chunks = [list(range(k, min(k + size, len(sources)))) for k in range(0, len(sources), size)]
    from serbench.executors import InProcess

    if not isinstance(executor, InProcess):
        _seed_audobject()
    token = executor.share(spec)
    ahead = 4 * workers + 2
    inflight: dict[Any, int] = {}
    ready: dict[int, list] = {}
    submitted = emitted = 0
    while emitted < len(chunks):
        while submitted < len(chunks) and len(inflight) + len(ready) < ahead:
            items = [(i, sources[i]) for i in chunks[submitted]]
            inflight[executor.submit(extract_chunk, token, window, hop, items)] = submitted
            submitted += 1
        fut = next(iter(executor.as_completed(list(inflight))))
        k = inflight.pop(fut)
        results = fut.result()
        for i, _units_i, warnings, rate in results:
            sources[i].warnings, sources[i].orig_rate = warnings, rate
            tick()
        ready[k] = results
        while emitted in ready:
            for i, units, _w, _r in ready.pop(emitted):
                yield i, units
            emitted += 1
