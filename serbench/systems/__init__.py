"""Systems: every model serbench can run, registered once, and how to run them.

>>> from serbench import systems
>>> systems.names(kind="deep")                                              # doctest: +SKIP
>>> res = systems.run_system("svm-linear", "casia", "/data/casia", overrides={"feature": "IS10"})  # doctest: +SKIP

* :mod:`~serbench.systems.registry`: ``register``, ``get``, ``names``, ``identify`` (what a
  stored name means);
* :mod:`~serbench.systems.base`: the :class:`System` base class (``fit`` / ``predict``);
* :mod:`~serbench.systems.settings`: settings dataclasses, profiles and the one validator;
* :mod:`~serbench.systems.naming`: how settings appear in stored names;
* :mod:`~serbench.systems.builtin`: the SVM baselines, CNN+SRU with its ablations, and the
  seed papers' CRNN, CRNN-CTC, CRNN-MK and DCNN-BLSTMwA, one module each;
* :mod:`~serbench.systems.identity`: what a run is (system + the hash of its resolved settings);
* :mod:`~serbench.systems.run` (``run_system``, ``prepare``), :mod:`~serbench.systems.experiment`
  (experiment files: ``load_experiment``, ``run_experiment``) and :mod:`~serbench.systems.rerun`,
  loaded on first use.
"""
from __future__ import annotations

from typing import Any

from serbench.systems.base import System, SystemOptionError
from serbench.systems.naming import Naming, flag, number, text, word
from serbench.systems.registry import Identified, all_systems, get, identify, names, register, unregister
from serbench.systems.settings import (
    AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, Each, Interval, Options, Settings, SettingsError, setting,
)

_LAZY = {
    "run_system": "serbench.systems.run", "run_baseline": "serbench.systems.run", "run_deep": "serbench.systems.run",
    "prepare": "serbench.systems.run", "load_experiment": "serbench.systems.experiment",
    "run_experiment": "serbench.systems.experiment", "rerun": "serbench.systems.rerun",
}


def __getattr__(name: str) -> Any:
    # Running pulls in numpy, pandas and the harness; the registry alone (the CLI's help) must not.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'serbench.systems' has no attribute {name!r}")


__all__ = ["System", "SystemOptionError", "Settings", "SettingsError", "setting", "Interval", "Options", "Each",
           "POSITIVE", "NON_NEGATIVE", "AT_LEAST_ONE", "FRACTION", "Naming", "flag", "number", "text", "word",
           "register", "unregister", "get", "names", "all_systems", "identify", "Identified", *_LAZY]
