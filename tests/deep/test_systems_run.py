"""The seed-paper systems as ``serbench deep --model ...``: runs, resume, leakage, protocols, CLI (CPU, tiny)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from serbench.errors import SerbenchError
import torch
from click.testing import CliRunner

import serbench.deep.alexnet as alexnet_mod
import serbench.deep.batching as I
import serbench.experiments.normalize as normalize_mod
import serbench.features
from serbench.deep.alexnet import AlexNet
from serbench.deep.crnn_mk import CRNNMK
from serbench.deep.dcnn_blstm_att import DCNNBLSTMAtt, FeatureExtractor
from serbench.deep.utterance_trainer import predict_system, train_system
from serbench.experiments.harness import HarnessError
from serbench.experiments.protocol import ProtocolError
from serbench.systems import SettingsError, registry, run_deep
from serbench.systems.deep_runtime import Runtime

torch.set_num_threads(1)

EMOTIONS = ("angry", "sad")
SYSTEMS = ("crnn", "crnn-ctc", "crnn-mk", "dcnn-blstm-att")
CPU = Runtime(device=torch.device("cpu"), amp=False, threads=1)


def get_settings(model, profile, overrides=None):
    return registry.get(model).settings(profile, overrides)


def augmentation(s) -> I.Augmentation:
    """The fold augmentation a system's settings ask for."""
    return I.Augmentation(s.aug_copies, s.aug_time_mask, s.aug_freq_mask, s.aug_shift, s.balance)


def build(model, s, n_classes, n_mels):
    return registry.get(model).build(s, n_classes, in_channels=3, n_mels=n_mels)


# ---------------------------------------------------------------- data

@pytest.fixture(scope="module")
def corpus(tmp_path_factory, emotion_corpus):
    """3 speakers x 2 emotions x 3 texts of 0.3, 0.55 and 0.8 s (variable length; see conftest)."""
    return emotion_corpus(tmp_path_factory.mktemp("syscorpus"), [0.3, 0.55, 0.8])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("syscache")


