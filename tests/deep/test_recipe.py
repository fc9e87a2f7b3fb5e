"""The CNN+SRU training recipe beyond the paper: step budget, batch norm, AdamW and schedules,
label smoothing, mixup, SpecAugment masks, speaker-held-out validation, training curves."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from serbench.deep.alexnet import AlexNet, PretrainedError, load_pretrained
from serbench.deep.models import SRUClassifier
from serbench.deep.specaugment import mask_augmenter, spec_masks
from serbench.deep.train import StageConfig, lr_factor, train_stage, unweighted_accuracy
from serbench.experiments.protocol import ProtocolError, speaker_holdout
from serbench.systems import SettingsError, SystemOptionError, run_deep
from serbench.systems import get as get_system
from serbench.systems.builtin.cnn_sru_settings import cnn_epochs
from serbench.systems.builtin.cnn_sru_training import augmenter

torch.set_num_threads(1)


def settings(profile="fast", system="cnn-sru", **over):
    return get_system(system).settings(profile, {k: str(v) for k, v in over.items()})


# --- batch normalization --------------------------------------------------------------------

def test_batchnorm_keeps_torchvision_names_for_conv_and_fc():
    plain, bn = AlexNet(4, width=0.125), AlexNet(4, width=0.125, batchnorm=True)
    assert set(plain.state_dict()) < set(bn.state_dict())
    assert all(bn.state_dict()[k].shape == v.shape for k, v in plain.state_dict().items())
    assert {k.split(".")[1] for k in set(bn.state_dict()) - set(plain.state_dict())} == {"1", "4", "7", "9", "11"}
    assert bn(torch.randn(3, 3, 64, 64)).shape == (3, 4)


def test_batchnorm_refuses_imagenet_weights_and_is_off_with_pretrained(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(AlexNet(4).state_dict(), path)
    with pytest.raises(PretrainedError, match="batch normalization"):
        load_pretrained(AlexNet(4, batchnorm=True), path)
    s = settings("paper", segments=3, cnn_batchnorm="true", pretrained=str(path))
    desc = get_system("cnn-sru").describe(s)
    assert desc["cnn_batchnorm"] is False
    assert get_system("cnn-sru").describe(settings("fast", segments=3))["cnn_batchnorm"] is True


# --- budget and schedules -----------------------------------------------------------------------

def test_budget_gives_every_n_the_same_segments_seen():
    seen = [cnn_epochs(settings(segments=n)) * n for n in range(1, 6)]
    assert seen[0] == seen[2] == seen[4] == settings(segments=1).cnn_budget
    assert max(seen) - min(seen) <= 2                       # a budget not divisible by N: rounding only
    assert cnn_epochs(settings("paper", segments=1)) == cnn_epochs(settings("paper", segments=5)) == 400


@pytest.mark.parametrize("kind", ["cosine", "onecycle"])
def test_lr_schedules_warm_up_then_only_fall(kind):
    total = 1000
    f = [lr_factor(kind, s, total) for s in range(total)]
    peak = int(np.argmax(f))
    assert f[-1] < 0.01 and max(f) == pytest.approx(1.0, abs=0.01)
    assert all(a <= b + 1e-12 for a, b in zip(f[:peak], f[1:peak + 1]))
    assert all(a >= b - 1e-12 for a, b in zip(f[peak:], f[peak + 1:]))
    if kind == "onecycle":
        assert f[0] == pytest.approx(1 / 25) and 0.25 * total <= peak <= 0.31 * total
    assert lr_factor("constant", 5, 10) == 1.0
    with pytest.raises(ValueError):
        lr_factor("linear", 0, 10)


def test_unweighted_accuracy_is_mean_recall():
    assert unweighted_accuracy(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 1, 0])) == pytest.approx(1 / 3)


def _toy(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 64, 64, generator=g)
    return x, (x[:, 0, :32].mean((1, 2)) > x[:, 0, 32:].mean((1, 2))).long()


def _cfg(epochs=4, **kw):
    base = dict(seed=3, optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3), schedule="onecycle",
                label_smoothing=0.1, mixup_alpha=0.4, augment=mask_augmenter(2, 0.2, 2, 0.2))
    base.update(kw)
    return StageConfig("cnn", epochs, 16, **base)


def test_schedule_masks_and_mixup_resume_bit_identically(tmp_path):
    """A stage killed after epoch 2 and resumed equals an uninterrupted one (scheduler state and
    time-crop, mask and mixup draws included); the history has the learning rate and both UAs."""
    from serbench.deep.specaugment import random_time_crop, time_crop

    x, y = _toy()
    x = torch.cat([x[..., :8], x, x[..., -8:]], dim=-1)          # 8 context columns on each side

    def train(ckpt, on_epoch=None):
        torch.manual_seed(0)
        model = AlexNet(2, width=0.125, batchnorm=True)
        res = train_stage(model, x, y, _cfg(crop=lambda t: random_time_crop(t, 64)), device=torch.device("cpu"),
                          transform=lambda t: time_crop(t, 64), checkpoint=ckpt, val=(x[:16], y[:16]),
                          on_epoch=on_epoch)
        return model, res

    full, res = train(tmp_path / "a.pt")
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    assert all(0 <= h["val_ua"] <= 1 and 0 <= h["ua"] <= 1 and h["lr"] > 0 for h in res.history)
    assert res.history[0]["lr"] > res.history[-1]["lr"]

    def kill(ev):
        if ev["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "b.pt", on_epoch=kill)
    resumed, res2 = train(tmp_path / "b.pt")
    assert res2.resumed_from == 2
    for k, v in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=0, atol=0)


def test_label_smoothing_and_mixup_change_the_loss_only_in_training():
    x, y = _toy()
    losses = {}
    for name, kw in {"plain": {"label_smoothing": 0.0, "mixup_alpha": 0.0, "augment": None},
                     "smooth": {"label_smoothing": 0.3, "mixup_alpha": 0.0, "augment": None}}.items():
        torch.manual_seed(0)
        model = AlexNet(2, width=0.125)
        res = train_stage(model, x, y, _cfg(epochs=1, optimizer=lambda p: torch.optim.SGD(p, lr=0.0), **kw),
                          device=torch.device("cpu"), transform=lambda t: t, val=(x, y))
        losses[name] = (res.history[0]["loss"], res.history[0]["val_loss"])
    assert losses["smooth"][0] != pytest.approx(losses["plain"][0])      # smoothing changes the training loss
    assert losses["smooth"][1] == pytest.approx(losses["plain"][1])      # validation: plain cross-entropy


def test_spec_masks_zero_whole_bands_and_spans_within_width():
    torch.manual_seed(0)
    x = torch.ones(64, 3, 20, 40)
    out = spec_masks(x, freq_masks=1, freq_width=0.25)
    assert torch.equal(x, torch.ones_like(x))                                   # input untouched
    rows = (out == 0).all(dim=3).all(dim=1)
    assert torch.equal(out == 0, rows[:, None, :, None].expand_as(out))        # whole rows, all channels
    assert 0 < int(rows.sum(dim=1).max()) <= 5
    for r in rows:
        idx = torch.nonzero(r).flatten()
        assert len(idx) == 0 or int(idx[-1] - idx[0] + 1) == len(idx)
    cols = spec_masks(x, time_masks=2, time_width=0.1)
    assert ((cols == 0).all(dim=2).all(dim=1).sum(dim=1) <= 8).all()
    assert mask_augmenter(0, 0.2, 0, 0.2) is None and mask_augmenter(1, 0.0, 0, 0.0) is None


def test_residual_sru_starts_at_its_cnns_mean_segment_logits_and_leaves_them_frozen():
    torch.manual_seed(0)
    fc8 = torch.nn.Linear(8, 3)
    head = SRUClassifier(8, 3, hidden=4, skip=fc8)
    x = torch.randn(5, 2, 8)
    assert torch.allclose(head(x), fc8(x).mean(dim=1))           # the correction starts at zero
    opt = torch.optim.Adam(head.parameters(), lr=0.1)
    before = fc8.weight.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(x), torch.tensor([0, 1, 2, 0, 1])).backward()
        opt.step()
    assert torch.equal(fc8.weight, before)                       # FC8 stays the CNN's
    assert not torch.allclose(head(x), fc8(x).mean(dim=1))       # the SRU learned a correction
    with pytest.raises(ValueError, match="skip must map 8 -> 3"):
        SRUClassifier(8, 3, hidden=4, skip=torch.nn.Linear(8, 4))


def test_sru_input_dropout_adds_no_parameters():
    a = SRUClassifier(8, 3, hidden=4)
    b = SRUClassifier(8, 3, hidden=4, input_dropout=0.5)
    assert list(a.state_dict()) == list(b.state_dict())


# --- settings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("key,value", [
    ("cnn_schedule", "step"), ("spec_time_width", "0.8"), ("cnn_label_smoothing", "1.0"), ("cnn_budget", "-1"),
    ("cnn_mixup", "nan"), ("cnn_optimizer", "lamb"), ("val_speakers", "-1"), ("spec_freq_masks", "11"),
    ("ensemble", "0"), ("ensemble", "10"),
])
def test_bad_recipe_settings_name_themselves(key, value):
    with pytest.raises(SettingsError, match=key):
        settings(segments=3, **{key: value})


def test_speaker_and_utterance_holdout_are_exclusive():
    with pytest.raises(SettingsError, match="val_speakers"):
        settings("paper", segments=3, val_speakers=1)           # paper holds out 10 % of utterances
    assert settings("paper", segments=3, val_speakers=1, val_fraction=0).val_speakers == 1


def test_paper_profile_keeps_the_papers_recipe():
    s = settings("paper", segments=3)
    assert (s.cnn_optimizer, s.cnn_lr, s.dropout, s.cnn_epochs, s.cnn_batch, s.image_size) == ("sgd", 0.001, 0.5,
                                                                                            400, 30, 227)
    assert (s.sru_hidden, s.sru_lr, s.sru_epochs, s.sru_batch) == (4096, 0.001, 100, 30)
    assert (s.cnn_budget, s.cnn_batchnorm, s.cnn_schedule, s.cnn_label_smoothing, s.cnn_mixup, s.spec_freq_masks,
            s.spec_time_masks, s.val_speakers, s.sru_crossfit, s.cnn_time_shift, s.cnn_test_crops) == (
        0, False, "constant", 0, 0, 0, 0, 0, 0, 0, 1)
    assert (s.cnn_freq_shift, s.sru_residual, s.sru_fuse, s.ensemble) == (0, False, 0, 1)
    assert get_system("cnn-sru").stored_name(s) == "cnn-sru-N3"


def test_fast_stage2_choice_stays_with_the_cascade_and_its_fused_decision_has_its_own_name():
    s = settings("fast", segments=3)
    assert (s.cnn_freq_shift, s.sru_residual, s.sru_fuse) == (0.05, True, 0.75)
    # A fused decision is not the paper's CNN+SRU: it is stored under its own name; sru_fuse=0 is the paper's row.
    assert get_system("cnn-sru").stored_name(s) == "cnn-sru-fuse75-N3"
    assert get_system("cnn-sru").stored_name(settings("fast", segments=3, sru_fuse=0)) == "cnn-sru-N3"
    described = get_system("cnn-sru").describe(s)
    assert "corrects the mean of the CNN's segment logits" in described["sru_input"]
    # The fused decision is not the paper's: the record (and so every table) says what it is.
    assert described["decision"].startswith("0.25 x the cascade's probabilities + 0.75 x")
    assert "decision: 0.25 x" in described["note"]
    assert get_system("cnn-sru").describe(settings("paper", segments=3))["decision"] is None
    for ablation in ("cnn", "sru"):
        a = settings("fast", system=ablation, segments=3)
        assert a.sru_residual is False and a.sru_fuse == 0 and a.cnn_freq_shift == 0.05
        assert get_system(ablation).describe(a)["decision"] is None
        get_system(ablation).check_data(None, a)                   # the profile's default is not refused
        with pytest.raises(SystemOptionError, match="--set sru_residual=True: only --model cnn-sru"):
            get_system(ablation).check_data(None, settings("fast", system=ablation, segments=3, sru_residual=True))


def test_speaker_holdout_is_speaker_disjoint():
    speakers = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 4)
    rows = np.arange(12)
    fit, val = speaker_holdout(rows, speakers, 1, seed=1)
    assert len(set(speakers[val])) == 1 and not set(speakers[val]) & set(speakers[fit])
    assert sorted(np.concatenate([fit, val])) == list(rows)
    assert speaker_holdout(rows, speakers, 1, seed=1)[1].tolist() == val.tolist()
    with pytest.raises(ProtocolError, match="val_speakers=3"):
        speaker_holdout(rows, speakers, 3, seed=0)


# --- end to end: budget, held-out speakers and curves in the run record ---------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory, emotion_corpus):
    return emotion_corpus(tmp_path_factory.mktemp("recipecorpus"), [0.5] * 4)


@pytest.mark.slow
def test_run_record_holds_curves_budget_and_speaker_validation(corpus, tmp_path):
    over = {"cnn_budget": "8", "sru_epochs": "2", "cnn_batchnorm": "true", "cnn_optimizer": "adamw",
            "cnn_schedule": "cosine", "val_speakers": "1", "patience": "5", "spec_time_masks": "1",
            "spec_time_width": "0.2", "cnn_mixup": "0.2", "cnn_label_smoothing": "0.1"}
    res = run_deep("demo", corpus, segments=2, profile="tiny", device="cpu", seed=0, cache=tmp_path / "c",
                   runs=tmp_path / "runs", overrides=over)
    rec = json.loads((res.path / "run.json").read_text())
    assert rec["config"]["cnn_epochs"] == 4 and rec["config"]["cnn_batchnorm"] is True
    assert "held-out training speaker" in rec["config"]["early_stopping"]
    for f in rec["folds"]:
        curves = f["curves"]
        assert 1 <= len(curves["cnn"]) <= 4 and 1 <= len(curves["sru"]) <= 2
        for pt in curves["cnn"] + curves["sru"]:
            assert math.isfinite(pt["loss"]) and 0 <= pt["val_ua"] <= 1 and 0 <= pt["ua"] <= 1
        assert f["timings"]["n_val"] == 8 and f["timings"]["n_fit"] == 8      # 1 of 2 training speakers


def test_fc7_features_are_deterministic_in_eval_mode_and_keep_batchnorm_statistics():
    from serbench.deep.train import extract_fc7

    torch.manual_seed(0)
    cnn = AlexNet(3, width=0.125, batchnorm=True)
    cnn.train()
    cnn(torch.randn(8, 3, 64, 64))                     # some running statistics
    stats = {k: v.clone() for k, v in cnn.state_dict().items() if "running" in k}
    x = torch.randn(6, 3, 64, 64)
    kw = dict(batch=4, device=torch.device("cpu"), transform=lambda t: t)
    clean = extract_fc7(cnn, x, **kw)
    assert clean.shape == (6, cnn.fc_dim)
    assert torch.equal(clean, extract_fc7(cnn, x, **kw))                       # eval mode: deterministic
    cnn.eval()
    with torch.no_grad():
        assert torch.allclose(clean, cnn.fc7(x), atol=1e-4)                    # batches of 4 = one pass
    assert not cnn.training and not any(m.training for m in cnn.modules())
    assert all(torch.equal(cnn.state_dict()[k], v) for k, v in stats.items())


@pytest.mark.slow
def test_sru_regularizers_and_masks_are_reproducible(corpus, tmp_path):
    over = {"cnn_epochs": "2", "sru_epochs": "2", "sru_input_dropout": "0.3",
            "sru_weight_decay": "0.01", "spec_freq_masks": "1", "spec_freq_width": "0.2"}
    preds = []
    for i in range(2):
        res = run_deep("demo", corpus, segments=2, profile="tiny", device="cpu", seed=0, cache=tmp_path / "c",
                       runs=tmp_path / f"runs{i}", overrides=over)
        preds.append(res.predictions.sort_values("utterance_id").reset_index(drop=True))
    assert preds[0].equals(preds[1])
    assert res.record["config"]["settings"]["sru_input_dropout"] == 0.3


def test_explicit_cnn_epochs_replace_the_profiles_budget():
    assert cnn_epochs(settings(segments=3)) == 100                        # fast: budget 300 / N = 3
    s = settings(segments=3, cnn_epochs=7)
    assert s.cnn_budget == 0 and cnn_epochs(s) == 7
    assert cnn_epochs(settings(segments=3, cnn_epochs=7, cnn_budget=30)) == 10


# --- time shifts: training crops over neighbouring frames, test-time shift averaging ------------

def test_context_images_hold_the_segment_in_their_centre_and_real_neighbours_around_it():
    from serbench.features.melseg import segment_images

    rng = np.random.default_rng(0)
    mels = [rng.standard_normal((3, 60, t)).astype(np.float32) for t in (200, 37, 10)]
    plain = segment_images(mels, 3, 64)
    wide = segment_images(mels, 3, 64, context=16)
    assert wide.shape == (9, 3, 64, 96)
    # Inside the segment the columns are exactly the plain resize; only the edge columns, which the
    # plain resize clamps to the segment and the context image interpolates with the neighbour, differ.
    assert torch.allclose(wide[..., 18:78], plain[..., 2:62], atol=1e-5)
    # 192 frames in 3 segments of 64 at 64 pixels: one frame per column, so the right context of segment 0
    # is the start of segment 1, and before the utterance's first frame the context repeats that frame.
    exact = segment_images([mels[0][:, :, :192]], 3, 64, context=16)
    assert torch.allclose(exact[0, ..., 80:96], exact[1, ..., 16:32], atol=1e-5)
    assert torch.allclose(exact[0, ..., :16], exact[0, ..., 16:17].expand(-1, -1, 16), atol=1e-5)
    with pytest.raises(Exception, match="context"):
        segment_images(mels, 3, 64, context=-1)


def test_time_crops_are_uniform_in_range_centred_by_default_and_spread_evenly_at_test():
    from serbench.deep.specaugment import crop_offsets, random_time_crop, time_crop

    x = torch.arange(20.0).expand(500, 1, 2, 20).contiguous()
    crops = random_time_crop(x, 12)
    starts = crops[:, 0, 0, 0].long()
    assert crops.shape == (500, 1, 2, 12) and set(starts.tolist()) == set(range(9))
    assert torch.equal(crops[:, 0, 0, :], starts[:, None] + torch.arange(12.0))
    assert torch.equal(time_crop(x, 12)[0, 0, 0], torch.arange(4.0, 16.0))
    assert time_crop(x, 20) is x and random_time_crop(x, 20) is x
    assert crop_offsets(4, 3) == [0, 4, 8] and crop_offsets(4, 1) == [4] and crop_offsets(0, 3) == [0]


def test_freq_shifts_move_whole_images_by_at_most_the_limit_repeating_edge_rows():
    from serbench.deep.specaugment import random_freq_shift

    torch.manual_seed(0)
    rows = torch.arange(10.0)[:, None].expand(10, 6)
    x = torch.stack([rows, 100 + rows, -rows])[None].expand(400, 3, 10, 6).contiguous()
    out = random_freq_shift(x, 2)
    d = (x[:, 0, 5, 0] - out[:, 0, 5, 0]).long()             # row 5 now holds row 5 - d
    assert set(d.tolist()) == {-2, -1, 0, 1, 2}
    for img, k in zip(out, d.tolist()):
        src = (torch.arange(10) - k).clamp(0, 9)
        assert torch.equal(img, x[0][:, src, :])                 # all channels alike; edges repeat
    assert random_freq_shift(x, 0) is x


def test_freq_shift_setting_builds_a_training_transform_only_when_set():
    assert augmenter(settings(segments=3, cnn_freq_shift=0)) is None
    torch.manual_seed(0)
    x = torch.randn(50, 3, 64, 64)
    aug = augmenter(settings(segments=3, cnn_freq_shift=0.05))
    assert not torch.equal(aug(x), x)
    both = augmenter(settings(segments=3, cnn_freq_shift=0.05, spec_freq_masks=1, spec_freq_width=0.2))
    assert bool((both(x) == 0).any())
    with pytest.raises(SettingsError, match="cnn_freq_shift"):
        settings(segments=3, cnn_freq_shift=0.5)


def test_test_crops_need_a_shift():
    with pytest.raises(SettingsError, match="cnn_test_crops"):
        settings(segments=3, cnn_time_shift=0, cnn_test_crops=3)
    with pytest.raises(SettingsError, match="cnn_time_shift"):
        settings(segments=3, cnn_time_shift=0.6)
    assert settings(segments=3, cnn_time_shift=0.25, cnn_test_crops=3).cnn_test_crops == 3


@pytest.mark.slow
@pytest.mark.parametrize("model, extra", [("cnn-sru", {}), ("cnn", {}),
                                          ("cnn-sru", {"sru_residual": "true"}), ("cnn", {"cnn_freq_shift": "0.1"})])
def test_time_shifted_training_and_test_crops_are_reproducible(corpus, tmp_path, model, extra):
    over = {"cnn_epochs": "2", "sru_epochs": "2", "cnn_time_shift": "0.25", "cnn_test_crops": "3", **extra}
    preds = []
    for i in range(2):
        res = run_deep("demo", corpus, segments=2, profile="tiny", device="cpu", seed=0, model=model,
                       cache=tmp_path / "c", runs=tmp_path / f"runs{i}", overrides=over)
        preds.append(res.predictions.sort_values("utterance_id").reset_index(drop=True))
    assert preds[0].equals(preds[1])
    assert "over 3 shift(s)" in res.record["config"]["time_shifts"]
    assert ("mel rows" in (res.record["config"]["freq_shifts"] or "")) == ("cnn_freq_shift" in extra)
    plain = run_deep("demo", corpus, segments=2, profile="tiny", device="cpu", seed=0, model=model,
                     cache=tmp_path / "c", runs=tmp_path / "plain",
                     overrides={k: v for k, v in over.items() if k not in ("cnn_time_shift", "cnn_test_crops")})
    prob = [c for c in plain.predictions.columns if c.startswith("score_")]
    assert prob
    assert not plain.predictions.sort_values("utterance_id")[prob].reset_index(drop=True).equals(preds[0][prob])


# --- every setting of the cascade reaches what it predicts ---------------------------------------

def _melseg_data(seed: int = 0):
    """3 speakers x 2 classes x 3 utterances of ``(3, 60, T)`` log-mel with a class-bright band."""
    from serbench.experiments.dataset import Dataset

    rng = np.random.default_rng(seed)
    y = np.tile(np.repeat([0, 1], 3), 3)
    inputs = []
    for c in y:
        m = rng.normal(size=(3, 60, int(rng.integers(40, 90)))).astype(np.float32) - 5.0
        m[0, (30 if c == 0 else 2):(40 if c == 0 else 12)] += 4.0
        inputs.append(m)
    return Dataset(corpus="synthetic", labels=["angry", "sad"], y=y.astype(np.int64),
                   speakers=np.repeat(["spk0", "spk1", "spk2"], 6), utterance_ids=np.array([f"u{i}" for i in range(18)]),
                   inputs=inputs, fingerprint=f"recipe-test-{seed}")


def _scores(name: str, over: dict, data=None) -> np.ndarray:
    from serbench.experiments.harness import FoldContext

    system = get_system(name)
    s = system.settings("tiny", {"segments": 2, **over})
    data = data if data is not None else _melseg_data()
    ctx = FoldContext(run_id="t", system=name, fold="t", seed=0, device="cpu", threads=1, log=lambda _m: None)
    rows = np.arange(len(data))
    return system.predict(system.fit(data, rows, s, ctx), data, rows, s, ctx).scores


def test_fused_decision_mixes_the_cascade_with_its_own_cnns():
    """``sru_fuse=w``: cnn-sru's probabilities are (1 - w) x the cascade's + w x its CNNs' mean of segment softmax,
    the CNN ablation's decision on the very same CNNs (the two systems draw the same stage-1 seeds)."""
    over = {"cnn_epochs": 2, "sru_epochs": 2}
    cascade, cnn = _scores("cnn-sru", over), _scores("cnn", over)
    assert not np.allclose(cascade, cnn)
    np.testing.assert_allclose(_scores("cnn-sru", {**over, "sru_fuse": 0.6}), 0.4 * cascade + 0.6 * cnn,
                               rtol=1e-6, atol=1e-7)
    with pytest.raises(SystemOptionError, match="--set sru_fuse=0.5: only --model cnn-sru"):
        get_system("cnn").check_data(None, settings("fast", system="cnn", segments=3, sru_fuse=0.5))


