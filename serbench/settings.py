"""Where serbench keeps things: the feature cache and the results store.

Precedence for each: the explicit value (a CLI option) > the environment > the default.
"""
from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SERBENCH_CACHE"
RUNS_ENV = "SERBENCH_RUNS"


def cache_root(value: str | Path | None = None) -> Path:
    """The feature cache root: ``value``, else ``$SERBENCH_CACHE``, else ``~/.cache/serbench``."""
    if value:
        return Path(value).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "serbench"


def runs_root(value: str | Path | None = None) -> Path:
    """The results store root: ``value``, else ``$SERBENCH_RUNS``, else ``./runs``."""
    if value:
        return Path(value).expanduser()
    return Path(os.environ.get(RUNS_ENV, "runs")).expanduser()
