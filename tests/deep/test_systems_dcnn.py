"""DCNN-BLSTMwA (segment encoder, masked stacking, attention, DNN) and its augmentation/balancing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from serbench.deep import AlexNet
from serbench.deep.augment import (
    AugmentError, augment_training_set, balanced_indices, freq_mask, time_mask, time_shift,
)
from serbench.deep.crnn import SystemInputError
from serbench.deep.dcnn_blstm_att import ConvSegmentEncoder, DCNNBLSTMAtt, FeatureExtractor, stack_segments

torch.set_num_threads(1)

SIZE = 12


class CountingEncoder(ConvSegmentEncoder):
    """Records how many segments it was given and fails on non-finite input (padding must never arrive)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert torch.isfinite(x).all(), "a padded segment reached the encoder"
        self.seen.append(x.shape[0])
        return super().forward(x)


def tiny(encoder=None, **kwargs) -> DCNNBLSTMAtt:
    enc = encoder or ConvSegmentEncoder(8, (4,))
    return DCNNBLSTMAtt(enc, 3, hidden=8, attn_dim=8, dnn_hidden=8, **kwargs)


def segment_data(n: int, seed: int, n_max: int = 5):
    """Class k = image rows [4k, 4k+4) bright in every segment; NaN in padded slots."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    lengths = torch.randint(1, n_max + 1, (n,), generator=g)
    x = torch.randn(n, n_max, 3, SIZE, SIZE, generator=g) * 0.5
    for i in range(n):
        x[i, :, :, 4 * int(y[i]):4 * int(y[i]) + 4, :] += 2.0
        x[i, int(lengths[i]):] = float("nan")
    return x, lengths, y


def test_shapes_attention_and_padding_never_reach_the_encoder():
    torch.manual_seed(0)
    enc = CountingEncoder(8, (4,))
    model = tiny(enc, dropout=0.0)
    x, lengths, _ = segment_data(4, seed=0)
    x = torch.nan_to_num(x, nan=0.0)
    lengths[:] = torch.tensor([5, 1, 3, 2])
    x[1, 1:] = float("nan")
    x[2, 3:] = float("nan")
    x[3, 2:] = float("nan")
    out = model(x, lengths)
    assert enc.seen == [11]                                       # 5 + 1 + 3 + 2 valid segments
    assert out.logits.shape == (4, 3) and out.frames.shape == (4, 5, 16) and out.weights.shape == (4, 5)
    torch.testing.assert_close(out.weights.sum(dim=1), torch.ones(4))
    mask = torch.arange(5)[None] < lengths[:, None]
    assert (out.weights[~mask] == 0).all() and (out.weights[mask] > 0).all()
    assert out.weights[1].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    # Eval: an utterance alone == inside the batch (the frozen encoder is in eval mode anyway).
    model.eval()
    batch = model(x, lengths).logits
    for b in range(4):
        n = int(lengths[b])
        torch.testing.assert_close(model(x[b:b + 1, :n], lengths[b:b + 1]).logits, batch[b:b + 1],
                                   rtol=1e-5, atol=1e-6)


def test_frozen_encoder_gets_no_gradient_and_stays_in_eval_mode():
    torch.manual_seed(1)
    x, lengths, y = segment_data(4, seed=1)
    frozen = tiny()
    frozen.train()
    assert not frozen.encoder.training and frozen.blstm.training
    before = frozen.encoder.features[1].running_mean.clone()
    frozen.loss(frozen(x, lengths), y).backward()
    assert all(p.grad is None for p in frozen.encoder.parameters())
    torch.testing.assert_close(frozen.encoder.features[1].running_mean, before)   # BN stats untouched
    head = [p for n, p in frozen.named_parameters() if not n.startswith("encoder.")]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head)
    tuned = tiny(train_encoder=True)
    tuned.train()
    assert tuned.encoder.training
    tuned.loss(tuned(x, lengths), y).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in tuned.encoder.parameters())


def test_alexnet_fc7_can_be_the_segment_encoder():
    torch.manual_seed(2)
    alex = AlexNet(5, width=0.02)
    model = DCNNBLSTMAtt(FeatureExtractor(alex, "fc7", alex.fc_dim), 2, hidden=4, attn_dim=4, dnn_hidden=4).eval()
    segs = torch.randn(3, 3, 63, 63)
    stacked, lengths = stack_segments(segs, [2, 1])
    assert stacked.shape == (2, 2, 3, 63, 63) and lengths.tolist() == [2, 1]
    torch.testing.assert_close(stacked[1, 0], segs[2])
    assert not stacked[1, 1].any()
    assert model(stacked, lengths).logits.shape == (2, 2)
    assert "encoder.owner.classifier.4.weight" in model.state_dict()
    with pytest.raises(SystemInputError, match="no method"):
        FeatureExtractor(alex, "fc9", 3)
    with pytest.raises(SystemInputError, match="sum to"):
        stack_segments(segs, [2, 2])


def test_loss_falls_on_a_separable_set(fit):
    torch.manual_seed(3)
    model = tiny(train_encoder=True, dropout=0.0)
    x, lengths, y = segment_data(12, seed=3)
    losses = fit(model, x, lengths, y)
    assert losses[-1] < 0.3 * losses[0]
    model.eval()
    assert (model(x, lengths).logits.argmax(dim=1) == y).float().mean() >= 0.9


def test_bad_inputs_raise():
    model = tiny()
    with pytest.raises(SystemInputError, match=r"\(B, N, 3, H, W\)"):
        model(torch.randn(2, 3, SIZE, SIZE), torch.tensor([1, 1]))
    with pytest.raises(SystemInputError, match="lengths must lie"):
        model(torch.randn(2, 2, 3, SIZE, SIZE), torch.tensor([3, 1]))
    with pytest.raises(SystemInputError, match="feature_dim"):
        DCNNBLSTMAtt(torch.nn.Flatten(), 3)
    wrong = DCNNBLSTMAtt(ConvSegmentEncoder(8, (4,)), 3, feature_dim=9, hidden=4)
    with pytest.raises(SystemInputError, match="segment_encoder returned"):
        wrong(torch.randn(1, 2, 3, SIZE, SIZE), torch.tensor([2]))


# ---------------------------------------------------------------- augmentation and balancing

def test_balanced_indices_equal_counts_from_the_training_rows_only():
    labels = np.array(["ang"] * 7 + ["sad"] * 2 + ["hap"] * 3)
    train_rows = np.array([40, 3, 17, 8, 99, 21, 5, 60, 61, 12, 13, 77])   # row numbers in the full corpus
    out = balanced_indices(labels, seed=0, index=train_rows)
    assert out.dtype == np.int64 and out.size == 21
    assert set(out.tolist()) == set(train_rows.tolist())                    # every training row, nothing else
    label_of = dict(zip(train_rows.tolist(), labels.tolist()))
    counts = {c: sum(label_of[i] == c for i in out.tolist()) for c in ("ang", "sad", "hap")}
    assert counts == {"ang": 7, "sad": 7, "hap": 7}
    # Duplicates are spread evenly: the 2 'sad' rows appear 3 and 4 times, 'hap' rows 2-3 times.
    dup = np.bincount(out)[train_rows]
    assert sorted(dup[7:9].tolist()) == [3, 4] and set(dup[9:].tolist()) <= {2, 3}
    np.testing.assert_array_equal(out, balanced_indices(labels, seed=0, index=train_rows))
    assert not np.array_equal(out, balanced_indices(labels, seed=1, index=train_rows))
    positions = balanced_indices(labels, seed=0)
    assert positions.min() >= 0 and positions.max() < labels.size


def test_balanced_indices_rejects_bad_input():
    with pytest.raises(AugmentError, match="non-empty"):
        balanced_indices([], seed=0)
    with pytest.raises(AugmentError, match="one integer row number"):
        balanced_indices([0, 1], seed=0, index=[3])
    with pytest.raises(AugmentError, match="repeated"):
        balanced_indices([0, 1], seed=0, index=[3, 3])


def test_masks_and_shift():
    rng = np.random.default_rng(0)
    mel = rng.normal(size=(3, 10, 30)).astype(np.float32) + np.array([5.0, 0.0, -1.0])[:, None, None]
    fill = mel.mean(axis=(1, 2))
    for _ in range(5):
        tm = time_mask(mel, rng, max_width=6)
        changed = np.flatnonzero((tm != mel).any(axis=(0, 1)))
        assert tm.shape == mel.shape and changed.size <= 6
        if changed.size:
            assert changed.max() - changed.min() + 1 == changed.size              # one contiguous run
            np.testing.assert_allclose(tm[:, 0, changed[0]], fill, rtol=1e-6)
        fm = freq_mask(mel, rng, max_width=4)
        assert ((fm != mel).any(axis=(0, 2))).sum() <= 4
    lengths = {time_shift(mel, s, max_shift=3).shape[2] for s in range(40)}
    assert lengths == set(range(27, 34))
    grown = next(time_shift(mel, s, max_shift=3) for s in range(40) if time_shift(mel, s, max_shift=3).shape[2] == 33)
    np.testing.assert_array_equal(grown[:, :, 3:], mel)
    np.testing.assert_array_equal(grown[:, :, 0], mel[:, :, 0])
    assert time_shift(mel[:, :, :1], 0, max_shift=5).shape[2] >= 1
    with pytest.raises(AugmentError, match=r"\(C, F, T\)"):
        time_mask(mel[0], rng)


def test_augment_training_set_keeps_originals_and_maps_sources():
    rng = np.random.default_rng(1)
    mels = [rng.normal(size=(3, 8, n)).astype(np.float32) for n in (12, 20, 15)]
    copies_before = [m.copy() for m in mels]
    out, labels, source = augment_training_set(mels, ["a", "b", "a"], copies=2, seed=3)
    assert len(out) == 9 and labels.tolist() == ["a", "b", "a"] * 3 and source.tolist() == [0, 1, 2] * 3
    for m, before in zip(mels, copies_before):
        np.testing.assert_array_equal(m, before)                                 # inputs untouched
    for i in range(3):
        np.testing.assert_array_equal(out[i], mels[i])
    assert any(o.shape != mels[s].shape or not np.array_equal(o, mels[s]) for o, s in zip(out[3:], source[3:]))
    again, _, _ = augment_training_set(mels, ["a", "b", "a"], copies=2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(out, again))
    with pytest.raises(AugmentError, match="one label per array"):
        augment_training_set(mels, ["a"], copies=1)
