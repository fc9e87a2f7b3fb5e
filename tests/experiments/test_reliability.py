"""Bad input and odd data on the experiment side: one-line errors, warnings that reach the user, no stray folders."""
from __future__ import annotations

import warnings as pywarnings

import pytest
from click.testing import CliRunner

from serbench.errors import SerbenchError
from serbench.experiments.store import RunStore, StoreError
from serbench.systems.run import run_baseline


def test_a_runs_folder_that_cannot_be_written_is_a_one_line_error(features, tmp_path):
    X, m, load = features()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=r"--runs .*file: cannot create a run folder.*writable --runs"):
        run_baseline("demo", "/c", "IS10", runs=blocker, load_features=load)


def test_repeated_library_warnings_become_one_line_in_the_output_and_the_record(features, tmp_path, monkeypatch):
    from serbench.baselines import svm

    real = svm.select_model

    def noisy(*a, **k):
        for _ in range(7):
            pywarnings.warn("Liblinear failed to converge, increase the number of iterations.", UserWarning)
        return real(*a, **k)

    monkeypatch.setattr(svm, "select_model", noisy)
    X, m, load = features()
    lines = []
    res = run_baseline("demo", "/c", "IS10", runs=tmp_path, load_features=load, log=lines.append)
    fold = res.record["folds"][0]
    library = [w for w in fold["warnings"] if "UserWarning" in w]   # (a grid-edge warning of C may stand beside it)
    assert library == ["UserWarning x7: Liblinear failed to converge, increase the number of iterations."]
    assert sum("WARNING (spk0): UserWarning x7" in line for line in lines) == 1
    from serbench.reports.collect import collect

    notes = collect("demo", tmp_path).notes()
    assert any("UserWarning x7" in n and "spk0, spk1, spk2, spk3" in n for n in notes)


def test_odd_data_is_warned_about_in_the_output_the_record_and_the_tables(features, tmp_path):
    X, m, load = features()
    # spk3 keeps only 'sad'; 'neutral' keeps one utterance (spk0) -> absent from fold spk0's training rows
    drop = ((m["speaker"] == "spk3") & (m["emotion"] != "sad")) | \
           ((m["emotion"] == "neutral") & ~m["utterance_id"].isin(["spk0_neutral_0"]))
    m = m[~drop].reset_index(drop=True)
    X = X.loc[m["utterance_id"]]
    lines = []
    res = run_baseline("demo", "/c", "IS10", runs=tmp_path,
                       load_features=lambda *a, **k: (X.copy(), m.copy()), log=lines.append)
    rec = res.record["warnings"]
    assert any("single utterance: neutral (1)" in w for w in rec)
    assert any("fold spk0: class(es) neutral absent from its training speakers" in w for w in rec)
    assert any("speaker(s) with a single emotion: spk3 (sad)" in w for w in rec)
    assert sum(line.startswith("WARNING") for line in lines) == len(rec)
    from serbench.reports.collect import collect

    assert any("spk3 (sad)" in n for n in collect("demo", tmp_path).notes())


def test_baseline_on_melseg_tells_a_cli_user_which_command_to_use(tmp_path):
    from serbench.cli import cli

    out = CliRunner().invoke(cli, ["baseline", "--corpus", "demo", "--root", str(tmp_path), "--feature", "melseg",
                                   "--runs", str(tmp_path / "runs")])
    assert out.exit_code == 2 and out.output.count("\n") == 1
    assert "serbench deep --corpus C --root DIR --model cnn-sru --segments N" in out.output


@pytest.mark.parametrize("args", [["--threads", "0"], ["--threads", "-1"], ["--workers", "0"], ["--workers", "-3"]])
def test_zero_or_negative_counts_are_refused_naming_the_option(tmp_path, args):
    from serbench.cli import cli

    out = CliRunner().invoke(cli, ["baseline", "--corpus", "demo", "--root", str(tmp_path), "--feature", "IS10",
                                   *args])
    assert out.exit_code == 2 and args[0] in out.output and "Traceback" not in out.output


def test_set_values_that_break_a_constraint_are_refused_by_the_cli(tmp_path):
    from serbench.cli import cli

    for value in ("cnn_momentum=-1", "cnn_lr=nan", "cnn_weight_decay=inf", "sru_lr=-0.1"):
        out = CliRunner().invoke(cli, ["deep", "--corpus", "demo", "--root", str(tmp_path), "--segments", "2",
                                       "--set", value])
        assert out.exit_code == 2 and out.output.startswith(f"error: --set {value.split('=')[0]}="), out.output


def test_runs_clean_removes_abandoned_partial_runs_only(features, tmp_path, monkeypatch):
    from serbench.baselines import svm

    X, m, load = features()
    real, calls = svm.select_model, []

    def dies_at_second_fold(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(svm, "select_model", dies_at_second_fold)
    with pytest.raises(KeyboardInterrupt):
        run_baseline("demo", "/c", "IS10", runs=tmp_path, load_features=load)
    monkeypatch.setattr(svm, "select_model", real)
    done = run_baseline("demo", "/c", "MFCC", runs=tmp_path, load_features=load)
    partial = list((tmp_path / "demo" / "IS10-svm-linear").glob("*.partial"))
    assert len(partial) == 1
    import subprocess
    import sys

    from serbench.experiments import store

    clean = [sys.executable, "-c", "from serbench.cli import main; main()", "runs", "--runs", str(tmp_path), "--clean"]
    # While this process holds the interrupted run's lock (as a live writer would), it is left alone ...
    out = subprocess.run(clean, capture_output=True, text=True, timeout=120)
    assert "removed 0" in out.stdout and "running" in out.stdout and partial[0].exists()
    store._close_locks()          # ... and once the writer is gone (its process ended), it is removed.
    out = subprocess.run(clean, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "removed 1 abandoned partial run" in out.stdout, out.stderr
    assert not partial[0].exists() and done.path.exists()
    assert list(RunStore(tmp_path).list_runs()["status"]) == ["complete"]


def test_tables_refuse_a_corpus_name_that_is_a_path(tmp_path):
    from serbench.cli import cli

    for name in ("../x", "a/b", ".hidden", ""):
        out = CliRunner().invoke(cli, ["tables", "--corpus", name, "--runs", str(tmp_path / "runs")])
        assert out.exit_code == 2 and ("not a path" in out.output or "unknown corpus" in out.output), out.output
    assert not (tmp_path / "x").exists()
