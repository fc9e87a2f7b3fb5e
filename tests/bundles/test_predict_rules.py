"""``predict``: options checked before the bundle loads, windows within bounds, memory per
input bounded, odd audio named; and damaged run records named in one line."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from serbench.bundles import PredictError
from serbench.bundles import inference, sources
from serbench.cli import cli

SR = 16000



@pytest.fixture
def not_a_bundle(tmp_path):
    """A folder whose model.json cannot load: an option error reported instead proves it came first."""
    folder = tmp_path / "not-a-bundle"
    folder.mkdir()
    (folder / "model.json").write_text("{ this would fail to load")
    return folder


@pytest.mark.parametrize("args, words", [
    (["ABSENT"], ("absent.wav: no such file or folder",)),
    (["WAV", "--out", "OUT.xlsx"], ("suffix '.xlsx'", ".csv, .parquet, .pq, .json")),
    (["WAV", "--out", "OUT"], ("no suffix",)),
    (["WAV", "--window", "2", "--hop", "0.0001"], ("--hop 0.0001", "0.01")),
    (["WAV", "--window", "2", "--hop", "3"], ("--hop 3", "window length 2")),
    (["WAV", "--window", "0.1"], ("--window 0.1", "0.25")),
    (["WAV", "--hop", "1"], ("--hop needs --window",)),
    (["WAV", "--speaker", "a", "--speaker-folder", "2"], ("give one of them",)),
    (["WAV", "--corpus", "demo"], ("--corpus and --root go together",)),
])
def test_predict_argument_errors_come_before_the_bundle_is_loaded(not_a_bundle, tmp_path, harmonic, args, words,
                                                                 one_line_error):
    wav = tmp_path / "in.wav"
    sf.write(wav, harmonic(1.0, "sad"), SR)
    subst = {"ABSENT": str(tmp_path / "absent.wav"), "WAV": str(wav), "OUT.xlsx": str(tmp_path / "p.xlsx"),
             "OUT": str(tmp_path / "p")}
    result = CliRunner().invoke(cli, ["predict", "--model", str(not_a_bundle), *[subst.get(a, a) for a in args]])
    one_line_error(result, *words)
    assert "model.json" not in result.output


def test_too_many_windows_are_refused_with_the_count(trained):
    x = np.zeros(120 * SR, dtype=np.float32)          # 120 s at a 10-ms hop: 11,976 windows
    with pytest.raises(PredictError, match=r"gives 11976 windows .* more than 10000"):
        trained("svm-linear").predict([x], window=0.25, hop=0.01)
    assert inference.window_count(120 * SR, 0.25, 0.01) == 11976


def test_a_long_input_without_windows_is_refused_with_the_memory_it_needs(trained, harmonic, monkeypatch, tmp_path,
                                                                        one_line_error):
    model = trained("svm-linear")
    monkeypatch.setattr(sources, "MEMORY_BUDGET", 2e7)       # 20 MB: about 34 s of MFCC input
    long = tmp_path / "long.wav"
    sf.write(long, np.tile(harmonic(1.0, "angry"), 40), SR)   # 40 s
    with pytest.raises(PredictError, match=r"long.wav: 40 s as one input would need about 23 MB .* over the 20 MB allowed .*--window"):
        model.predict([long])
    result = CliRunner().invoke(cli, ["predict", "--model", str(model.path), str(long)])
    one_line_error(result, "long.wav: 40 s as one input", "--window S")
    df = model.predict([long], window=10.0)                   # in windows it fits
    assert (df.status == "ok").all() and len(df) == 5


def test_truncated_and_over_full_scale_inputs_are_named(trained, harmonic, tmp_path):
    cut = tmp_path / "cut.wav"
    sf.write(cut, harmonic(1.0, "sad"), SR)
    data = cut.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    loud = tmp_path / "loud.wav"
    sf.write(loud, harmonic(1.0, "angry") * 1000 / 0.5, SR, subtype="FLOAT")
    model = trained("svm-linear")
    df = model.predict([cut, loud])
    assert (df.status == "ok").all()
    (w_cut, w_loud) = df.attrs["warnings"]
    assert w_cut.startswith(f"{cut}: truncated") and "1.00 s" in w_cut and "0.50 s" in w_cut
    assert w_loud.startswith(f"{loud}: samples reach") and "x full scale" in w_loud
    result = CliRunner().invoke(cli, ["predict", "--model", str(model.path), str(cut), str(loud)])
    assert result.exit_code == 0, result.output
    assert f"warning: {cut}: truncated" in result.output and f"warning: {loud}: samples reach" in result.output


def test_predict_writes_by_suffix_and_overwrites_only_when_told(trained, corpus, tmp_path, one_line_error):
    model = trained("svm-linear")
    out = tmp_path / "pred.pq"
    args = ["predict", "--model", str(model.path), str(corpus / "spk1" / "sad"), "--out", str(out)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    first = out.read_bytes()
    assert first[:4] == b"PAR1"
    one_line_error(CliRunner().invoke(cli, args), "already exists", "--overwrite")
    assert out.read_bytes() == first
    assert CliRunner().invoke(cli, [*args, "--overwrite"]).exit_code == 0


# ---- run records (the results store) --------------------------------------------------------

@pytest.mark.parametrize("name, content", [("run.json", b"{garbage"), ("run.json", b"[1, 2]"),
                                           ("predictions.parquet", b"PAR1 not parquet")])
def test_a_damaged_run_record_is_one_line_naming_the_file(tmp_path, name, content):
    import json

    from serbench.errors import SerbenchError
    from serbench.experiments.store import load_run

    run = tmp_path / "runs" / "demo" / "MFCC-svm-linear" / "20260101-000000-abcd"
    run.mkdir(parents=True)
    record = {"run_id": run.name, "corpus": "demo", "system": "MFCC-svm-linear", "kind": "baseline",
              "labels": ["angry", "sad"], "status": "complete", "folds": [], "metrics": {}, "config": {}}
    (run / "run.json").write_text(json.dumps(record))
    (run / name).write_bytes(content)
    with pytest.raises(SerbenchError) as err:
        load_run(run)
    message = str(err.value)
    assert name in message and "\n" not in message and len(message) < 500, message