#: (base overrides, the setting's non-default value(s)) over the tiny profile at N = 2: each must change
#: cnn-sru's predictions, so every setting of CascadeSettings has a live code path (a setting left unwired
#: by a refactor fails here).
REACHES = {
    "image_size": ({}, {"image_size": 80}), "cnn_width": ({}, {"cnn_width": 0.25}),
    "cnn_epochs": ({}, {"cnn_epochs": 2}), "cnn_budget": ({}, {"cnn_budget": 4}),
    "cnn_batchnorm": ({}, {"cnn_batchnorm": True}), "cnn_batch": ({}, {"cnn_batch": 8}),
    "cnn_lr": ({}, {"cnn_lr": 0.01}), "cnn_optimizer": ({}, {"cnn_optimizer": "adamw"}),
    "cnn_schedule": ({}, {"cnn_schedule": "cosine"}), "cnn_label_smoothing": ({}, {"cnn_label_smoothing": 0.2}),
    "cnn_mixup": ({}, {"cnn_mixup": 0.4}),
    "spec_freq_masks": ({"spec_freq_width": 0.2}, {"spec_freq_masks": 1}),
    "spec_freq_width": ({"spec_freq_masks": 1, "spec_freq_width": 0.05}, {"spec_freq_width": 0.3}),
    "spec_time_masks": ({"spec_time_width": 0.2}, {"spec_time_masks": 1}),
    "spec_time_width": ({"spec_time_masks": 1, "spec_time_width": 0.05}, {"spec_time_width": 0.3}),
    "cnn_time_shift": ({}, {"cnn_time_shift": 0.25}), "cnn_freq_shift": ({}, {"cnn_freq_shift": 0.1}),
    "cnn_test_crops": ({"cnn_time_shift": 0.25}, {"cnn_test_crops": 3}),
    "cnn_momentum": ({}, {"cnn_momentum": 0.5}), "cnn_weight_decay": ({}, {"cnn_weight_decay": 0.05}),
    "dropout": ({}, {"dropout": 0.1}), "sru_hidden": ({}, {"sru_hidden": 16}), "sru_epochs": ({}, {"sru_epochs": 1}),
    "sru_batch": ({}, {"sru_batch": 4}), "sru_lr": ({}, {"sru_lr": 0.01}), "sru_init_std": ({}, {"sru_init_std": 0.1}),
    "sru_init_bias": ({}, {"sru_init_bias": 0.5}), "sru_input_dropout": ({}, {"sru_input_dropout": 0.3}),
    "sru_weight_decay": ({}, {"sru_weight_decay": 0.1}), "sru_crossfit": ({}, {"sru_crossfit": 2}),
    "ensemble": ({}, {"ensemble": 2}), "sru_residual": ({}, {"sru_residual": True}),
    "sru_fuse": ({}, {"sru_fuse": 0.5}), "val_fraction": ({}, {"val_fraction": 0.2}),
    "val_speakers": ({}, {"val_speakers": 1}),
}
#: Settings whose effect is checked elsewhere: why each is not in REACHES.
ELSEWHERE = {
    "segments": "N itself: every test here sets it; the shape of the inputs",
    "profile": "the name of the profile the values came from",
    "speaker_norm": "per-speaker normalization of the inputs, applied before fit (serbench.experiments.inputs)",
    "amp": "mixed precision only ever runs on CUDA; on CPU it must change nothing",
    "patience": "where early stopping ends depends on the validation curve (tests/deep: train_stage)",
    "pretrained": "needs an AlexNet state dict: test_batchnorm_refuses_imagenet_weights_and_is_off_with_pretrained",
}


def test_every_setting_of_the_cascade_is_reached_or_named():
    from serbench.systems.builtin.cnn_sru_settings import CNNSettings

    assert set(REACHES) | set(ELSEWHERE) == set(CNNSettings.fields())
    assert not set(REACHES) & set(ELSEWHERE)


@pytest.mark.slow
def test_every_setting_of_the_cascade_changes_its_predictions():
    data = _melseg_data()
    plain = {}
    for key, (base, value) in REACHES.items():
        frozen = tuple(sorted(base.items()))
        if frozen not in plain:
            plain[frozen] = _scores("cnn-sru", base, data)
        changed = _scores("cnn-sru", {**base, **value}, data)
        assert changed.shape == plain[frozen].shape
        assert not np.array_equal(changed, plain[frozen]), f"{key}={value[key]} changed nothing"
