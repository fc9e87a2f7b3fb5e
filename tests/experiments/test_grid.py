"""The grid runner behind `make tables`: runs what the store lacks, skips what it has."""
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from serbench.cli import cli
from serbench.errors import SerbenchError
from serbench.systems.grid import paper_grid, present_systems, run_grid


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


def test_paper_grid_lists_both_normalization_variants_and_deep_grid():
    items = paper_grid(features=("IS10",), segments=(1, 3), deep_models=("cnn-sru",))
    assert [i.system for i in items] == ["IS10-svm-linear", "IS10-svm-linear-spknorm", "cnn-sru-N1", "cnn-sru-N3"]
    assert items[1].options["speaker_norm"] is True and items[3].options["segments"] == 3


def test_paper_grid_adds_named_systems_without_segments():
    items = paper_grid(baselines=False, deep=False, systems=("crnn", "crnn-mk"))
    assert [(i.system, i.name) for i in items] == [("crnn", "crnn"), ("crnn-mk", "crnn-mk")]
    with pytest.raises(SerbenchError, match="crnn, crnn-ctc"):
        paper_grid(systems=("lstm",))


def test_paper_grid_deep_speaker_norm_variants_are_opt_in():
    plain = paper_grid(baselines=False, segments=(3,), deep_models=("cnn-sru",), systems=("crnn",))
    assert [i.system for i in plain] == ["cnn-sru-N3", "crnn"]
    assert all(i.options["speaker_norm"] is False for i in plain)
    both = paper_grid(baselines=False, segments=(3,), deep_models=("cnn-sru",), systems=("crnn",),
                      deep_speaker_norm=(False, True))
    assert [(i.system, i.options["speaker_norm"]) for i in both] == [
        ("cnn-sru-N3", False), ("cnn-sru-N3-spknorm", True), ("crnn", False), ("crnn-spknorm", True)]


def test_cli_grid_runs_the_deep_speaker_norm_variant_under_its_own_name(corpus, tmp_path):
    runs = tmp_path / "runs"
    args = ["grid", "--corpus", "demo", "--root", str(corpus), "--no-baselines", "--segments", "1",
            "--models", "cnn", "--deep-speaker-norm", "on", "--profile", "tiny", "--device", "cpu",
            "--threads", "1", "--cache", str(tmp_path / "cache"), "--runs", str(runs)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert present_systems("demo", runs) == {"cnn-N1-spknorm"}
    record = json.loads(next((runs / "demo" / "cnn-N1-spknorm").glob("*/run.json")).read_text(encoding="utf-8"))
    assert record["config"]["speaker_norm"] is True
    result = CliRunner().invoke(cli, args[:-4] + ["--threads", "0"] + args[-4:])
    assert result.exit_code != 0 and "--threads" in result.output


def test_paper_grid_rejects_bad_segments():
    with pytest.raises(SerbenchError, match="1 to 5"):
        paper_grid(segments=(0, 6))


def test_runs_only_what_is_missing(corpus, tmp_path):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    items = paper_grid(features=("MFCC",), speaker_norm=(False,), deep=False)
    first = run_grid("demo", corpus, items, cache=cache, runs=runs, log=lambda _: None)
    assert [(o.system, o.action) for o in first] == [("MFCC-svm-linear", "ran")]
    assert "WA" in first[0].detail
    assert present_systems("demo", runs) == {"MFCC-svm-linear"}
    second = run_grid("demo", corpus, items, cache=cache, runs=runs, log=lambda _: None)
    assert [o.action for o in second] == ["present"]
    forced = run_grid("demo", corpus, items, cache=cache, runs=runs, force=True, log=lambda _: None)
    assert [o.action for o in forced] == ["ran"]


def test_failures_are_reported_and_the_rest_runs(corpus, tmp_path):
    items = paper_grid(features=("NoSuchSet", "MFCC"), speaker_norm=(False,), deep=False)
    out = run_grid("demo", corpus, items, cache=tmp_path / "c", runs=tmp_path / "r", log=lambda _: None)
    assert [o.action for o in out] == ["failed", "ran"]
    assert "NoSuchSet" in out[0].detail or "nosuchset" in out[0].detail.lower()


def test_cli_grid_then_tables(corpus, tmp_path):
    runs = tmp_path / "runs"
    args = ["grid", "--corpus", "demo", "--root", str(corpus), "--features", "MFCC", "--no-deep",
            "--systems", "crnn", "--profile", "tiny", "--device", "cpu",
            "--cache", str(tmp_path / "cache"), "--runs", str(runs)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "3 run, 0 already present, 0 failed" in result.output  # both normalization variants + crnn
    result = CliRunner().invoke(cli, ["tables", "--corpus", "demo", "--runs", str(runs), "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t").is_dir() and any((tmp_path / "t").glob("*.md"))
    systems = (tmp_path / "t" / "tables.md").read_text(encoding="utf-8")  # every table, the systems table last
    crnn_row = next(line for line in systems.splitlines() if line.startswith("| crnn |"))
    assert "missing" not in crnn_row
