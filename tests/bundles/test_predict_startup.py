"""predict refuses bad options and bundles before heavy imports, loads skops files without walking
scikit-learn (yet never trusts a type outside the allow-list), and gives the same rows, in input order, on
worker processes as in this process. Speed itself is measured in benchmarks/bench_predict.py, not here."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from serbench.bundles import BundleError, load_model
from serbench.bundles.format import MODEL_JSON
from serbench.bundles.inference import Prediction, TableWriter, write_table
from serbench.cli import cli

HEAVY = ("sklearn", "torch", "pandas", "skops", "opensmile", "librosa", "dask")


def _cli_in_fresh_interpreter(args: list[str]) -> tuple[int, str, list[str]]:
    """Run ``serbench ARGS`` in a new interpreter: (exit code, stderr, heavy modules loaded when it exited)."""
    code = textwrap.dedent(f"""
        import json, sys
        from serbench.cli import cli
        try:
            cli.main({args!r}, prog_name="serbench")
        except SystemExit as exc:
            code = exc.code
        else:
            code = 0
        print(json.dumps([code, sorted(m for m in {HEAVY!r} if m in sys.modules)]))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    rc, loaded = json.loads(res.stdout.strip().splitlines()[-1])
    return rc, res.stderr, loaded


def test_option_and_bundle_errors_come_before_heavy_imports(trained, corpus, tmp_path):
    bundle = trained("svm-linear").path
    wav = str(next(corpus.rglob("*.wav")))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / MODEL_JSON).write_text("{not json")
    changed = tmp_path / "changed"
    changed.mkdir()
    for f in bundle.iterdir():
        (changed / f.name).write_bytes(f.read_bytes())
    data = bytearray((changed / "weights.safetensors").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (changed / "weights.safetensors").write_bytes(bytes(data))
    cases = [
        (["predict", "--model", str(bundle)], "nothing to predict"),
        (["predict", "--model", str(tmp_path / "none"), wav], "no such folder"),
        (["predict", "--model", str(bundle), str(tmp_path / "absent.wav")], "no such file or folder"),
        (["predict", "--model", str(bundle), wav, "--window", "0.01"], "--window"),
        (["predict", "--model", str(bundle), wav, "--out", str(tmp_path / "p.xlsx")], "suffix"),
        (["predict", "--model", str(bundle), wav, "--jobs", "2", "--scheduler", "local:2"], "not both"),
        (["predict", "--model", str(bundle), wav, "--scheduler", "local:x"], "local:N"),
        (["predict", "--model", str(broken), wav], "not valid JSON"),
        (["predict", "--model", str(changed), wav], "changed since the bundle was written"),
    ]
    for args, needle in cases:
        rc, err, loaded = _cli_in_fresh_interpreter(args)
        assert rc == 2 and needle in err, (args, rc, err)
        assert loaded == [], (args, loaded)


@pytest.mark.parametrize("key", ["svm-linear", "svm-skops"])
def test_a_working_prediction_loads_what_it_needs_and_no_more(trained, corpus, key):
    """The SVM path imports neither torch nor dask, and scikit-learn and skops only for a bundle written
    before the array format (its skops pipeline)."""
    rc, err, loaded = _cli_in_fresh_interpreter(["predict", "--model", str(trained(key).path),
                                                 str(next(corpus.rglob("*.wav")))])
    assert rc == 0, err
    assert "torch" not in loaded and "dask" not in loaded
    assert (("sklearn" in loaded and "skops" in loaded) if key == "svm-skops" else
            ("sklearn" not in loaded and "skops" not in loaded)), loaded


def test_the_command_loads_only_its_own_area_and_every_command_has_one(trained, corpus):
    """`serbench predict` imports the bundle commands' module, not the other areas' (a table in
    serbench.cli says which module holds each command; it must name every command's own module)."""
    from serbench.cli import COMMAND_AREAS

    assert {name: cmd.callback.__module__ for name, cmd in cli.commands.items()} == {
        name: f"serbench.cli.{area}" for name, area in COMMAND_AREAS.items()}
    code = textwrap.dedent(f"""
        import json, sys
        from serbench.cli import main
        sys.argv = ["serbench", "predict", "--model", {str(trained("svm-linear").path)!r},
                    {str(next(corpus.rglob("*.wav")))!r}]
        try:
            main()
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("serbench.cli."))))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    loaded = json.loads(res.stdout.strip().splitlines()[-1])
    assert "serbench.cli.bundles" in loaded
    assert not {f"serbench.cli.{a}" for a in ("corpora", "features", "experiments", "deep", "reports", "cross")} & set(
        loaded)


def test_skops_types_are_recorded_and_an_edited_list_gains_nothing(bundle_copy):
    b = bundle_copy("svm-skops")
    rec = json.loads((b / MODEL_JSON).read_text())
    types = rec["files"]["svm.skops"]["types"]
    assert "serbench.baselines.kernel_grid.TrainingKernel" in types or any(t.startswith("sklearn.") for t in types)
    # a type outside the allow-list named in model.json: refused before skops reads the file
    rec["files"]["svm.skops"]["types"] = [*types, "posix.system"]
    (b / MODEL_JSON).write_text(json.dumps(rec))
    with pytest.raises(BundleError, match=r"allow-list \(posix.system\)"):
        load_model(b)
    # a list naming too little: skops refuses the file's other types, which are then checked themselves
    rec["files"]["svm.skops"]["types"] = []
    (b / MODEL_JSON).write_text(json.dumps(rec))
    assert load_model(b).labels == ["angry", "sad"]
    rec["files"]["svm.skops"]["types"] = "sklearn.svm._classes.SVC"
    (b / MODEL_JSON).write_text(json.dumps(rec))
    with pytest.raises(BundleError, match="not a list of names"):
        load_model(b)


@pytest.mark.slow   # fresh interpreters import scikit-learn and skops (2-5 s each)
@pytest.mark.parametrize("skops_first", [False, True], ids=["serbench-imports-skops", "skops-imported-first"])
def test_allow_list_holds_whoever_imported_skops(bundle_copy, tmp_path, skops_first):
    """With skops' defaults trimmed (serbench imported it) or full (the user did), a bundle loads and a file
    holding a function outside the allow-list is refused."""
    good = bundle_copy("svm-skops")
    bad = bundle_copy("svm-skops")
    code = textwrap.dedent(f"""
        import json, os, sys, hashlib
        {"import skops.io" if skops_first else ""}
        from serbench.bundles import load_model, BundleError
        from serbench.bundles.format import skops_io
        print(load_model({str(good)!r}).labels)
        from sklearn.preprocessing import FunctionTransformer
        data = skops_io().dumps(FunctionTransformer(func=os.system))
        open(os.path.join({str(bad)!r}, "svm.skops"), "wb").write(data)
        rec = json.load(open(os.path.join({str(bad)!r}, "model.json")))
        rec["files"]["svm.skops"].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        json.dump(rec, open(os.path.join({str(bad)!r}, "model.json"), "w"))
        try:
            load_model({str(bad)!r})
        except BundleError as exc:
            print("refused:", exc)
        from skops.io import _trusted_types
        print("walked" if _trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES else "no walk")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout
    assert "['angry', 'sad']" in out
    assert "refused:" in out and "allow-list" in out and ".system" in out, out
    assert ("walked" if skops_first else "no walk") in out, out


def _files(corpus: Path) -> list[str]:
    # an order that is neither sorted nor the folder's: output order must follow it
    files = sorted(str(p) for p in corpus.rglob("*.wav"))
    return files[1::2] + files[0::2][::-1]


def test_two_jobs_give_the_same_rows_in_input_order(trained, corpus, tmp_path):
    model = trained("svm-linear")
    files = _files(corpus)
    outs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}.csv"
        res = CliRunner().invoke(cli, ["predict", "--model", str(model.path), *files, "--jobs", jobs,
                                       "--batch", "3", "--out", str(out)])
        assert res.exit_code == 0, res.output
        outs[jobs] = out.read_bytes()
    assert outs["1"] == outs["2"]
    df = pd.read_csv(tmp_path / "jobs2.csv", keep_default_na=False)
    assert df["file"].tolist() == files
    assert (df["status"] == "ok").all()
    pd.testing.assert_frame_equal(df, pd.read_csv(tmp_path / "jobs1.csv", keep_default_na=False))


def test_python_executor_gives_the_same_windows_and_summaries(trained, corpus):
    from serbench.executors import make_executor

    model = trained("svm-linear")
    files = _files(corpus)[:5]
    here = model.predict(files, window=0.25, hop=0.1, batch=4)
    with make_executor(workers=2, threads=1) as ex:
        there = model.predict(files, window=0.25, hop=0.1, batch=4, executor=ex)
    pd.testing.assert_frame_equal(here, there)
    assert list(dict.fromkeys(there["file"])) == files
    assert (there.groupby("file", sort=False)["segment"].last() == "summary").all()


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_streamed_table_equals_the_whole_table(trained, corpus, tmp_path, fmt):
    model = trained("svm-linear")
    files = _files(corpus)
    run = Prediction(model, files + [str(tmp_path / "missing.wav")], batch=2)
    whole = tmp_path / f"whole.{fmt}"
    streamed = tmp_path / f"streamed.{fmt}"
    frames = []
    with TableWriter(streamed, overwrite=False) as table:
        for df in run.frames():
            frames.append(df)
            table.write(df)
    assert len(frames) > 2 and table.rows == len(files) + 1
    full = pd.concat(frames, ignore_index=True)
    assert full["status"].tolist()[-1] == "failed"
    write_table(full, whole)
    if fmt == "parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(streamed), pd.read_parquet(whole), check_dtype=False)
    else:
        assert streamed.read_bytes() == whole.read_bytes()
