"""Constants, errors and the warning line every executor uses."""
from __future__ import annotations

import os
import sys
from typing import Callable

from serbench.errors import SerbenchError


SCHEDULER_ENV = "SERBENCH_SCHEDULER"
#: Seconds to wait for a Dask scheduler before saying it cannot be reached.
CONNECT_TIMEOUT_S = 3.0
#: Workers a ``local:N`` cluster starts with (at most N); it grows to one per task waiting or running.
INITIAL_DASK_WORKERS = 2


class ExecutorError(SerbenchError):
    """An executor cannot be created or has lost its workers."""


class WorkerLostError(ExecutorError):
    """Workers died more often than the executor is allowed to restart them."""


def _say(log: Callable[[str], None] | None, msg: str) -> None:
    """One line for the user: through ``log`` when the caller gave one, else on stderr."""
    if log is not None:
        log(msg)
    else:
        print(f"serbench: {msg}", file=sys.stderr, flush=True)


def _more_than_cores(option: str, n: int, log: Callable[[str], None] | None) -> None:
    cores = os.cpu_count() or 1
    if n > cores:
        _say(log, f"warning: {option} asks for {n} workers, more than the {cores} CPU core(s) here; they will "
                  "compete for the cores (at most one worker per task waiting or running is started)")

