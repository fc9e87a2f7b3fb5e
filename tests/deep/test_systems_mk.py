"""CRNN-MK: multi-kernel conv, per-utterance normalization, ablation flags, padding, training."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from serbench.deep.crnn import SystemInputError, SystemOutput, length_mask
from serbench.deep.crnn_mk import CRNNMK, MultiKernelConv, utterance_normalize

torch.set_num_threads(1)

N_MELS = 16
SMALL = dict(n_mels=N_MELS, channels=(6, 8), freq_pools=(2, 2), time_pools=(2, 2), hidden=8, attn_dim=8,
             fc_hidden=8, kernel_widths=(1, 3, 7))


def band_data(n: int, n_classes: int, seed: int, t_max: int = 24):
    """Class k = bands [4k, 4k+4) bright, plus a random per-utterance level; junk padding."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % n_classes
    lengths = torch.randint(6, t_max + 1, (n,), generator=g)
    x = torch.randn(n, 3, N_MELS, t_max, generator=g) * 0.5 + torch.randn(n, 1, 1, 1, generator=g) * 3
    for i in range(n):
        x[i, :, 4 * int(y[i]):4 * int(y[i]) + 4, :] += 2.0
        x[i, :, :, int(lengths[i]):] = -7.0
    return x, lengths, y


def test_multi_kernel_conv_splits_channels_over_kernel_widths():
    conv = MultiKernelConv(3, 8, widths=(3, 5, 9))
    assert [b.kernel_size for b in conv.branches] == [(3, 3), (3, 5), (3, 9)]
    assert [b.out_channels for b in conv.branches] == [3, 3, 2]
    assert conv(torch.randn(2, 3, 10, 12)).shape == (2, 8, 10, 12)
    # A width-9 branch sees 4 frames either side: an impulse spreads over 9 frames.
    single = MultiKernelConv(1, 1, widths=(9,))
    with torch.no_grad():
        single.branches[0].weight.fill_(1.0)
    x = torch.zeros(1, 1, 3, 21)
    x[0, 0, 1, 10] = 1.0
    assert torch.nonzero(single(x)[0, 0, 1]).flatten().tolist() == list(range(6, 15))
    with pytest.raises(SystemInputError, match="odd"):
        MultiKernelConv(3, 8, widths=(3, 4))
    with pytest.raises(SystemInputError, match="channels"):
        MultiKernelConv(3, 2, widths=(3, 5, 7))


def test_utterance_normalize_uses_valid_frames_only():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 9) * 5 + 2
    lengths = torch.tensor([9, 4])
    x[1, :, :, 4:] = 1e4
    z = utterance_normalize(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        valid = z[b, :, :, :n]
        torch.testing.assert_close(valid.mean(dim=-1), torch.zeros(3, 4), atol=1e-5, rtol=0)
        torch.testing.assert_close(valid.std(dim=-1, unbiased=False), torch.ones(3, 4), atol=1e-3, rtol=0)
    assert not z[1, :, :, 4:].any()
    one = utterance_normalize(torch.randn(1, 1, 2, 3), torch.tensor([1]))
    assert torch.isfinite(one).all() and not one.any()


@pytest.mark.parametrize("flags", list(itertools.product([True, False], ["attention", "mean", "last"],
                                                         [True, False], [True, False]))[::3])
def test_every_ablation_setting_builds_runs_and_ignores_padding(flags):
    multi_kernel, summary, enhanced, effective = flags
    torch.manual_seed(1)
    model = CRNNMK(3, multi_kernel=multi_kernel, summary=summary, enhanced_features=enhanced,
                   effective_training=effective, dropout=0.0, **SMALL)
    x, lengths, y = band_data(4, 3, seed=1)
    lengths[0] = 1
    out = model(x, lengths)
    assert out.logits.shape == (4, 3) and out.frames.shape == (4, 6, 16)
    assert out.lengths.tolist() == [-(-int(n) // 4) for n in lengths]
    assert (out.weights is not None) == (summary == "attention")
    junk = x.clone()
    junk[length_mask(lengths, x.shape[-1])[:, None, None, :].expand_as(x).logical_not()] = float("nan")
    torch.testing.assert_close(model(junk, lengths).logits, out.logits, rtol=0, atol=0)
    model.loss(out, y).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_flags_change_what_they_claim():
    torch.manual_seed(2)
    full = CRNNMK(2, **SMALL)
    assert isinstance(full.cnn.blocks[0].conv, MultiKernelConv) and full.variant == "crnn-mk"
    plain = CRNNMK(2, multi_kernel=False, summary="mean", enhanced_features=False, effective_training=False, **SMALL)
    assert isinstance(plain.cnn.blocks[0].conv, torch.nn.Conv2d)
    assert plain.cnn.blocks[0].conv.out_channels == full.cnn.blocks[0].bn.num_features
    assert plain.variant == "crnn-mk-nomk-mean-noenh-nols"
    assert CRNNMK(2, summary="learned", **SMALL).summary.kind.value == "attention"
    # Label smoothing only with effective_training.
    logits, y = torch.randn(5, 2), torch.tensor([0, 1, 1, 0, 1])
    o = SystemOutput(logits, None, torch.ones(5, dtype=torch.long))
    torch.testing.assert_close(full.loss(o, y), F.cross_entropy(logits, y, label_smoothing=0.1))
    torch.testing.assert_close(plain.loss(o, y), F.cross_entropy(logits, y))
    # Enhanced features need the 3 channels; without them the static channel alone is used.
    x, lengths, _ = band_data(2, 2, seed=2)
    with pytest.raises(SystemInputError, match="channels"):
        full(x[:, :1], lengths)
    plain.eval()
    torch.testing.assert_close(plain(x, lengths).logits, plain(x[:, :1], lengths).logits)
    # Per-utterance normalization makes the enhanced model blind to an utterance's level.
    full.eval()
    torch.testing.assert_close(full(x + 5.0, lengths).logits, full(x, lengths).logits, rtol=1e-4, atol=1e-5)


def test_eval_result_of_an_utterance_does_not_depend_on_the_batch():
    torch.manual_seed(3)
    model = CRNNMK(3, **SMALL).eval()
    x, lengths, _ = band_data(3, 3, seed=3)
    batch = model(x, lengths).logits
    for b in range(3):
        alone = model(x[b:b + 1, :, :, :int(lengths[b])], lengths[b:b + 1]).logits
        torch.testing.assert_close(alone, batch[b:b + 1], rtol=1e-5, atol=1e-6)


def test_loss_falls_on_a_separable_set(fit):
    torch.manual_seed(4)
    model = CRNNMK(3, dropout=0.0, **SMALL)
    x, lengths, y = band_data(12, 3, seed=4)
    losses = fit(model, x, lengths, y)
    # Label smoothing keeps the minimum above 0: compare with the start, not with 0.
    assert losses[-1] < 0.4 * losses[0]
    model.eval()
    assert (model(x, lengths).logits.argmax(dim=1) == y).float().mean() >= 0.9


def test_bad_options_raise():
    with pytest.raises(SystemInputError, match="label_smoothing"):
        CRNNMK(2, label_smoothing=1.0, **SMALL)
    with pytest.raises(SystemInputError, match="n_classes"):
        CRNNMK(1, **SMALL)
