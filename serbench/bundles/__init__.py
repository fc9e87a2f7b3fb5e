"""Model bundles: train a system on a whole corpus, save it safely, label new recordings.

>>> from serbench.bundles import train, load_model
>>> train("cnn-sru", "casia", "/data/casia", "models/casia-cnn-sru", overrides={"segments": 3})  # doctest: +SKIP
>>> load_model("models/casia-cnn-sru").predict(["new.wav", "more/"])                          # doctest: +SKIP

* :mod:`~serbench.bundles.training`: :func:`train` (fit on all speakers, write the bundle);
* :mod:`~serbench.bundles.format`: the bundle folder (model.json, safetensors, skops), its
  checks, :class:`BundleError`;
* :mod:`~serbench.bundles.model`: :class:`Model` and :func:`load_model`;
* :mod:`~serbench.bundles.inference`: the prediction loop and its table (streamed batch by batch), with
  :mod:`~serbench.bundles.sources` (inputs, decoding, windows, their checks),
  :mod:`~serbench.bundles.units` (a file or window: its features and scores),
  :mod:`~serbench.bundles.speaker_norm` (speakers and the batch check of speaker-normalized bundles),
  :mod:`~serbench.bundles.extraction` (on an executor's workers) and :mod:`~serbench.bundles.output`
  (writing tables);
* :mod:`~serbench.bundles.options`: the option checks made before anything heavy is imported.

Names load on first use, so importing this package pulls in neither numpy nor torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "train": "serbench.bundles.training", "load_model": "serbench.bundles.model", "Model": "serbench.bundles.model",
    "BundleError": "serbench.bundles.format", "predict": "serbench.bundles.inference",
    "write_table": "serbench.bundles.output", "PredictError": "serbench.bundles.options",
    "Prediction": "serbench.bundles.inference", "check_bundle": "serbench.bundles.model",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'serbench.bundles' has no attribute {name!r}")


__all__ = list(_LAZY)
