"""CRNN-CTC: energy split, CTC targets, hand-made alignments and decoding, the model."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from serbench.deep.crnn import SystemInputError
from serbench.deep.crnn_ctc import (
    CRNNCTC, CTCAlignmentError, ctc_loss, ctc_targets, decode, emotional_frames, frame_energy_db, pool_energy,
    utterance_log_probs,
)

torch.set_num_threads(1)

N_MELS = 16
SMALL = dict(n_mels=N_MELS, channels=(4, 8), freq_pools=(2, 2), time_pools=(2, 1), hidden=8, fc_hidden=8)
BL, A, B = 0, 1, 2          # CTC indices: blank, emotion 0, emotion 1


def spelled(path: list[int], k: int = 2, p: float = 0.9) -> torch.Tensor:
    """``(T, 1, k+1)`` log-posteriors whose per-frame argmax spells ``path`` (prob ``p``)."""
    probs = torch.full((len(path), 1, k + 1), (1 - p) / k)
    for t, c in enumerate(path):
        probs[t, 0, c] = p
    return probs.log()


def test_frame_energy_is_total_mel_power_in_db():
    power = torch.tensor([[[1e-3, 1.0], [1e-3, 9.0]]])          # (1, F=2, T=2)
    e = frame_energy_db(power.log())
    torch.testing.assert_close(e, torch.tensor([[10 * math.log10(2e-3), 10.0]]))


def test_energy_split_and_targets_on_a_hand_made_case():
    energy = torch.tensor([[-60.0, -10.0, -5.0, -50.0, -8.0, -70.0],
                           [-20.0, -21.0, -90.0, 500.0, 500.0, 500.0]])   # row 2: 3 valid frames, loud padding
    lengths = torch.tensor([6, 3])
    emo = emotional_frames(energy, lengths, drop_db=25.0)
    assert emo.tolist() == [[False, True, True, False, True, False], [True, True, False, False, False, False]]
    targets, target_lengths = ctc_targets(energy, lengths, torch.tensor([1, 0]), drop_db=25.0)
    assert target_lengths.tolist() == [2, 1]                      # two emotional runs, one run
    assert targets.tolist() == [[2, 2], [1, 0]]                   # label + 1 per run, 0-padded


def test_pool_energy_takes_the_loudest_valid_input_frame():
    energy = torch.tensor([[1.0, 5.0, 2.0, 3.0, 9.0], [4.0, 0.0, 99.0, 99.0, 99.0]])
    pooled = pool_energy(energy, torch.tensor([5, 2]), 2)
    assert pooled[0].tolist() == [5.0, 3.0, 9.0]
    assert pooled[1, 0] == 4.0 and torch.isinf(pooled[1, 1:]).all()


def brute_force_ctc(log_probs: torch.Tensor, target: list[int]) -> float:
    """-log sum over every frame path that collapses (merge repeats, drop blanks) to ``target``."""
    t_len, _, c = log_probs.shape
    probs = log_probs[:, 0].exp().double()
    total = 0.0
    for path in itertools.product(range(c), repeat=t_len):
        merged = [p for i, p in enumerate(path) if i == 0 or p != path[i - 1]]
        if [p for p in merged if p != BL] == target:
            total += float(torch.prod(probs[torch.arange(t_len), torch.tensor(path)]))
    return -math.log(total)


@pytest.mark.parametrize("target", [[A], [A, A], [A, B]])
def test_ctc_loss_matches_enumerated_alignments(target):
    torch.manual_seed(0)
    log_probs = torch.log_softmax(torch.randn(5, 1, 3), dim=-1)
    got = ctc_loss(log_probs, torch.tensor([5]), torch.tensor([target]), torch.tensor([len(target)]))
    # reduction 'mean' divides each utterance's loss by its target length.
    assert float(got) * len(target) == pytest.approx(brute_force_ctc(log_probs, target), rel=1e-5)


def test_alignment_that_fits_scores_better_than_one_that_does_not():
    lp = spelled([BL, BL, A, A, BL, A])
    fits = ctc_loss(lp, torch.tensor([6]), torch.tensor([[A, A]]), torch.tensor([2]))
    wrong = ctc_loss(lp, torch.tensor([6]), torch.tensor([[B, B]]), torch.tensor([2]))
    assert float(fits) < 1.0 < float(wrong)


def test_targets_longer_than_the_input_are_rejected():
    lp = spelled([A, A])
    with pytest.raises(CTCAlignmentError, match="needs at least 3 output frames but has 2"):
        ctc_loss(lp, torch.tensor([2]), torch.tensor([[A, A]]), torch.tensor([2]))   # repeat needs a blank
    with pytest.raises(CTCAlignmentError, match="needs at least 3"):
        ctc_loss(lp, torch.tensor([2]), torch.tensor([[A, B, A]]), torch.tensor([3]))
    with pytest.raises(CTCAlignmentError, match="blank"):
        ctc_loss(lp, torch.tensor([2]), torch.tensor([[BL, A]]), torch.tensor([2]))
    assert torch.isfinite(ctc_loss(lp, torch.tensor([2]), torch.tensor([[A, B]]), torch.tensor([2])))


@pytest.mark.parametrize("method", ["posterior", "best_path"])
def test_decode_hand_made_paths(method):
    # blank, blank, A, A, blank, A -> A (class index 0); a second utterance spells B, padded by junk.
    lp = torch.cat([spelled([BL, BL, A, A, BL, A]), spelled([B, B, BL, A, A, A])], dim=1)
    assert decode(lp, torch.tensor([6, 2]), method).tolist() == [0, 1]


def test_best_path_votes_by_tokens_and_posterior_by_mass():
    # Tokens A, A, B (the three B frames merge into one token): majority A; posterior mass favours B.
    lp = spelled([A, BL, A, BL, B, B, B], p=0.99)
    lp[0, 0] = torch.tensor([0.3, 0.4, 0.3]).log()
    lp[2, 0] = torch.tensor([0.3, 0.4, 0.3]).log()
    lengths = torch.tensor([7])
    assert decode(lp, lengths, "best_path").tolist() == [0]
    assert decode(lp, lengths, "posterior").tolist() == [1]
    # An all-blank best path falls back to the posterior decision.
    blank = spelled([BL, BL, BL], p=0.9)
    blank[1, 0] = torch.tensor([0.6, 0.1, 0.3]).log()
    assert decode(blank, torch.tensor([3]), "best_path").tolist() == [1]


def test_utterance_log_probs_are_normalized_non_blank_mass():
    lp = spelled([BL, A, B, A])
    scores = utterance_log_probs(lp.transpose(0, 1), torch.tensor([4]))
    probs = lp[:, 0].exp()
    mass = probs[:, 1:].sum(dim=0)
    torch.testing.assert_close(scores.exp()[0], mass / mass.sum())


def band_data(n: int, seed: int, t_max: int = 24):
    """Raw-log-mel-like set: class k = bands [4k, 4k+4) bright; a 2-frame pause every 8 frames."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    lengths = torch.randint(8, t_max + 1, (n,), generator=g)
    x = torch.randn(n, 3, N_MELS, t_max, generator=g) * 0.3 - 4.0
    x[:, 0, :, 6::8] -= 10.0                                    # pauses (43 dB down): non-emotional frames
    x[:, 0, :, 7::8] -= 10.0
    for i in range(n):
        x[i, 0, 4 * int(y[i]):4 * int(y[i]) + 4, :] += 3.0
        x[i, :, :, int(lengths[i]):] = 50.0
    return x, lengths, y


