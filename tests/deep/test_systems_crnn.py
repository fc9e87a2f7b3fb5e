"""CRNN baseline: shapes, padding invariance, masked batch norm, summaries, gradients, a falling loss."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from serbench.deep.crnn import (
    CRNN, AttentionPool, MaskedBatchNorm2d, Summary, SystemInputError, length_mask, masked_mean, pad_batch,
)

torch.set_num_threads(1)

N_MELS = 16
SMALL = dict(n_mels=N_MELS, channels=(4, 8), freq_pools=(2, 2), time_pools=(2, 2), hidden=8, attn_dim=8,
             fc_hidden=8)


def band_data(n: int, n_classes: int, seed: int, t_max: int = 24) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tiny separable set: class k = bands [4k, 4k+4) are bright; random lengths; junk padding."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % n_classes
    lengths = torch.randint(6, t_max + 1, (n,), generator=g)
    x = torch.randn(n, 3, N_MELS, t_max, generator=g) * 0.5
    for i in range(n):
        x[i, :, 4 * int(y[i]):4 * int(y[i]) + 4, :] += 2.0
        x[i, :, :, int(lengths[i]):] = 7.0            # padding junk the model must ignore
    return x, lengths, y


def test_output_shapes_for_several_lengths():
    torch.manual_seed(0)
    model = CRNN(3, **SMALL).eval()
    for t, lengths in [(1, [1]), (5, [5, 1, 3]), (13, [13, 8]), (40, [40, 2, 17, 33])]:
        x = torch.randn(len(lengths), 3, N_MELS, t)
        out = model(x, torch.tensor(lengths))
        assert out.logits.shape == (len(lengths), 3)
        t_out = -(-t // 4)
        assert out.frames.shape == (len(lengths), t_out, 16)
        assert out.lengths.tolist() == [-(-n // 4) for n in lengths]
        assert model.output_lengths(torch.tensor(lengths)).tolist() == out.lengths.tolist()
        # BLSTM outputs are zero beyond each utterance's valid output frames.
        assert not out.frames[~length_mask(out.lengths, t_out)].any()


@pytest.mark.parametrize("summary", list(Summary))
def test_padding_values_never_change_the_result(summary):
    torch.manual_seed(1)
    model = CRNN(3, summary=summary, dropout=0.0, **SMALL)
    x = torch.randn(3, 3, N_MELS, 21)
    lengths = torch.tensor([21, 9, 4])
    for mode in (True, False):                      # batch statistics (train) and running statistics (eval)
        model.train(mode)
        ref = model(x, lengths).logits
        junk = x.clone()
        junk[1, :, :, 9:] = float("nan")
        junk[2, :, :, 4:] = 1e6
        torch.testing.assert_close(model(junk, lengths).logits, ref, rtol=0, atol=0)
    # In eval mode an utterance gives the same logits alone as inside the padded batch.
    for b in range(3):
        alone = model(x[b:b + 1, :, :, :int(lengths[b])], lengths[b:b + 1]).logits
        torch.testing.assert_close(alone, ref[b:b + 1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_masked_batch_norm_uses_valid_frames_only(momentum):
    torch.manual_seed(2)
    bn, ref = MaskedBatchNorm2d(3, momentum=momentum), torch.nn.BatchNorm2d(3, momentum=momentum)
    x = torch.randn(2, 3, 5, 7)
    lengths = torch.tensor([7, 3])
    x[1, :, :, 3:] = 100.0
    y = bn(x, length_mask(lengths, 7))
    valid = torch.cat([x[0], x[1, :, :, :3]], dim=-1)[None]           # (1, 3, 5, 10): valid frames only
    y_ref = ref(valid)
    torch.testing.assert_close(torch.cat([y[0], y[1, :, :, :3]], dim=-1)[None], y_ref)
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)
    assert not y[1, :, :, 3:].any()
    bn.eval(), ref.eval()
    torch.testing.assert_close(bn(x, length_mask(lengths, 7))[0], ref(x[:1])[0])   # eval: running stats


def test_attention_weights_sum_to_one_on_valid_frames_and_vanish_on_padding():
    torch.manual_seed(3)
    pool = AttentionPool(6, 4)
    h = torch.randn(3, 5, 6)
    mask = length_mask(torch.tensor([5, 2, 1]), 5)
    z, w = pool(h, mask)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(3))
    assert (w[~mask] == 0).all() and (w[mask] > 0).all()
    torch.testing.assert_close(z, (w[..., None] * h).sum(dim=1))
    torch.testing.assert_close(masked_mean(h, mask)[1], h[1, :2].mean(dim=0))
    # CRNN exposes the weights over its output frames.
    model = CRNN(2, summary="attention", **SMALL).eval()
    out = model(torch.randn(2, 3, N_MELS, 16), torch.tensor([16, 5]))
    torch.testing.assert_close(out.weights.sum(dim=1), torch.ones(2))
    assert (out.weights[1, 2:] == 0).all()


def test_last_summary_is_the_final_state_of_each_direction():
    torch.manual_seed(4)
    model = CRNN(2, summary="last", **SMALL).eval()
    x, lengths = torch.randn(2, 3, N_MELS, 20), torch.tensor([20, 11])
    out = model(x, lengths)
    h = model.blstm.hidden
    n = int(out.lengths[1])
    z = model.head(torch.cat([out.frames[1, n - 1, :h], out.frames[1, 0, h:]]))   # forward end, backward start
    torch.testing.assert_close(out.logits[1], z)


def test_gradients_reach_every_parameter():
    torch.manual_seed(5)
    model = CRNN(3, summary="attention", **SMALL)
    x, lengths, y = band_data(6, 3, seed=5)
    model.loss(model(x, lengths), y).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("summary", ["mean", "attention"])
def test_loss_falls_on_a_separable_set(summary, fit):
    torch.manual_seed(6)
    model = CRNN(3, summary=summary, dropout=0.0, **SMALL)
    x, lengths, y = band_data(12, 3, seed=6)
    losses = fit(model, x, lengths, y)
    assert losses[-1] < 0.3 * losses[0]
    model.eval()
    assert (model(x, lengths).logits.argmax(dim=1) == y).float().mean() >= 0.9


def test_bad_inputs_raise_clear_errors():
    model = CRNN(2, **SMALL)
    x = torch.randn(2, 3, N_MELS, 10)
    with pytest.raises(SystemInputError, match="lengths must lie in"):
        model(x, torch.tensor([11, 3]))
    with pytest.raises(SystemInputError, match="lengths must lie in"):
        model(x, torch.tensor([0, 3]))
    with pytest.raises(SystemInputError, match="channels"):
        model(x[:, :1], torch.tensor([10, 3]))
    with pytest.raises(SystemInputError, match="mel bands"):
        model(torch.randn(2, 3, N_MELS + 1, 10), torch.tensor([10, 3]))
    nan = x.clone()
    nan[1, 0, 0, 2] = float("nan")
    with pytest.raises(SystemInputError, match="NaN"):
        model(nan, torch.tensor([10, 3]))
    with pytest.raises(SystemInputError, match="summary must be one of"):
        CRNN(2, summary="max", **SMALL)
    with pytest.raises(SystemInputError, match="time_pools"):
        CRNN(2, **{**SMALL, "time_pools": (2,)})
    with pytest.raises(SystemInputError, match="labels must lie"):
        model.loss(model(x, torch.tensor([10, 3])), torch.tensor([0, 2]))


def test_pad_batch_collates_variable_lengths():
    arrays = [np.ones((3, N_MELS, 4), np.float32), np.full((3, N_MELS, 7), 2.0, np.float32)]
    x, lengths = pad_batch(arrays, pad_value=-1.0)
    assert x.shape == (2, 3, N_MELS, 7) and x.dtype == torch.float32 and lengths.tolist() == [4, 7]
    assert (x[0, :, :, :4] == 1).all() and (x[0, :, :, 4:] == -1).all() and (x[1] == 2).all()
    model = CRNN(2, **SMALL).eval()
    torch.testing.assert_close(model(x, lengths).logits, model(pad_batch(arrays, 0.0)[0], lengths).logits)
    with pytest.raises(SystemInputError, match="array 1"):
        pad_batch([arrays[0], np.ones((3, N_MELS + 1, 4), np.float32)])
    with pytest.raises(SystemInputError, match="at least one"):
        pad_batch([])
