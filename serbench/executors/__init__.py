"""Where tasks run: in this process, in local worker processes, or on a Dask cluster.

One small interface serves the experiment harness (fold tasks) and feature extraction
(chunks of files): the client *shares* the data a group of tasks reads once, *submits*
tasks that name it, and collects results *as they complete*. Only the client touches the
corpus, the cache and the results store; tasks receive arrays and return arrays.

>>> ex = make_executor(workers=2)                      # doctest: +SKIP
>>> token = ex.share(dataset)                          # sent once to each worker
>>> futures = [ex.submit(fold_task, token, fold) for fold in folds]
>>> for fut in ex.as_completed(futures): fut.result()  # noqa

``fn(shared_object, *args)`` is called in the worker with the shared object itself.

* :class:`InProcess` (the default): tasks run one after another in this process when
  their result is asked for, so a failure surfaces where it happens.
* :class:`LocalProcesses` (``--workers N``): up to N fresh processes (``forkserver``/``spawn``,
  never ``fork`` after torch has started threads), started as tasks come (never more processes
  than tasks waiting or running; each imports the tasks' libraries, ``preload``, as it starts).
  Each worker runs one task at a time. Shared data that can
  write itself to a folder (a :class:`~serbench.experiments.dataset.Dataset`: ``.npy`` arrays, no
  pickle) is written once to a private temporary folder and memory-mapped by each worker the first
  time a task needs it; anything else travels with each task. A worker killed mid-task (OOM killer,
  ``kill -9``) costs only its own task: the task is rerun on a fresh worker (up to ``max_restarts``
  times) and :attr:`Executor.on_lost` hears of it; the other workers go on.
* :class:`DaskExecutor` (``--scheduler tcp://HOST:PORT``, ``$SERBENCH_SCHEDULER``, or
  ``local:N`` for a :class:`dask.distributed.LocalCluster` of up to N single-threaded worker
  processes, started in the background with two and grown to one per task as tasks come): shared
  data is scattered once to every worker; tasks may request worker resources (``{"GPU": 1}``); a
  lost worker's task is rescheduled by Dask.

Nothing outlives the client: a local worker exits as soon as its client is gone, however it went
(``kill -9`` included: each worker watches a pipe only the client holds), and removes the client's
shared temporary folder on its way out; a LocalCluster's workers do the same (Dask's own watch),
and the semaphores of their queues are unlinked by multiprocessing's resource tracker once they
are gone. Shared folders (``serbench-shared-<pid>-<host>-*`` in the temp folder) are removed at
close and at exit, and the next executor removes any whose client is no longer running. Asking
for more workers than cores is warned about.

BLAS and torch threads inside a worker are limited to ``threads`` (default: the machine's
cores divided by the workers), so N workers do not oversubscribe the cores.
"""
from __future__ import annotations

import os
from typing import Callable

from serbench.executors._common import (
    CONNECT_TIMEOUT_S, INITIAL_DASK_WORKERS, SCHEDULER_ENV, ExecutorError, WorkerLostError,
)
from serbench.executors.addresses import SCHEDULER_FORMS, check_scheduler
from serbench.executors.base import Executor, InProcess
from serbench.executors.dask import DaskExecutor
from serbench.executors.local import LocalProcesses
from serbench.executors.shared import (  # noqa: F401  (the private names: the lifecycle tests read them)
    SHARED_PREFIX, SharedFolder, _HOST_TAG, _SHARED_NAME, _make_shared_folder, remove_stale_shared,
)
from serbench.executors.worker import limit_threads

def make_executor(workers: int | None = None, scheduler: str | None = None, *,
                  threads: int | None = None, preload: tuple[str, ...] = (),
                  log: Callable[[str], None] | None = None) -> Executor:
    """The executor for ``--workers`` / ``--scheduler`` (``$SERBENCH_SCHEDULER`` when neither is given).

    ``workers`` None and no scheduler: :class:`InProcess`. Giving both is an error. A scheduler
    address is checked before anything starts (:func:`check_scheduler`; a bad one names
    ``--scheduler`` or ``$SERBENCH_SCHEDULER``, whichever gave it). ``preload``: modules local
    worker processes import as they start (the libraries the tasks will need). ``log``: where the
    executor's warnings go (more workers than cores, a lost worker; default: stderr).
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ExecutorError(f"--workers {workers!r}: give a positive number of worker processes")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ExecutorError(f"--threads {threads!r}: give a positive number of threads")
    scheduler = scheduler or None
    env = os.environ.get(SCHEDULER_ENV) or None
    if scheduler is None and workers is None and env is not None:
        scheduler, source = env, f"${SCHEDULER_ENV}"
    else:
        source = "--scheduler"
        if scheduler and env is not None and scheduler == env:
            source = f"--scheduler (or ${SCHEDULER_ENV})"   # a caller may have read it from the environment
    if workers is not None and scheduler:
        raise ExecutorError("give either --workers N (local processes) or --scheduler ADDRESS (Dask), not both")
    if scheduler:
        return DaskExecutor(scheduler, threads=threads, preload=preload, source=source, log=log)
    if workers:
        return LocalProcesses(workers, threads=threads, preload=preload, log=log)
    return InProcess()


__all__ = ["Executor", "InProcess", "LocalProcesses", "DaskExecutor", "ExecutorError", "WorkerLostError", "SharedFolder",
           "make_executor", "limit_threads", "check_scheduler", "remove_stale_shared", "SCHEDULER_ENV",
           "SCHEDULER_FORMS", "CONNECT_TIMEOUT_S", "INITIAL_DASK_WORKERS", "SHARED_PREFIX"]
