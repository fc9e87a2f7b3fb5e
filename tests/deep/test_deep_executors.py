"""A deep run gives the same predictions in this process, on local workers and on a Dask LocalCluster."""
from __future__ import annotations

import pandas as pd
import pytest

from serbench.executors import DaskExecutor, InProcess, LocalProcesses
from serbench.systems.run import run_deep


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, emotion_corpus):
    return emotion_corpus(tmp_path_factory.mktemp("execcorpus"), [0.5] * 3)


@pytest.mark.slow
def test_a_tiny_cnn_sru_run_is_identical_on_the_three_executors(corpus, tmp_path):
    def run(executor, runs):
        return run_deep("demo", corpus, model="cnn-sru", segments=2, profile="tiny", device="cpu", seed=0,
                        overrides={"cnn_epochs": 2, "sru_epochs": 2}, cache=tmp_path / "cache", runs=runs,
                        threads=1, executor=executor)

    ref = run(InProcess(), tmp_path / "a")
    with LocalProcesses(2, threads=1) as ex:
        local = run(ex, tmp_path / "b")
    with DaskExecutor("local:2", threads=1) as ex:
        dask = run(ex, tmp_path / "c")
    for other in (local, dask):
        pd.testing.assert_frame_equal(ref.predictions, other.predictions, check_exact=True)
    # Only local folds checkpoint into the run folder; Dask workers train without (their folds restart).
    assert all(f["timings"]["torch_threads"] == 1 for f in dask.record["folds"])
