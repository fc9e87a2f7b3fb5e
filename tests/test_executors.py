"""The executors: the same tasks in this process, in local worker processes and on a Dask LocalCluster."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from serbench.executors import DaskExecutor, ExecutorError, InProcess, LocalProcesses, make_executor


def scale(shared, k):
    return shared["a"] * k


def die_once(shared, marker):
    """Kill this worker process the first time (the marker says it happened), then answer."""
    marker = Path(marker)
    if not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return int(shared.sum())


def fail(shared):
    raise ValueError("task failed on purpose")


def run_all(ex, fn, shared, args):
    token = ex.share(shared)
    futures = [ex.submit(fn, token, *a) for a in args]
    return [f.result() for f in ex.as_completed(futures)], futures


def test_in_process_runs_tasks_with_the_shared_object():
    results, _ = run_all(InProcess(), scale, {"a": np.arange(3)}, [(1,), (2,)])
    assert [r.tolist() for r in results] == [[0, 1, 2], [0, 2, 4]]


def test_in_process_errors_surface_at_result():
    ex = InProcess()
    fut = ex.submit(fail, ex.share(None))
    with pytest.raises(ValueError, match="on purpose"):
        fut.result()


@pytest.mark.slow
def test_local_processes_give_the_same_results():
    with LocalProcesses(2, threads=1) as ex:
        results, _ = run_all(ex, scale, {"a": np.arange(3)}, [(k,) for k in range(6)])
    assert sorted(r.sum() for r in results) == [3 * k for k in range(6)]


@pytest.mark.slow
def test_a_killed_local_worker_is_replaced_and_its_task_rerun(tmp_path):
    with LocalProcesses(2, threads=1) as ex:
        results, _ = run_all(ex, die_once, np.ones(4), [(tmp_path / "marker",)])
        assert results == [4] and ex.restarts == 1


@pytest.mark.slow
def test_dask_local_cluster_runs_tasks_and_survives_a_killed_worker(tmp_path):
    with DaskExecutor("local:2", threads=1) as ex:
        results, _ = run_all(ex, scale, {"a": np.arange(3)}, [(k,) for k in range(4)])
        assert sorted(r.sum() for r in results) == [0, 3, 6, 9]
        results, _ = run_all(ex, die_once, np.ones(5), [(tmp_path / "marker",)])
        assert results == [5]


def test_an_unreachable_scheduler_is_a_clear_error_within_seconds():
    t0 = time.perf_counter()
    with pytest.raises(ExecutorError, match="tcp://127.0.0.1:9.*cannot reach"):
        make_executor(scheduler="tcp://127.0.0.1:9")
    assert time.perf_counter() - t0 < 20


@pytest.mark.parametrize("kwargs, match", [
    ({"workers": 0}, "--workers 0"), ({"workers": -2}, "--workers -2"), ({"threads": 0}, "--threads 0"),
    ({"workers": 2, "scheduler": "local:2"}, "not both"), ({"scheduler": "hostname"}, "tcp://HOST"),
    ({"scheduler": "local:0"}, "N >= 1"),
])
def test_bad_executor_options_are_refused(kwargs, match):
    with pytest.raises(ExecutorError, match=match):
        make_executor(**kwargs)


def test_the_environment_names_the_scheduler(monkeypatch):
    monkeypatch.setenv("SERBENCH_SCHEDULER", "nonsense")
    with pytest.raises(ExecutorError, match="nonsense"):
        make_executor()
    assert isinstance(make_executor(workers=1), LocalProcesses)   # --workers wins over the environment
