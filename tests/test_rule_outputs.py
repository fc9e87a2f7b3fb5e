"""Rule: nothing a user owns is overwritten. Every command that writes is walked:

- ON_INPUT: its output can never land on one of its inputs (a file it reads, the bundle or the cache it reads);
- EXISTING: a command that writes a single file never replaces an existing one without ``--overwrite``;
- LINKS: no write goes through a symbolic link out of the folder the command was given.

Each case is refused in one line (``error: ...``, exit 2) before any work, and the file or folder at
stake is unchanged afterwards. Inputs are synthetic (a 2-speaker demo-layout corpus of 0.3-s tones).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from serbench.cli import cli

SR = 16000


def _tone(path: Path, seconds: float = 0.3, f0: float = 220.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32), SR)
    return path


@pytest.fixture
def world(tmp_path: Path) -> dict:
    """A demo-layout corpus, a bundle-like folder, a results store with one run, and a folder elsewhere."""
    corpus = tmp_path / "corpus"
    for s, spk in enumerate(("spk1", "spk2")):
        for e, emo in enumerate(("angry", "sad")):
            for k in range(2):
                _tone(corpus / spk / emo / f"t{k}.wav", f0=150 + 40 * s + 80 * e + 10 * k)
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text("{}")       # refused before it is ever loaded
    run = tmp_path / "runs" / "demo" / "IS10-svm-linear" / "20260101-000000-abcd"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return {"tmp": tmp_path, "corpus": corpus, "model": model, "runs": tmp_path / "runs", "run": run,
            "cache": tmp_path / "cache", "elsewhere": elsewhere, "wav": corpus / "spk1" / "angry" / "t0.wav"}


def _invoke(args: list) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def _refused(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert text.startswith("error:") and len(text.splitlines()) == 1, text
    assert "Traceback" not in text
    for w in words:
        assert w in text, text


def _snapshot(path: Path) -> dict:
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- output on an input

def _predict_on_input_json(w):
    table = w["tmp"] / "inputs.json"          # an input whose name has an accepted suffix
    table.write_bytes(w["wav"].read_bytes())
    return ["predict", "--model", w["model"], table, "--out", table, "--overwrite"], table, "is one of this command's inputs"


ON_INPUT = {
    "predict --out an input audio file": lambda w: (
        ["predict", "--model", w["model"], w["corpus"], "--out", w["wav"], "--overwrite"], w["wav"], "suffix '.wav'"),
    "predict --out an input file": _predict_on_input_json,
    "predict --out inside the bundle": lambda w: (
        ["predict", "--model", w["model"], w["wav"], "--out", w["model"] / "model.json", "--overwrite"], w["model"],
        "lies inside"),
    "predict --out a new file inside the bundle": lambda w: (
        ["predict", "--model", w["model"], w["wav"], "--out", w["model"] / "pred.csv"], w["model"], "lies inside"),
    "manifest --out a corpus file": lambda w: (
        ["manifest", "--corpus", "demo", "--root", w["corpus"], "--out", w["wav"], "--overwrite"], w["wav"],
        "suffix '.wav'"),
    "train --out inside the cache": lambda w: (
        ["train", "--corpus", "demo", "--root", w["corpus"], "--system", "svm-linear", "--feature", "MFCC",
         "--cache", w["cache"], "--runs", w["runs"], "--out", w["cache"] / "model"], w["corpus"], "overlaps"),
    "train --out inside the corpus": lambda w: (
        ["train", "--corpus", "demo", "--root", w["corpus"], "--system", "svm-linear", "--feature", "MFCC",
         "--cache", w["cache"], "--runs", w["runs"], "--out", w["corpus"] / "model"], w["corpus"], "overlaps"),
    "tables --out inside a stored run": lambda w: (
        ["tables", "--corpus", "demo", "--runs", w["runs"], "--out", w["run"] / "tables"], w["run"],
        "inside the stored run"),
    "report --out a stored run": lambda w: (
        ["report", "--corpus", "demo", "--runs", w["runs"], "--out", w["run"]], w["run"], "inside the stored run"),
}


@pytest.mark.parametrize("case", list(ON_INPUT))
def test_output_never_lands_on_an_input(world, case):
    args, kept, words = ON_INPUT[case](world)
    before = _snapshot(kept)
    _refused(_invoke(args), words)
    assert _snapshot(kept) == before


# ---------------------------------------------------------------- an existing file

EXISTING = {
    "predict": (lambda w, out: ["predict", "--model", w["model"], w["wav"], "--out", out], "pred.csv"),
    "manifest": (lambda w, out: ["manifest", "--corpus", "demo", "--root", w["corpus"], "--out", out],
                 "manifest.csv"),
}


@pytest.mark.parametrize("command", list(EXISTING))
def test_an_existing_file_is_not_replaced_without_overwrite(world, command):
    make, name = EXISTING[command]
    out = world["tmp"] / name
    out.write_text("precious, not serbench's")
    _refused(_invoke(make(world, out)), "already exists", "--overwrite")
    assert out.read_text() == "precious, not serbench's"


def test_manifest_replaces_an_existing_file_with_overwrite(world):
    out = world["tmp"] / "manifest.csv"
    out.write_text("old")
    result = _invoke(["manifest", "--corpus", "demo", "--root", world["corpus"], "--out", out, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("utterance_id,")


def test_train_does_not_replace_an_existing_bundle_without_overwrite(world):
    before = _snapshot(world["model"])
    result = _invoke(["train", "--corpus", "demo", "--root", world["corpus"], "--system", "svm-linear", "--feature",
                      "MFCC", "--cache", world["cache"], "--runs", world["runs"], "--out", world["model"]])
    _refused(result, "already holds a model bundle", "--overwrite")
    assert _snapshot(world["model"]) == before


@pytest.mark.parametrize("suffix", [".xlsx", "", ".txt"])
@pytest.mark.parametrize("command", list(EXISTING))
def test_an_unknown_or_missing_suffix_is_refused_listing_the_accepted_ones(world, command, suffix):
    make, _ = EXISTING[command]
    out = world["tmp"] / f"table{suffix}"
    _refused(_invoke(make(world, out)), ".csv", ".parquet")
    assert not out.exists()


def test_predict_format_must_agree_with_the_suffix(world):
    out = world["tmp"] / "pred.csv"
    _refused(_invoke(["predict", "--model", world["model"], world["wav"], "--out", out, "--format", "json"]),
             "--format json")


# ---------------------------------------------------------------- links out of the folder

def _emodb_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in ("03a01Fa", "03a01Wa", "08a01Fa", "08a01Wa"):
            wav = io.BytesIO()
            sf.write(wav, np.zeros(1600, dtype=np.float32) + 0.1, SR, format="WAV")
            z.writestr(f"wav/{name}.wav", wav.getvalue())
    return buf.getvalue()


def _link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target, target_is_directory=True)


def _links_tables(w):
    _link(w["runs"] / "demo" / "tables", w["elsewhere"])
    return ["tables", "--corpus", "demo", "--runs", w["runs"]]


def _links_report(w):
    _link(w["runs"] / "demo" / "report", w["elsewhere"])
    return ["report", "--corpus", "demo", "--runs", w["runs"]]


def _links_extract(w):
    _link(w["cache"] / "demo", w["elsewhere"])
    return ["extract", "--corpus", "demo", "--root", w["corpus"], "--features", "MFCC", "--cache", w["cache"],
            "--no-progress"]


def _links_demo_corpus(w):
    to = w["tmp"] / "demo"
    from serbench.corpora.demo_synth import SPEAKERS

    _link(to / SPEAKERS[0].name, w["elsewhere"])      # the first voice's speaker folder
    return ["demo-corpus", "--to", to, "--speakers", 4, "--sentences", 1]


def _links_fetch(w):
    archive = w["tmp"] / "emodb.zip"
    archive.write_bytes(_emodb_zip())
    _link(w["tmp"] / "emodb" / "wav", w["elsewhere"])
    return ["fetch", "emodb", "--to", w["tmp"] / "emodb", "--url", archive]


# train reads and fills the same feature cache as extract (serbench.features.cache), so its cache case is extract's.
LINKS = {"tables": _links_tables, "report": _links_report, "extract": _links_extract,
         "demo-corpus": _links_demo_corpus, "fetch": _links_fetch}


@pytest.mark.parametrize("command", list(LINKS))
def test_no_write_goes_through_a_link_out_of_its_folder(world, command):
    args = LINKS[command](world)
    result = _invoke(args)
    _refused(result, "outside")
    assert list(world["elsewhere"].iterdir()) == []


def test_the_runs_store_is_not_written_through_a_link(world):
    """baseline, deep and grid write runs through the store: ``<runs>/<corpus>/<system>`` linked out is refused."""
    from serbench.experiments.store import RunStore
    from serbench.io import OutsideError

    _link(world["runs"] / "demo" / "MFCC-svm-linear", world["elsewhere"])
    with pytest.raises(OutsideError, match="outside"):
        RunStore(world["runs"]).start_run("demo", "MFCC-svm-linear", {}, ["angry", "sad"], "serbench baseline")
    assert list(world["elsewhere"].iterdir()) == []

