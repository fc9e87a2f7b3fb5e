"""Experiment files: validation, expansion, run identity, running only what the store lacks, rerun."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from serbench.cli import cli
from serbench.systems.experiment import ExperimentError, load_experiment, run_experiment, shipped
from serbench.systems.runner import stored_identities, stored_status

QUIET = dict(log=lambda _m: None)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """3 speakers x 2 emotions x 4 sentences; 'angry' is louder and higher than 'sad'."""
    root = tmp_path / "corpus"
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    for s, speaker in enumerate(("spk1m", "spk2f", "spk3m")):
        for emotion, (f0, amp) in {"angry": (260, 0.5), "sad": (140, 0.1)}.items():
            for i in range(4):
                x = amp * np.sin(2 * np.pi * (f0 + 10 * s + 5 * i) * t) + 0.01 * rng.standard_normal(t.size)
                path = root / speaker / emotion / f"s{i:02d}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, x, 16000)
    return root


TOY = """
[experiment]
name = "toy"
profile = "tiny"

[[run]]
system = "svm-linear"
matrix = { feature = ["MFCC"], speaker_norm = [false, true] }

[[run]]
system = "cnn"
set = { segments = 1, cnn_lr = 0.003 }
"""


def write(tmp_path: Path, text: str, name: str = "toy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_experiments_validate_and_expand():
    names = {p.stem for p in shipped()}
    assert {"jiang2019", "seed-papers", "demo"} <= names
    paper = load_experiment("jiang2019")
    assert paper.values("cnn-sru", "segments")[:5] == (1, 2, 3, 4, 5)
    assert paper.values("svm-linear", "feature") == ("PLP", "MFCC", "HuWSF", "IS09", "IS10")
    assert paper.reported[("casia", "II", "N=5")]["ua"] == pytest.approx(51.3)
    assert paper.reported[("emodb", "V", "PLP")]["ua"] is None          # "/" in the paper
    planned = paper.plan("casia")
    assert len({p.hash for p in planned}) == len(planned)
    cascade = [p for p in planned if p.system == "cnn-sru" and p.overrides.get("sru_fuse") == 0.0]
    fused = [p for p in planned if p.system == "cnn-sru" and p.overrides.get("sru_fuse") == 0.75]
    assert len(cascade) == 5 and len(fused) == 2
    assert {p.hash for p in cascade}.isdisjoint(p.hash for p in fused)   # never one row


@pytest.mark.parametrize("name", ["jiang2019", "seed-papers", "demo"])
def test_every_shipped_file_dry_runs(name, tmp_path):
    result = CliRunner().invoke(cli, ["run", name, "--corpus", "casia", "--root", str(tmp_path), "--dry-run",
                                      "--runs", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "missing" in result.output


@pytest.mark.parametrize("edit, where, what", [
    (("system = \"cnn\"", "system = \"lstm\""), "run[2]", "unknown"),
    (("cnn_lr = 0.003", "cnn_lr = -1.0"), "run[2] (cnn)", "cnn_lr"),
    (("cnn_lr = 0.003", "cnn_rate = 0.1"), "run[2] (cnn) set.cnn_rate", "not a setting of cnn"),
    (("[[run]]\nsystem = \"cnn\"", "[[run]]\nsystem = \"cnn\"\nepochs = 3"), "run[2] (cnn)", "unknown key 'epochs'"),
    (("feature = [\"MFCC\"]", "feature = [\"FOO\"]"), "run[1] (svm-linear) feature", "FOO"),
    (("profile = \"tiny\"", "profile = \"tiny\"\ncolour = 1"), "[experiment]", "unknown key 'colour'"),
    (("speaker_norm = [false, true]", "speaker_norm = []"), "matrix.speaker_norm", "non-empty"),
])
def test_a_broken_copy_is_one_line_naming_the_file_and_entry(tmp_path, edit, where, what):
    path = write(tmp_path, TOY.replace(*edit))
    result = CliRunner().invoke(cli, ["run", str(path), "--corpus", "demo", "--root", str(tmp_path), "--dry-run"])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert str(path) in line and where in line and what in line


def test_not_toml_and_missing_file(tmp_path):
    bad = write(tmp_path, "[experiment\nname=", "bad.toml")
    with pytest.raises(ExperimentError, match="not valid TOML"):
        load_experiment(bad)
    with pytest.raises(ExperimentError, match="no such experiment file"):
        load_experiment(tmp_path / "absent.toml")
    with pytest.raises(ExperimentError, match="jiang2019"):
        load_experiment("no-such-experiment")


def test_run_twice_then_a_changed_setting_runs_exactly_the_runs_it_touches(corpus, tmp_path):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    exp = load_experiment(write(tmp_path, TOY))
    first = run_experiment(exp, "demo", corpus, cache=cache, runs=runs, threads=1, **QUIET)
    assert [o.action for o in first] == ["ran", "ran", "ran"]
    second = run_experiment(exp, "demo", corpus, cache=cache, runs=runs, threads=1, **QUIET)
    assert [o.action for o in second] == ["done", "done", "done"]
    changed = load_experiment(write(tmp_path, TOY.replace("cnn_lr = 0.003", "cnn_lr = 0.002"), "copy.toml"))
    third = run_experiment(changed, "demo", corpus, cache=cache, runs=runs, threads=1, **QUIET)
    assert [(o.planned.name, o.action) for o in third] == [
        ("MFCC-svm-linear", "done"), ("MFCC-svm-linear-spknorm", "done"), ("cnn-N1", "ran")]
    stored = stored_identities("demo", runs)
    cnn = [h for h, found in stored.items() if found[0][0] == "cnn-N1"]
    assert len(cnn) == 2                                   # two identities under one name, both kept
    records = [json.loads((p / "run.json").read_text()) for h in cnn for _n, p, _s in stored[h]]
    assert sorted(r["config"]["settings"]["cnn_lr"] for r in records) == [0.002, 0.003]
    assert all(r["config"]["identity"]["hash"] in cnn for r in records)


def test_tiny_then_fast_trains_the_fast_run(corpus, tmp_path):
    """The store holding a tiny run under a name does not make the fast run of that name 'done'."""
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    tiny = """
[experiment]
name = "t"
profile = "tiny"
[[run]]
system = "cnn-sru"
set = { segments = 1 }
"""
    # fast with its training shortened: every identity field other than these is fast's
    fast = tiny.replace('"tiny"', '"fast"').replace(
        "segments = 1 }", "segments = 1, cnn_budget = 0.0, cnn_epochs = 1, sru_epochs = 1, ensemble = 1 }")
    out = run_experiment(load_experiment(write(tmp_path, tiny, "tiny.toml")), "demo", corpus, cache=cache,
                         runs=runs, threads=1, **QUIET)
    assert [o.action for o in out] == ["ran"]
    exp = load_experiment(write(tmp_path, fast, "fast.toml"))
    assert stored_status(exp.plan("demo")[0].hash, stored_identities("demo", runs)) == "missing"
    out = run_experiment(exp, "demo", corpus, cache=cache, runs=runs, threads=1, **QUIET)
    assert [o.action for o in out] == ["ran"]


def test_only_filters_and_unknown_only_is_refused(corpus, tmp_path):
    exp = load_experiment(write(tmp_path, TOY))
    assert [p.name for p in exp.plan("demo", only=["*-spknorm"])] == ["MFCC-svm-linear-spknorm"]
    assert [p.name for p in exp.plan("demo", only=["cnn"])] == ["cnn-N1"]
    with pytest.raises(ExperimentError, match="no run matches"):
        run_experiment(exp, "demo", corpus, runs=tmp_path / "r", only=["nothing*"], **QUIET)


def test_rerun_of_an_svm_run_is_bit_identical(corpus, tmp_path):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    exp = load_experiment(write(tmp_path, TOY))
    run_experiment(exp, "demo", corpus, cache=cache, runs=runs, only=["MFCC-svm-linear"], **QUIET)
    run_id = next((runs / "demo" / "MFCC-svm-linear").iterdir()).name
    result = CliRunner().invoke(cli, ["rerun", run_id, "--runs", str(runs), "--cache", str(cache)])
    assert result.exit_code == 0, result.output
    assert "predictions identical" in result.output
    assert len(list((runs / "demo" / "MFCC-svm-linear").iterdir())) == 2


def test_rerun_of_a_tiny_deep_run_is_identical_on_cpu(corpus, tmp_path):
    from serbench.systems.rerun import rerun

    runs, cache = tmp_path / "runs", tmp_path / "cache"
    exp = load_experiment(write(tmp_path, TOY))
    run_experiment(exp, "demo", corpus, cache=cache, runs=runs, only=["cnn-N1"], threads=1, **QUIET)
    path = next((runs / "demo" / "cnn-N1").iterdir())
    report = rerun(path, cache=cache, threads=1)
    assert report.identical_labels and report.identical_scores, report.summary()


def test_a_store_written_before_identities_is_read_and_counts(corpus, tmp_path):
    """Records without config.identity (the previous format) get an identity from their settings."""
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    exp = load_experiment(write(tmp_path, TOY))
    run_experiment(exp, "demo", corpus, cache=cache, runs=runs, only=["MFCC-svm-linear"], **QUIET)
    path = next((runs / "demo" / "MFCC-svm-linear").iterdir())
    record = json.loads((path / "run.json").read_text())
    del record["config"]["identity"]
    del record["config"]["inputs"]["feature_key"]
    (path / "run.json").write_text(json.dumps(record))
    planned = exp.plan("demo", only=["MFCC-svm-linear"])[0]
    assert stored_status(planned.hash, stored_identities("demo", runs)) == "done"
    result = CliRunner().invoke(cli, ["runs", "--corpus", "demo", "--runs", str(runs)])
    assert result.exit_code == 0, result.output
    assert planned.hash in result.output and "legacy" in result.output


def test_runs_shows_identity_and_what_differs_from_the_profile(corpus, tmp_path):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    exp = load_experiment(write(tmp_path, TOY))
    run_experiment(exp, "demo", corpus, cache=cache, runs=runs, only=["cnn-N1"], threads=1, **QUIET)
    result = CliRunner().invoke(cli, ["runs", "--corpus", "demo", "--runs", str(runs)])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "cnn-N1" in x)
    assert exp.plan("demo", only=["cnn-N1"])[0].hash in line
    assert "tiny" in line and "cnn_lr=0.003" not in line     # 0.003 is tiny's own cnn_lr
    copy = tmp_path / "copy"
    shutil.copytree(runs, copy)
    other = load_experiment(write(tmp_path, TOY.replace("cnn_lr = 0.003", "cnn_lr = 0.002"), "c.toml"))
    run_experiment(other, "demo", corpus, cache=cache, runs=copy, only=["cnn-N1"], threads=1, **QUIET)
    result = CliRunner().invoke(cli, ["runs", "--corpus", "demo", "--runs", str(copy)])
    assert "cnn_lr=0.002" in result.output


CROSS = """
[experiment]
name = "cross"