def synthetic(n_speakers: int = 3, per_class: tuple[int, int] = (3, 2), n_mels: int = 60, seed: int = 0,
              sessions: dict[int, str] | None = None):
    """``(mels, manifest)`` without audio: class k has bright mel bands, random lengths 20..90."""
    rng = np.random.default_rng(seed)
    mels, rows = [], []
    for s in range(n_speakers):
        for c, (emotion, count) in enumerate(zip(EMOTIONS, per_class)):
            for k in range(count):
                m = rng.normal(size=(3, n_mels, int(rng.integers(20, 90)))).astype(np.float32) - 5.0
                lo = (n_mels // 2) if c == 0 else 2
                m[0, lo:lo + n_mels // 6] += 4.0
                mels.append(m)
                rows.append({"utterance_id": f"s{s}_{emotion}_{k}", "speaker": f"spk{s}", "emotion": emotion,
                             "session": (sessions or {}).get(s, pd.NA)})
    manifest = pd.DataFrame(rows)
    manifest["status"] = "ok"
    return mels, manifest


@pytest.fixture
def fake_corpus(monkeypatch):
    """Patch the melseg cache (``serbench.features.load_arrays``) to give :func:`synthetic` data
    (kwargs of the fixture call go to it); returns ``(mels, manifest)``."""
    def install(**kwargs):
        mels, manifest = synthetic(**kwargs)
        arrays = dict(zip(manifest["utterance_id"], mels))
        monkeypatch.setattr(serbench.features, "load_arrays", lambda *a, **k: (arrays, manifest.copy()))
        return mels, manifest
    return install


def _run(root, runs, model, cache=None, **kw):
    return run_deep("demo", root, model=model, profile="tiny", device="cpu", seed=0, cache=cache, runs=runs, **kw)


class Interrupt(RuntimeError):
    pass


# ---------------------------------------------------------------- end to end on synthesized audio

@pytest.mark.parametrize("model", SYSTEMS)
def test_system_end_to_end_and_record(corpus, cache, tmp_path, model):
    lines = []
    with pytest.raises(SerbenchError, match=f"segments: not a setting of {model}"):   # one rule: refused, not ignored
        _run(corpus, tmp_path / "runs", model, cache=cache, log=lines.append, segments=3)
    res = _run(corpus, tmp_path / "runs", model, cache=cache, log=lines.append)
    assert res.system == model and res.path.parent == tmp_path / "runs" / "demo" / model
    rec = json.loads((res.path / "run.json").read_text())
    assert rec["status"] == "complete" and rec["kind"] == "deep" and rec["system"] == model
    cfg = rec["config"]
    assert cfg["model"] == model and cfg["system_type"] == model and cfg.get("segments") is None
    assert "segments" not in cfg["settings"] and cfg["profile"] == "tiny"
    assert cfg["settings"] == json.loads(json.dumps(get_settings(model, "tiny").as_dict()))
    assert cfg["protocol"] == "loso" and cfg["device"] == "cpu" and rec["seed"] == 0
    assert cfg["normalization"].startswith("per-(channel, mel band)")
    assert [f["fold"] for f in rec["folds"]] == ["spk1", "spk2", "spk3"]
    assert all(f["timings"]["epochs"] == 3 and f["timings"]["n_train"] == 12 for f in rec["folds"])
    assert all(f["timings"]["device"] == "cpu" and f["timings"]["amp"] is False for f in rec["folds"])
    preds = pd.read_parquet(res.path / "predictions.parquet")
    assert len(preds) == 18 and (preds["speaker"] == preds["fold"]).all()
    assert set(preds["true"]) == set(EMOTIONS) and set(preds["predicted"]) <= set(EMOTIONS)
    scores = preds[[f"score_{e}" for e in EMOTIONS]].to_numpy()
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-9)
    assert (scores >= 0).all()
    assert not (res.path / "checkpoints").exists()
    details = cfg["system_details"]
    if model == "crnn-ctc":
        assert "dB" in details["frame_split"] and details["decode"].startswith("posterior")
        assert (preds["predicted"] == np.array(EMOTIONS)[scores.argmax(1)]).all()   # posterior decoding
    if model == "crnn-mk":
        assert details["variant"] == "crnn-mk" and details["label_smoothing"] == 0.1
    if model == "dcnn-blstm-att":
        assert details["train_encoder"] is True and "trained jointly" in details["encoder"]
        assert cfg["augmentation"].startswith("1 augmented") and cfg["balancing"].startswith("training classes")
        # Augmented copies double the 12 training utterances; the corpus is balanced, so no extra rows.
        assert all(f["timings"]["n_train_rows"] == 24 for f in rec["folds"])


@pytest.mark.parametrize("model", SYSTEMS)
def test_resume_after_interrupted_fold_equals_uninterrupted(corpus, cache, tmp_path, model):
    over = {"val_fraction": "0.25", "patience": "5", "epochs": "4"}   # early-stopping state is resumed too
    full = _run(corpus, tmp_path / "a", model, cache=cache, overrides=over)

    def hook(ev):
        if ev["fold"] == "spk2" and ev["epoch"] == 2:
            raise Interrupt("simulated kill")

    with pytest.raises(HarnessError, match="simulated kill") as killed:
        _run(corpus, tmp_path / "b", model, cache=cache, overrides=over, on_epoch=hook)
    assert isinstance(killed.value.__cause__, Interrupt)
    partial = list((tmp_path / "b" / "demo" / model).glob("*.partial"))
    assert len(partial) == 1 and (partial[0] / "checkpoints" / "spk2" / "model.pt").is_file()
    events = []
    resumed = _run(corpus, tmp_path / "b", model, cache=cache, overrides=over, on_epoch=events.append)
    assert resumed.resumed_folds == ["spk1"]
    assert {(e["system"], e["stage"]) for e in events} == {(model, model)}
    assert not [e for e in events if e["fold"] == "spk1"]                           # finished fold skipped
    assert [e["epoch"] for e in events if e["fold"] == "spk2"] == [3, 4]            # continued at epoch 3
    a = full.predictions.sort_values("utterance_id").reset_index(drop=True)
    b = resumed.predictions.sort_values("utterance_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


# ---------------------------------------------------------------- the fold trainer

@pytest.mark.parametrize("model", SYSTEMS)
def test_loss_falls_through_the_trainer(model):
    mels, manifest = synthetic(n_speakers=2, per_class=(4, 4), n_mels=24, seed=1)
    y = (manifest["emotion"] == "sad").to_numpy().astype(np.int64)
    s = get_settings(model, "tiny", {"epochs": 12, "lr": 0.01, "dropout": 0.0})
    plan = I.plan_fold(mels, y, np.arange(len(mels)), np.array([], dtype=np.int64), augmentation(s),
                       augment_seed=0, balance_seed=1)
    torch.manual_seed(0)
    net = build(model, s, 2, n_mels=24)
    inputs = registry.get(model).batch_inputs(net, s, plan, CPU)
    res = train_system(net, inputs, plan.labels, plan.train_rows, plan.val_rows, s, device=torch.device("cpu"),
                       seed=0)
    losses = [h["loss"] for h in res.history]
    assert len(losses) == 12 and losses[-1] < 0.6 * losses[0], losses


@pytest.mark.parametrize("model", ["crnn-mk", "dcnn-blstm-att"])
def test_padding_and_batch_composition_do_not_change_predictions(model):
    mels, manifest = synthetic(n_speakers=1, per_class=(4, 3), n_mels=24, seed=2)
    y = (manifest["emotion"] == "sad").to_numpy().astype(np.int64)
    s = get_settings(model, "tiny")
    idx = np.arange(len(mels))
    fitted = I.plan_fold(mels, y, idx[:4], idx[:0], augmentation(s), augment_seed=0, balance_seed=1)
    plan = I.predict_plan(mels, idx, fitted.norm)
    assert (plan.labels == -1).all()                       # labels of predicted rows never reach the model
    torch.manual_seed(0)
    net = build(model, s, 2, n_mels=24)
    inputs = registry.get(model).batch_inputs(net, s, plan, CPU)
    together, _ = predict_system(net, inputs, plan.test_rows, batch=64, device=torch.device("cpu"))
    alone, _ = predict_system(net, inputs, plan.test_rows, batch=1, device=torch.device("cpu"))
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-7)


def test_segment_windows_cover_every_frame():
    assert I.segment_windows(10, 16, 8) == [(0, 10)]
    assert I.segment_windows(64, 64, 30) == [(0, 64)]
    assert I.segment_windows(100, 64, 30) == [(0, 64), (30, 94), (36, 100)]
    for t in range(1, 300, 7):
        w = I.segment_windows(t, 64, 30)
        assert w[0][0] == 0 and w[-1][1] == t and all(e - s == min(t, 64) for s, e in w)
        assert len(w) == (1 if t <= 64 else 1 + -(-(t - 64) // 30))


def test_length_batches_group_similar_lengths_and_cover_each_row_once():
    sizes = np.random.default_rng(0).integers(10, 500, size=103)
    gen = torch.Generator().manual_seed(0)
    batches = I.length_batches(sizes, 8, gen, bucket=4)
    assert sorted(np.concatenate(batches).tolist()) == list(range(103))
    assert max(len(b) for b in batches) == 8
    # Within a batch, lengths come from one sorted pool of 32: far less spread than random batches.
    spread = np.mean([np.ptp(sizes[b]) for b in batches if len(b) > 1])
    assert spread < 0.5 * np.ptp(sizes)


def test_frozen_alexnet_features_equal_the_image_path():
    mels, manifest = synthetic(n_speakers=1, per_class=(2, 2), n_mels=24, seed=3)
    y = (manifest["emotion"] == "sad").to_numpy().astype(np.int64)
    s = get_settings("dcnn-blstm-att", "tiny", {"image_size": 63, "aug_copies": 0, "balance": False})
    idx = np.arange(len(mels))
    fitted = I.plan_fold(mels, y, idx, idx[:0], augmentation(s), augment_seed=0, balance_seed=1)
    plan = I.predict_plan(mels, idx, fitted.norm)
    torch.manual_seed(0)
    alex = AlexNet(2, width=0.05)
    net = DCNNBLSTMAtt(FeatureExtractor(alex, "fc7", alex.fc_dim), 2, hidden=4, attn_dim=4, dnn_hidden=4)
    kw = dict(seg_frames=s.seg_frames, seg_hop=s.seg_hop, image_size=63)
    cached = I.FeatureInputs(plan, net, device=torch.device("cpu"), **kw)
    a, _ = predict_system(net, cached, plan.test_rows, batch=4, device=torch.device("cpu"))
    b, _ = predict_system(net, I.SegmentInputs(plan, **kw), plan.test_rows, batch=4, device=torch.device("cpu"))
    torch.testing.assert_close(a, b)


def test_pretrained_dcnn_uses_a_frozen_alexnet(fake_corpus, tmp_path, monkeypatch):
    fake_corpus(n_mels=24)
    weights = tmp_path / "alexnet.pth"
    weights.write_bytes(b"stand-in")
    loaded = []
    # A full-width AlexNet (240 MB of weights) is too big for a unit test: a narrow one, fake weights.
    monkeypatch.setattr(alexnet_mod, "AlexNet", lambda n, width=1.0: AlexNet(n, width=0.05))
    monkeypatch.setattr(alexnet_mod, "load_pretrained", lambda model, path, num_classes: loaded.append(str(path)))
    with pytest.raises(SettingsError, match=r"--set image_size=16: AlexNet \(--pretrained\) needs at least 63"):
        _run(tmp_path, tmp_path / "runs", "dcnn-blstm-att", pretrained=weights)
    res = _run(tmp_path, tmp_path / "runs", "dcnn-blstm-att", pretrained=weights, overrides={"image_size": 63})
    assert len(loaded) == 3                                                   # once per fold
    details = res.config["system_details"]
    assert details["train_encoder"] is False and "frozen" in details["encoder"]
    assert str(weights.resolve()) in details["encoder"]
    assert res.config["settings"]["pretrained"] == str(weights)
    with pytest.raises(SettingsError, match="--set train_encoder=false: .* without --pretrained"):
        _run(tmp_path, tmp_path / "runs", "dcnn-blstm-att", overrides={"train_encoder": "false"})


# ---------------------------------------------------------------- leakage

@pytest.mark.parametrize("model", ["crnn", "dcnn-blstm-att"])
def test_normalization_augmentation_and_balancing_see_only_fit_utterances(fake_corpus, tmp_path, monkeypatch, model):
    mels, manifest = fake_corpus(per_class=(4, 2))          # imbalanced: balancing has work to do
    speaker_of = {id(m): spk for m, spk in zip(mels, manifest["speaker"])}
    calls = {"norm": [], "augment": [], "balance": []}
    real_norm, real_aug, real_bal = I.fit_band_stats, I.augment_training_set, I.balanced_indices

    def norm(arrays):
        calls["norm"].append([id(a) for a in arrays])
        return real_norm(arrays)

    def aug(train_mels, train_labels, **kw):
        calls["augment"].append([id(a) for a in train_mels])
        return real_aug(train_mels, train_labels, **kw)

    def bal(labels, seed, index):
        out = real_bal(labels, seed, index=index)
        calls["balance"].append((len(labels), index.tolist(), out))
        return out

    monkeypatch.setattr(I, "fit_band_stats", norm)
    monkeypatch.setattr(I, "augment_training_set", aug)
    monkeypatch.setattr(I, "balanced_indices", bal)
    over = {"val_fraction": "0.25", "aug_copies": "1", "balance": "true"}
    res = _run(tmp_path, tmp_path / "runs", model, overrides=over)
    rec = json.loads((res.path / "run.json").read_text())
    folds = [f["fold"] for f in rec["folds"]]
    assert folds == ["spk0", "spk1", "spk2"] and len(calls["norm"]) == 3 == len(calls["augment"])
    for k, fold in enumerate(folds):
        t = rec["folds"][k]["timings"]
        fitted = calls["norm"][k]
        assert len(fitted) == t["n_fit"] == t["n_train"] - t["n_val"] and t["n_val"] > 0
        assert fold not in {speaker_of[i] for i in fitted}                 # the test speaker never
        assert calls["augment"][k] == fitted                              # the same fit utterances, no val
        n_labels, index, rows = calls["balance"][k]
        assert n_labels == 2 * t["n_fit"] and index == list(range(2 * t["n_fit"]))   # fit + their copies only
        assert t["n_train_rows"] == len(rows) > n_labels                    # oversampled, within those rows
    assert rec["config"]["augmentation"].startswith("1 augmented") and rec["config"]["balancing"] != "off"


# ---------------------------------------------------------------- protocols, names, settings

def test_loso_session_protocol_gives_one_fold_per_session(fake_corpus, tmp_path):
    _, manifest = fake_corpus(sessions={0: "Ses01", 1: "Ses02", 2: "Ses01"})
    res = _run(tmp_path, tmp_path / "runs", "crnn", protocol="loso-session")
    assert res.config["protocol"] == "loso-session"
    preds = res.predictions.merge(manifest[["utterance_id", "session"]], on="utterance_id")
    assert sorted(preds["fold"].unique()) == ["Ses01", "Ses02"] and len(preds) == len(manifest)
    assert (preds["fold"] == preds["session"]).all()
    with pytest.raises(ProtocolError, match="--protocol 'lopo': unknown"):
        _run(tmp_path, tmp_path / "runs", "crnn", protocol="lopo")
    with pytest.raises(ProtocolError, match="--protocol 'lopo'"):
        run_deep("demo", tmp_path, segments=1, model="sru", profile="tiny", device="cpu", runs=tmp_path / "runs",
                 protocol="lopo")


def test_mk_ablation_flags_are_settings_and_name_the_system(fake_corpus, tmp_path):
    fake_corpus(n_mels=24)
    over = {"mk_multi_kernel": "false", "summary": "last", "mk_enhanced_features": "no",
            "mk_effective_training": "off"}
    s = get_settings("crnn-mk", "tiny", over)
    net = CRNNMK(2, multi_kernel=False, summary="last", enhanced_features=False, effective_training=False)
    assert registry.get("crnn-mk").stored_name(s) == net.variant == "crnn-mk-nomk-last-noenh-nols"
    assert registry.identify("crnn-mk-nomk-last-noenh-nols").settings == {
        "mk_multi_kernel": False, "summary": "last", "mk_enhanced_features": False, "mk_effective_training": False,
        "speaker_norm": False}
    res = _run(tmp_path, tmp_path / "runs", "crnn-mk", overrides={"mk_multi_kernel": "false", "summary": "mean"})
    assert res.system == "crnn-mk-nomk-mean"
    assert res.config["settings"]["mk_multi_kernel"] is False and res.config["settings"]["summary"] == "mean"
    assert res.config["system_details"]["multi_kernel"] is False


def test_settings_overrides_are_typed_and_checked():
    s = get_settings("crnn", "fast", {"channels": "4, 8", "freq_pools": "2,2", "time_pools": "2,1",
                                      "balance": "true", "lr": 1, "summary": "attention"})
    assert s.channels == (4, 8) and s.balance is True and s.lr == 1.0 and s.profile == "fast"
    for profile in ("paper", "fast", "tiny"):
        for model in SYSTEMS:
            assert get_settings(model, profile).profile == profile
    with pytest.raises(SettingsError, match="--set cnn_epochs: not a setting of crnn"):
        get_settings("crnn", "tiny", {"cnn_epochs": "2"})
    with pytest.raises(SettingsError, match=r"--set freq_pools=4,4: give one pool factor >= 1 per conv block"):
        get_settings("crnn", "tiny", {"channels": "4,8,16"})            # the pools still have 2 entries
    with pytest.raises(SettingsError, match="--set channels=1,8: the first block needs >= 2 channels"):
        get_settings("crnn-mk", "tiny", {"channels": "1,8"})            # fewer channels than kernel widths

    with pytest.raises(SettingsError, match="--set summary=max: must be one of mean, last, attention"):
        get_settings("crnn-mk", "tiny", {"summary": "max"})
    with pytest.raises(SettingsError, match="--set epochs=many: expected an int"):
        get_settings("crnn-ctc", "tiny", {"epochs": "many"})
    with pytest.raises(SettingsError, match="--set decode=beam: must be one of posterior, best_path"):
        get_settings("crnn-ctc", "tiny", {"decode": "beam"})
    with pytest.raises(SettingsError, match="--set lr=inf: must be a finite number"):
        get_settings("crnn", "tiny", {"lr": "inf"})
    with pytest.raises(SettingsError, match="--profile 'huge'"):
        get_settings("crnn", "huge")


# ---------------------------------------------------------------- CLI

def test_cli_deep_system(corpus, cache, tmp_path):
    from serbench.cli import cli

    runs = tmp_path / "runs"
    base = ["deep", "--corpus", "demo", "--root", str(corpus), "--profile", "tiny", "--device", "cpu",
            "--cache", str(cache), "--runs", str(runs)]
    result = CliRunner().invoke(cli, base + ["--model", "crnn", "--epochs", "1", "--set", "hidden=4",
                                             "--protocol", "loso"])
    assert result.exit_code == 0, result.output
    assert "crnn on demo" in result.output and "WA" in result.output and "UA" in result.output
    rec = json.loads(next((runs / "demo" / "crnn").glob("*/run.json")).read_text())
    assert rec["config"]["settings"]["epochs"] == 1 and rec["config"]["settings"]["hidden"] == 4
    bad = CliRunner().invoke(cli, base + ["--model", "crnn", "--set", "cnn_epochs=1"])
    assert bad.exit_code == 2 and "--set cnn_epochs: not a setting of crnn" in bad.output
    bad = CliRunner().invoke(cli, base + ["--model", "crnn", "--segments", "2"])
    assert bad.exit_code == 2 and "--segments: crnn has no such setting" in bad.output
    bad = CliRunner().invoke(cli, base + ["--model", "cnn-sru"])
    assert bad.exit_code == 2 and "--segments" in bad.output and "give the number of segments" in bad.output
    bad = CliRunner().invoke(cli, base + ["--model", "lstm"])
    assert bad.exit_code == 2 and "--model" in bad.output and "lstm" in bad.output


# ---------------------------------------------------------------- per-speaker normalization

@pytest.mark.parametrize("model, segments, system", [("sru", 2, "sru-N2-spknorm"), ("crnn", None, "crnn-spknorm")])
def test_speaker_norm_is_its_own_system_and_normalizes_each_speaker(fake_corpus, monkeypatch, tmp_path,
                                                                     model, segments, system):
    mels, manifest = fake_corpus()
    seen = []
    real = normalize_mod.normalize_mels_per_speaker

    def record(arrays, speakers):
        seen.append(list(speakers))
        return real(arrays, speakers)

    monkeypatch.setattr(normalize_mod, "normalize_mels_per_speaker", record)
    res = _run("/c", tmp_path / "runs", model, segments=segments, speaker_norm=True)
    assert res.system == system and res.path.parent.name == system
    rec = json.loads((res.path / "run.json").read_text())
    assert rec["config"]["speaker_norm"] is True
    assert seen == [manifest["speaker"].tolist()]       # once, every utterance with its own speaker
    plain = _run("/c", tmp_path / "runs", model, segments=segments)
    assert plain.system == system.replace("-spknorm", "") and len(seen) == 1
    assert json.loads((plain.path / "run.json").read_text())["config"]["speaker_norm"] is False

    from serbench.reports.collect import collect

    # tiny runs: the demo experiment (tiny profile) makes them its rows, not variants of jiang2019's fast ones
    specs = {r.spec.name: r.spec for r in collect("demo", tmp_path / "runs", experiment="demo").runs.values()}
    assert specs[system].speaker_norm and not specs[plain.system].speaker_norm
