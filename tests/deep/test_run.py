"""CNN+SRU and its ablations through run_deep on a tiny synthesized corpus (CPU, ``tiny`` profile), resume, CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from serbench.errors import SerbenchError
import soundfile as sf
import torch
from click.testing import CliRunner

from serbench.experiments.harness import HarnessError
from serbench.systems import SettingsError, SystemOptionError, run_deep
from serbench.systems.builtin.cnn_sru_settings import FROM_SCRATCH

torch.set_num_threads(1)

SR = 16000
EMOTIONS = ("angry", "sad")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, emotion_corpus):
    """3 speakers x 2 emotions x 4 texts of 0.5 s synthetic 'speech' (see conftest)."""
    return emotion_corpus(tmp_path_factory.mktemp("deepcorpus"), [0.5] * 4)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("deepcache")


TINY = {"cnn_epochs": "3", "sru_epochs": "3"}


def _run(corpus, cache, runs, **kw):
    kw.setdefault("model", "cnn-sru")
    kw.setdefault("overrides", TINY)
    return run_deep("demo", corpus, segments=kw.pop("segments", 2), profile="tiny", device="cpu", seed=0,
                    cache=cache, runs=runs, **kw)


class Interrupt(RuntimeError):
    pass


@pytest.mark.slow
def test_cnn_sru_end_to_end_and_record(corpus, cache, tmp_path):
    lines = []
    res = _run(corpus, cache, tmp_path / "runs", log=lines.append)
    assert res.path == tmp_path / "runs" / "demo" / "cnn-sru-N2" / res.path.name
    assert not res.path.name.endswith(".partial")
    rec = json.loads((res.path / "run.json").read_text())
    assert rec["status"] == "complete" and rec["kind"] == "deep" and rec["system"] == "cnn-sru-N2"
    assert rec["config"]["pretrained"] == FROM_SCRATCH
    assert rec["config"]["profile"] == "tiny" and rec["config"]["settings"]["cnn_epochs"] == 3
    assert rec["config"]["device"] == "cpu" and rec["seed"] == 0
    assert rec["config"]["system_type"] == "cnn-sru" and rec["config"]["settings"]["segments"] == 2
    assert [f["fold"] for f in rec["folds"]] == ["spk1", "spk2", "spk3"]
    assert all(f["timings"]["cnn_segments_per_s"] > 0 for f in rec["folds"])
    # The profile asks for mixed precision; it is only ever used on CUDA, and the record says what ran.
    assert rec["config"]["settings"]["amp"] is True
    assert all(f["timings"]["device"] == "cpu" and f["timings"]["amp"] is False for f in rec["folds"])
    preds = pd.read_parquet(res.path / "predictions.parquet")
    assert len(preds) == 24 and set(preds["fold"]) == {"spk1", "spk2", "spk3"}
    assert (preds["speaker"] == preds["fold"]).all()  # LOSO: each fold tests its own speaker only
    scores = preds[["score_angry", "score_sad"]].to_numpy()
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)
    assert (preds["predicted"] == np.array(["angry", "sad"])[scores.argmax(1)]).all()
    assert 0.0 <= res.metrics["wa"] <= 1.0 and res.wa == res.metrics["wa"]
    assert any("trained from scratch" in line for line in lines)
    assert not any((res.path / "checkpoints").glob("*"))


@pytest.mark.slow
def test_resume_after_interrupted_fold_equals_uninterrupted(corpus, cache, tmp_path):
    full = _run(corpus, cache, tmp_path / "a")

    def hook(ev):
        # Kill the run in the middle of the 2nd fold's CNN stage (after its 2nd epoch checkpoint).
        if ev["fold"] == "spk2" and ev["stage"] == "cnn" and ev["epoch"] == 2:
            raise Interrupt("simulated kill")

    with pytest.raises(HarnessError, match="simulated kill") as killed:
        _run(corpus, cache, tmp_path / "b", on_epoch=hook)
    assert isinstance(killed.value.__cause__, Interrupt)
    partial = list((tmp_path / "b" / "demo" / "cnn-sru-N2").glob("*.partial"))
    assert len(partial) == 1 and (partial[0] / "checkpoints" / "spk2" / "cnn.pt").is_file()
    events = []
    resumed = _run(corpus, cache, tmp_path / "b", on_epoch=events.append)
    assert resumed.resumed_folds == ["spk1"] and resumed.path.parent == partial[0].parent
    assert all(e["system"] == "cnn-sru-N2" for e in events)
    # spk1 was skipped, spk2's CNN continued at epoch 3, spk3 ran whole.
    assert ("spk1", "cnn", 1) not in {(e["fold"], e["stage"], e["epoch"]) for e in events}
    assert [e["epoch"] for e in events if e["fold"] == "spk2" and e["stage"] == "cnn"] == [3]
    a = full.predictions.sort_values("utterance_id").reset_index(drop=True)
    b = resumed.predictions.sort_values("utterance_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("model", ["cnn", "sru"])
def test_ablations_run(corpus, cache, tmp_path, model):
    lines = []
    if model == "sru":   # the sru ablation has no CNN: a --pretrained for it is refused, never ignored
        with pytest.raises(SerbenchError, match="pretrained: not a setting of sru"):
            _run(corpus, cache, tmp_path / "runs", model=model, segments=3, pretrained=tmp_path / "alexnet.pth")
    res = _run(corpus, cache, tmp_path / "runs", model=model, segments=3, log=lines.append)
    assert res.system == f"{model}-N3"
    assert len(res.predictions) == 24
    rec = json.loads((res.path / "run.json").read_text())
    if model == "sru":
        assert "360-d" in rec["config"]["sru_input"]
        assert rec["config"]["pretrained"] is None and "pretrained" not in rec["config"]["settings"]
    else:
        assert rec["config"]["cnn_decision"].startswith("mean of segment softmax")


def test_cross_fitted_cascade_trains_each_sru_on_speakers_its_cnn_never_saw(corpus, cache, tmp_path, monkeypatch):
    import serbench.deep.train as train_mod

    seen = []
    real = train_mod.train_stage

    def spy(model, X, y, cfg, **kw):
        seen.append((cfg.name, int(X.shape[0])))
        return real(model, X, y, cfg, **kw)

    monkeypatch.setattr(train_mod, "train_stage", spy)
    res = _run(corpus, cache, tmp_path / "runs", overrides={**TINY, "sru_crossfit": "2"})
    assert res.system == "cnn-sru-xfit2-N2" and len(res.predictions) == 24
    rec = json.loads((res.path / "run.json").read_text())
    assert rec["config"]["model"] == "cnn-sru" and rec["config"]["settings"]["sru_crossfit"] == 2
    assert "cross-fitted over 2" in rec["config"]["sru_input"]
    # Each LOSO fold trains on 2 speakers x 8 utterances: CNN k on one speaker's 8 x 2 segments,
    # SRU k on the other speaker's 8 utterances; the paper's cascade uses all 16 for both stages.
    assert seen == [("cnn0", 16), ("sru0", 8), ("cnn1", 16), ("sru1", 8)] * 3
    assert all(f["timings"]["sru_crossfit"] == 2 and f["timings"]["fc7_s"] > 0 and f["timings"]["cnn_epochs"] == 6
               for f in rec["folds"])      # timings summed over both CNNs
    with pytest.raises(SystemOptionError, match="--set sru_crossfit=3 needs at least 3 training speakers"):
        _run(corpus, cache, tmp_path / "runs3", overrides={**TINY, "sru_crossfit": "3"})
    with pytest.raises(SettingsError, match="--set sru_crossfit=1: 0 .off, the paper. or K >= 2"):
        _run(corpus, cache, tmp_path / "runs3", overrides={**TINY, "sru_crossfit": "1"})
    with pytest.raises(SystemOptionError, match="only --model cnn-sru"):
        _run(corpus, cache, tmp_path / "runs4", model="cnn", overrides={**TINY, "sru_crossfit": "2"})


def test_sru_ablation_learns_separable_classes(corpus, cache, tmp_path):
    # Loud/high vs quiet/low is trivial from per-segment log-mel statistics: LOSO WA must be high.
    res = _run(corpus, cache, tmp_path / "runs", model="sru", overrides={"sru_epochs": "30", "sru_lr": "0.01"})
    assert res.metrics["wa"] >= 0.9, res.metrics


def test_bad_options_are_refused(corpus, cache, tmp_path):
    with pytest.raises(SystemOptionError, match="--model 'lstm': unknown; choose one of cnn-sru, cnn, sru"):
        _run(corpus, cache, tmp_path, model="lstm")
    with pytest.raises(SettingsError, match=r"--segments 0: must be in \[1, 20\]"):
        _run(corpus, cache, tmp_path, segments=0)
    with pytest.raises(SettingsError, match="--segments is required: give the number of segments"):
        _run(corpus, cache, tmp_path, segments=None)
    with pytest.raises(SettingsError, match="--pretrained .*missing.pth: no such file"):
        _run(corpus, cache, tmp_path, pretrained=tmp_path / "missing.pth")
    with pytest.raises(SettingsError, match="--set cnn_lr=nan: must be a finite number"):
        _run(corpus, cache, tmp_path, overrides={"cnn_lr": "nan"})
    with pytest.raises(SettingsError, match="--set cnn_lr=-1.0: must be a finite number > 0"):
        _run(corpus, cache, tmp_path, overrides={"cnn_lr": "-1"})
    assert not (tmp_path / "demo").exists()      # nothing was started


def test_cli_deep(corpus, cache, tmp_path):
    from serbench.cli import cli

    runs = tmp_path / "runs"
    result = CliRunner().invoke(cli, [
        "deep", "--corpus", "demo", "--root", str(corpus), "--segments", "1", "--model", "cnn",
        "--profile", "tiny", "--device", "cpu", "--cache", str(cache), "--runs", str(runs),
        "--epochs", "1", "--set", "image_size=63"])
    assert result.exit_code == 0, result.output
    assert "trained from scratch" in result.output
    assert "WA" in result.output and "UA" in result.output
    assert "cnn-N1" in result.output
    rec = json.loads(next((runs / "demo" / "cnn-N1").glob("*/run.json")).read_text())
    assert rec["config"]["settings"]["cnn_epochs"] == 1 and rec["config"]["settings"]["image_size"] == 63
    run_dir = next((runs / "demo" / "cnn-N1").glob("*/run.json")).parent
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"        # the training curves, beside the run
    assert f"training curves (loss and UA by epoch, per fold): {run_dir / 'curves.png'}" in result.output
    bad = CliRunner().invoke(cli, ["deep", "--corpus", "demo", "--root", str(corpus), "--segments", "1",
                                   "--set", "nonsense=1", "--cache", str(cache), "--runs", str(runs)])
    assert bad.exit_code == 2 and "nonsense" in bad.output


def test_early_stopping_uses_training_utterances_only(corpus, cache, tmp_path):
    res = _run(corpus, cache, tmp_path / "runs", segments=1,
               overrides={"cnn_epochs": "2", "sru_epochs": "40", "sru_lr": "0.01", "val_fraction": "0.25",
                          "patience": "2"})
    rec = json.loads((res.path / "run.json").read_text())
    assert rec["config"]["early_stopping"].startswith("best validation loss on 25%")
    for f in rec["folds"]:
        t = f["timings"]
        # 16 training utterances per fold: 4 held out for validation (2 per class, stratified), 12 fit.
        assert t["n_train"] == 16 and t["n_val"] == 4 and t["n_fit"] == 12
        assert 1 <= t["sru_epochs"] <= 40
    assert len(res.predictions) == 24  # the test speaker is predicted in full, never used for stopping


def test_utterances_without_features_are_left_out_and_recorded(corpus, tmp_path):
    import shutil

    root = tmp_path / "corpus"
    shutil.copytree(corpus, root)
    sf.write(root / "spk1" / "sad" / "short.wav", np.zeros(80, dtype=np.float32), SR)  # 5 ms < one 25 ms window
    lines = []
    res = run_deep("demo", root, segments=2, model="sru", profile="tiny", device="cpu", cache=tmp_path / "cache",
                   runs=tmp_path / "runs", log=lines.append)
    assert "spk1_sad_short" not in set(res.predictions["utterance_id"]) and len(res.predictions) == 24
    rec = json.loads((res.path / "run.json").read_text())
    assert rec["excluded"]["n"] == 1 and rec["excluded"]["n_rows"] == 25
    assert [e["utterance_id"] for e in rec["excluded"]["utterances"]] == ["spk1_sad_short"]
    assert rec["excluded"]["utterances"][0]["status"] != "ok"
    assert sum(rec["excluded"]["by_status"].values()) == 1 and "ok" not in rec["excluded"]["by_status"]
    assert [e["utterance_id"] for e in res.excluded] == ["spk1_sad_short"]
    assert any("left out" in line for line in lines)


@pytest.mark.parametrize("losses, flagged", [
    ([2.1, 1.7925, 1.7923, 1.7922], True),          # stuck at ln 6 from epoch 2: collapsed
    ([1.9, 1.7, 1.5, 1.3], False),                  # learning
    ([1.79, 1.79, 1.6, 1.5], False),                # slow start, then learning
    ([1.8], False),                                 # too short to tell
])
def test_stuck_at_chance(losses, flagged):
    from serbench.deep.train import stuck_at_chance

    msg = stuck_at_chance([{"loss": v} for v in losses], 6)
    assert bool(msg) == flagged
    if flagged:
        assert "ln 6" in msg and "1.792" in msg


def test_a_collapsed_cnn_is_flagged_in_the_run_and_the_tables(corpus, cache, tmp_path, monkeypatch):
    from serbench.deep import train as train_mod
    from serbench.reports.collect import collect

    # Detection itself is tested above; here a fold whose CNN "collapses" must be carried
    # into the fold timings, the run's timings and the tables' notes.
    seen = []

    def fake(history, n_classes):
        seen.append([h["loss"] for h in history])
        return "training loss stayed at chance (simulated)" if len(seen) == 2 else ""

    monkeypatch.setattr(train_mod, "stuck_at_chance", fake)
    res = _run(corpus, cache, tmp_path / "runs", model="cnn", segments=1)
    assert len(seen) == 3 and all(len(h) == 3 for h in seen)          # every fold, every epoch
    assert res.timings["cnn_collapsed_folds"] == ["spk2"]
    assert res.timings["folds"]["spk2"]["cnn_collapsed"].endswith("(simulated)")
    assert res.timings["folds"]["spk1"]["cnn_collapsed"] is None
    notes = collect("demo", tmp_path / "runs").notes()
    assert any("collapsed to one class" in n and "cnn-N1" in n and "spk2" in n for n in notes)