[cross]
corpora = ["demo", "casia"]
adapt = ["none", "corpus"]

[[cross.run]]
system = "svm-linear"
matrix = { feature = ["IS09"] }
"""


def test_an_experiment_file_declares_a_cross_corpus_matrix(tmp_path):
    """[cross] expands into the cross-corpus plan: every ordered pair, each adaptation, the diagonal."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from cross_helpers import loader_of, two_corpora

    from serbench.features import CorpusHandle
    from serbench.systems.cross import plan_cross, run_cross

    exp = load_experiment(write(tmp_path, CROSS))
    assert exp.entries == () and exp.cross.corpora == ("demo", "casia") and exp.cross.adapt == ("none", "corpus")
    assert exp.cross.systems() == [("svm-linear", {"feature": "IS09"})]
    tables = two_corpora(offset=3.0)
    handles = [CorpusHandle.of(c, f"/nowhere/{c}") for c in exp.cross.corpora]
    plan = plan_cross(handles, systems=exp.cross.systems(), adapt=exp.cross.adapt, diagonal=exp.cross.diagonal,
                      load_features=loader_of(tables))
    labels = sorted((c.train, c.test, c.adapt) for c in plan.cells if not c.diagonal)
    assert labels == [("casia", "demo", "corpus"), ("casia", "demo", "none"),
                      ("demo", "casia", "corpus"), ("demo", "casia", "none")]
    outcomes = run_cross(plan, runs=tmp_path / "runs", log=lambda m: None)
    assert all(o.action == "ran" for o in outcomes)


@pytest.mark.parametrize("edit, what", [
    (('adapt = ["none", "corpus"]', 'adapt = ["none", "test"]'), "[cross] adapt"),
    (('corpora = ["demo", "casia"]', 'corpora = ["demo"]'), "at least two corpora"),
    (('system = "svm-linear"', 'system = "svm-linear"\nepochs = 2'), "cross.run[1] (svm-linear)"),
])
def test_a_broken_cross_table_is_one_line(tmp_path, edit, what):
    path = write(tmp_path, CROSS.replace(*edit))
    result = CliRunner().invoke(cli, ["run", str(path), "--dry-run"])
    assert result.exit_code == 2, result.output
    assert str(path) in result.output and what in result.output and len(result.output.strip().splitlines()) == 1


def test_a_cross_matrix_without_the_folder_of_one_corpus_says_so(tmp_path):
    path = write(tmp_path, CROSS)
    result = CliRunner().invoke(cli, ["run", str(path), "--corpus", f"demo={tmp_path}", "--dry-run"])
    assert result.exit_code == 2, result.output
    assert "--corpus casia" in result.output and "--no-cross" in result.output