def test_model_shapes_padding_invariance_and_gradients():
    torch.manual_seed(1)
    model = CRNNCTC(2, dropout=0.0, **SMALL)
    x, lengths, y = band_data(4, seed=1)
    out = model(x, lengths)
    assert out.logits.shape == (4, 2) and out.frames.shape == (4, 12, 3)
    assert out.lengths.tolist() == [-(-int(n) // 2) for n in lengths]
    assert out.energy.shape == (4, 12)
    torch.testing.assert_close(out.frames.exp().sum(-1), torch.ones(4, 12))
    junk = x.clone()
    for i in range(4):
        junk[i, :, :, int(lengths[i]):] = float("nan")
    out2 = model(junk, lengths)
    torch.testing.assert_close(out2.logits, out.logits, rtol=0, atol=0)
    targets = model.targets(out, y)
    torch.testing.assert_close(model.targets(out2, y)[0], targets[0])
    # One token per speech run between pauses (frames 6-7, 14-15, 22-23 -> output frames 3, 7, 11).
    expected_runs = [1 + (int(n) > 8) + (int(n) > 16) for n in lengths]
    assert targets[1].tolist() == expected_runs
    for i in range(4):
        assert targets[0][i, :expected_runs[i]].eq(int(y[i]) + 1).all()
    loss = model.loss(out, y)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_explicit_energy_overrides_the_input():
    model = CRNNCTC(2, **SMALL).eval()
    x, lengths, _ = band_data(2, seed=2)
    energy = torch.zeros(2, x.shape[-1])
    energy[:, 3] = 40.0                                          # one loud frame -> one run of 1 frame
    out = model(x, lengths, energy=energy)
    assert out.energy[:, 1].tolist() == [40.0, 40.0]
    assert model.targets(out, torch.tensor([0, 1]))[1].tolist() == [1, 1]
    with pytest.raises(SystemInputError, match="energy must be"):
        model(x, lengths, energy=energy[:, :5])


def test_ctc_training_reduces_the_loss_and_decodes_the_classes(fit):
    torch.manual_seed(3)
    model = CRNNCTC(2, dropout=0.0, **SMALL)
    x, lengths, y = band_data(10, seed=3)
    losses = fit(model, x, lengths, y, steps=60)
    assert losses[-1] < 0.3 * losses[0]
    model.eval()
    out = model(x, lengths)
    assert (model.predict(out) == y).float().mean() >= 0.9
    assert (out.logits.argmax(dim=1) == model.predict(out)).all()


def test_options_are_checked():
    with pytest.raises(SystemInputError, match="decode_method"):
        CRNNCTC(2, decode_method="beam", **SMALL)
    with pytest.raises(SystemInputError, match="drop_db"):
        CRNNCTC(2, drop_db=0.0, **SMALL)
    with pytest.raises(SystemInputError, match="method must be"):
        decode(spelled([A]), torch.tensor([1]), "beam")
