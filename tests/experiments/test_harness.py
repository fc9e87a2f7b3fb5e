"""The one harness: runs on the three executors, worker and client failures, and registered toy systems."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from serbench.executors import DaskExecutor, InProcess, LocalProcesses
from serbench.experiments.harness import run_plans
from serbench.experiments.store import RunStore
from serbench.systems.run import prepare, run_system


def _svm(loader, runs, executor, name="svm-linear", **options):
    return run_system(name, "demo", "/c", overrides={"feature": "IS10", **options}, runs=runs, load_features=loader,
                      executor=executor, threads=1)


@pytest.mark.slow
def test_svm_predictions_are_bit_identical_on_the_three_executors(features, tmp_path):
    X, m, load = features(n_speakers=4, per_class=6, n_features=12)
    ref = _svm(load, tmp_path / "a", InProcess())
    with LocalProcesses(2, threads=1) as ex:
        local = _svm(load, tmp_path / "b", ex)
    with DaskExecutor("local:2", threads=1) as ex:
        dask = _svm(load, tmp_path / "c", ex)
    for other in (local, dask):
        pd.testing.assert_frame_equal(ref.predictions, other.predictions, check_exact=True)
        assert [f["best_params"] for f in other.record["folds"]] == [f["best_params"] for f in ref.record["folds"]]
    assert "local processes (2 workers" in local.timings["executor"] and "dask" in dask.timings["executor"]


@pytest.mark.slow
@pytest.mark.parametrize("make", [lambda: LocalProcesses(2, threads=1), lambda: DaskExecutor("local:2", threads=1)],
                         ids=["local", "dask"])
def test_a_worker_killed_mid_fold_does_not_change_the_run(toy_systems, features, tmp_path, monkeypatch, make):
    X, m, load = features()
    ref = _svm(load, tmp_path / "ref", InProcess(), name="toy-mean")
    with make() as ex:
        res = _svm(load, tmp_path / "runs", ex, name="toy-killer", markers=str(tmp_path))
    assert (tmp_path / "killed-spk1").exists()          # the worker running fold spk1 died once
    cols = [c for c in ref.predictions.columns]
    pd.testing.assert_frame_equal(ref.predictions[cols], res.predictions[cols], check_exact=True)


def test_several_runs_share_the_executor_and_finish_in_the_order_given(toy_systems, features, tmp_path):
    X, m, load = features()
    plans = [prepare("toy-mean", "demo", "/c", overrides={"feature": f, "shrink": k}, load_features=load)
             for f, k in (("IS10", 0.0), ("MFCC", 0.5))]
    store = RunStore(tmp_path)
    out = run_plans(plans, store=store, executor=InProcess())
    assert [o.plan.system for o in out] == ["IS10-toy-mean", "MFCC-toy-mean"]
    assert all(o.result is not None and len(o.result.predictions) == len(m) for o in out)
    finished = [json.loads((o.result.path / "run.json").read_text())["finished"] for o in out]
    assert finished == sorted(finished)


def test_a_failing_run_is_reported_and_leaves_no_partial_folder(toy_systems, features, tmp_path, monkeypatch):
    import toy_systems as toys

    X, m, load = features()
    plans = [prepare("toy-mean", "demo", "/c", overrides={"feature": "IS10"}, load_features=load),
             prepare("toy-slow", "demo", "/c", overrides={"feature": "IS10"}, load_features=load)]
    monkeypatch.setattr(toys.ToySlow, "fit", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("bad settings")))
    out = run_plans(plans, store=RunStore(tmp_path), keep_going=True)
    assert out[0].result is not None and out[1].result is None and "bad settings" in out[1].error
    assert not list((tmp_path / "demo" / "IS10-toy-slow").glob("*"))


@pytest.mark.slow
def test_a_killed_client_resumes_with_only_the_missing_folds(toy_systems, features, tmp_path):
    """A real client process is killed (SIGKILL) after two stored folds; the next call runs only the rest."""
    X, m, _ = features(n_speakers=5)
    X.to_parquet(tmp_path / "X.parquet")
    m.to_parquet(tmp_path / "m.parquet")
    script = tmp_path / "client.py"
    script.write_text(f"""
import sys, pandas as pd
sys.path.insert(0, {str(Path(toy_systems.__file__).parent)!r})
import toy_systems; toy_systems.register_all()
from serbench.systems.run import run_system
X, m = pd.read_parquet({str(tmp_path / 'X.parquet')!r}), pd.read_parquet({str(tmp_path / 'm.parquet')!r})
res = run_system("toy-slow", "demo", "/c", runs={str(tmp_path / 'runs')!r},
                 overrides={{"feature": "IS10", "markers": {str(tmp_path)!r}, "sleep": float(sys.argv[1])}},
                 load_features=lambda *a, **k: (X.copy(), m.copy()))
print("UA", res.ua, "RESUMED", ",".join(res.resumed_folds))
""")
    proc = subprocess.Popen([sys.executable, str(script), "1.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run_dir = tmp_path / "runs" / "demo" / "IS10-toy-slow"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(run_dir.glob("*.partial/fold-*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored = sorted(p.stem.removeprefix("fold-") for p in run_dir.glob("*.partial/fold-*.json"))
    assert len(stored) >= 2, proc.stderr.read().decode()
    before = {p.name for p in tmp_path.glob("trained-*")}
    out = subprocess.run([sys.executable, str(script), "1.5"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"RESUMED {','.join(stored)}" in out.stdout
    trained = sorted(p.name.split("-")[1] for p in tmp_path.glob("trained-*") if p.name not in before)
    assert trained == sorted(set(f"spk{i}" for i in range(5)) - set(stored))


def test_a_system_registered_in_a_test_appears_everywhere(toy_systems, features, tmp_path, monkeypatch):
    """CLI help and choices, experiment files, the store and the tables know a system from one register call."""
    from serbench.cli import cli
    from serbench.reports import tables_for
    from serbench.systems.experiment import parse_experiment, run_experiment

    runner = CliRunner()
    help_text = runner.invoke(cli, ["baseline", "--help"]).output
    assert "toy-mean" in help_text and "nearest class mean" in help_text
    X, m, load = features()
    import serbench.features

    monkeypatch.setattr(serbench.features, "load", load)
    exp = parse_experiment({"experiment": {"name": "toy"}, "run": [{"system": "toy-mean", "set": {"feature": "IS10"}}]})
    assert [p.name for p in exp.plan("demo")] == ["IS10-toy-mean"]
    out = run_experiment(exp, "demo", "/c", runs=tmp_path / "runs", log=lambda _m: None)
    assert [o.action for o in out] == ["ran"]
    result = runner.invoke(cli, ["baseline", "--corpus", "demo", "--root", str(tmp_path), "--feature", "MFCC",
                                 "--classifier", "toy-mean", "--runs", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    listed = RunStore(tmp_path / "runs").list_runs("demo")
    assert set(listed["system"]) == {"IS10-toy-mean", "MFCC-toy-mean"}
    report = tables_for("demo", runs=tmp_path / "runs", out=tmp_path / "tables")
    assert report.collection.runs["IS10-toy-mean"].spec.system == "toy-mean"
    assert "IS10-toy-mean" in report.tables["table5"].frame.to_string()
