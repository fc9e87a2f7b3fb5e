"""melseg: the 3-channel log-mel, segment bounds, segment images and the too-short policy."""
from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from serbench.features import melseg
from serbench.features.functionals import FeatureInputError

SR = 16000


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _ramp_mel(n_frames: int, n_mels: int = 60) -> np.ndarray:
    """A fake (3, n_mels, T) log-mel whose value is the frame index: shows where frames land."""
    return np.broadcast_to(np.arange(n_frames, dtype=np.float32), (3, n_mels, n_frames)).copy()


@pytest.mark.parametrize("n, frames", [(400, 1), (560, 2), (720, 3), (1680, 9), (16000, 98)])
def test_logmel3_shape(n, frames):
    out = melseg.logmel3(_noise(n), SR)
    assert out.shape == (3, 60, frames) and out.dtype == np.float32 and np.all(np.isfinite(out))


def test_logmel3_matches_librosa():
    x = _noise(8000, seed=1)
    mel = librosa.feature.melspectrogram(y=x.astype(np.float64), sr=SR, n_fft=400, hop_length=160,
                                         win_length=400, window="hamming", center=False, n_mels=60)
    static = np.log(np.maximum(mel, 1e-10))
    out = melseg.logmel3(x, SR)
    np.testing.assert_allclose(out[0], static, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out[1], librosa.feature.delta(static, width=9, order=1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out[2], librosa.feature.delta(static, width=9, order=2), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("chunk", [1, 7, 50])
def test_long_utterances_are_computed_in_chunks_with_the_same_values(monkeypatch, chunk):
    x = _noise(16000, seed=3)  # 98 frames: several chunks of `chunk` frames, the last one partial
    whole = melseg.logmel3(x, SR)
    monkeypatch.setattr(melseg, "CHUNK_FRAMES", chunk)
    np.testing.assert_array_equal(melseg.logmel3(x, SR), whole)


def test_chunks_bound_the_intermediate_arrays(monkeypatch):
    sizes = []
    original = melseg.power_spectrogram

    def spy(signal, *args):
        sizes.append(signal.size)
        return original(signal, *args)

    monkeypatch.setattr(melseg, "power_spectrogram", spy)
    monkeypatch.setattr(melseg, "CHUNK_FRAMES", 20)
    assert melseg.logmel3(_noise(16000), SR).shape == (3, 60, 98)
    assert sizes == [19 * 160 + 400] * 4 + [17 * 160 + 400]  # frames 0-19, 20-39, 40-59, 60-79, 80-97


def test_logmel3_silence_uses_the_floor():
    out = melseg.logmel3(np.zeros(4000, dtype=np.float32), SR)
    np.testing.assert_allclose(out[0], np.log(1e-10), rtol=1e-6)
    np.testing.assert_allclose(out[1:], 0.0, atol=1e-12)


@pytest.mark.parametrize("frames, width", [(1, 3), (2, 3), (3, 3), (4, 3), (5, 5), (8, 7), (9, 9), (50, 9)])
def test_short_utterances_get_a_fitting_delta_width(frames, width):
    assert melseg.delta_width(frames) == width
    out = melseg.logmel3(_noise(400 + 160 * (frames - 1), seed=frames), SR)
    assert out.shape == (3, 60, frames) and np.all(np.isfinite(out))
    if frames == 1:
        np.testing.assert_allclose(out[1:], 0.0, atol=1e-12)  # no change over a single frame


def test_logmel3_rejects_signal_shorter_than_a_window():
    with pytest.raises(FeatureInputError, match="shorter than one"):
        melseg.logmel3(_noise(399), SR)


@pytest.mark.parametrize("n_frames, n_segments", [(1, 1), (5, 5), (10, 3), (98, 4), (101, 5), (17, 2)])
def test_segment_bounds_tile_exactly(n_frames, n_segments):
    b = melseg.segment_bounds(n_frames, n_segments)
    assert b.shape == (n_segments + 1,) and b[0] == 0 and b[-1] == n_frames
    frames = np.concatenate([np.arange(b[k], b[k + 1]) for k in range(n_segments)])
    np.testing.assert_array_equal(frames, np.arange(n_frames))  # no gap, no overlap, in order
    widths = np.diff(b)
    assert widths.min() >= 1 and widths.max() - widths.min() <= 1


@pytest.mark.parametrize("args", [(3, 5), (0, 1), (10, 0), (10, 1.5)])
def test_segment_bounds_rejects_impossible_splits(args):
    with pytest.raises(FeatureInputError):
        melseg.segment_bounds(*args)


@pytest.mark.parametrize("n_segments", [1, 2, 3, 4, 5])
def test_segment_images_shape_and_order(n_segments):
    lengths = [98, 40, 230, 7]
    # utterance i is the constant i + 0.5: a bilinear resize of a constant is that constant
    # (up to float32 rounding of the interpolation weights)
    mels = [np.full((3, 60, t), i + 0.5, dtype=np.float32) for i, t in enumerate(lengths)]
    out = melseg.segment_images(mels, n_segments)
    assert out.shape == (len(lengths) * n_segments, 3, 227, 227) and out.dtype == torch.float32
    expected = torch.repeat_interleave(torch.arange(len(lengths)) + 0.5, n_segments)
    for row, value in enumerate(expected):
        torch.testing.assert_close(out[row], torch.full_like(out[row], value), rtol=0, atol=1e-6)


def test_segments_in_time_order_and_resized_bilinearly():
    mel = _ramp_mel(101)
    mel[1] *= -1  # channels must stay apart
    out = melseg.segment_images([mel, _ramp_mel(50)], 3, size=32)
    bounds = melseg.segment_bounds(101, 3)
    for k in range(3):
        seg = torch.from_numpy(mel[None, :, :, bounds[k]:bounds[k + 1]])
        ref = F.interpolate(seg, size=(32, 32), mode="bilinear", align_corners=False)[0]
        torch.testing.assert_close(out[k], ref)
        assert out[k, 0].min() >= bounds[k] and out[k, 0].max() <= bounds[k + 1] - 1
        assert torch.all(out[k, 1] == -out[k, 0])


def test_too_short_utterance_is_stretched_so_every_segment_has_its_own_frames():
    n_segments = 3
    idx = melseg.stretch_frames(5, n_segments)
    assert len(idx) == n_segments * melseg.MIN_SEGMENT_FRAMES
    np.testing.assert_array_equal(np.unique(idx), np.arange(5))  # every frame used, none invented
    assert np.all(np.diff(idx) >= 0)
    assert melseg.stretch_frames(n_segments * melseg.MIN_SEGMENT_FRAMES, n_segments) is None
    out = melseg.segment_images([_ramp_mel(5)], n_segments, size=16)
    lo = [float(out[k].min()) for k in range(n_segments)]
    hi = [float(out[k].max()) for k in range(n_segments)]
    assert lo[0] == 0 and hi[-1] == 4  # first and last frames present
    assert all(lo[k] <= lo[k + 1] and hi[k] <= hi[k + 1] for k in range(n_segments - 1))
    assert hi[0] <= 2 and lo[-1] >= 2  # segment 0 is the start, segment 2 the end


def test_single_frame_utterance_gives_n_copies():
    mel = np.random.default_rng(0).standard_normal((3, 60, 1)).astype(np.float32)
    out = melseg.segment_images([mel], 5, size=20)
    assert out.shape == (5, 3, 20, 20)
    for k in range(1, 5):
        torch.testing.assert_close(out[k], out[0])


def test_accepts_tensors_float64_and_explicit_device():
    mel64 = np.random.default_rng(1).standard_normal((3, 60, 40))
    a = melseg.segment_images([mel64], 2, size=24, device="cpu")
    b = melseg.segment_images([torch.from_numpy(mel64)], 2, size=24)
    assert a.device.type == "cpu" and a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    assert melseg.segment_images([], 3, size=8).shape == (0, 3, 8, 8)


def test_accepts_read_only_arrays_without_warning(recwarn):
    mel = np.broadcast_to(np.float32(2.0), (3, 60, 40))  # read-only, like arrays from a cache
    out = melseg.segment_images([mel], 2, size=8)
    torch.testing.assert_close(out, torch.full((2, 3, 8, 8), 2.0))
    assert not [w for w in recwarn if "not writable" in str(w.message)]


@pytest.mark.parametrize("bad", [np.zeros((60, 40)), np.zeros((2, 60, 40)), np.zeros((3, 60, 0))])
def test_segment_images_rejects_bad_arrays(bad):
    with pytest.raises(FeatureInputError):
        melseg.segment_images([bad], 2)


def test_end_to_end_from_audio():
    mels = [melseg.logmel3(_noise(n, seed=n), SR) for n in (16000, 5000)]
    out = melseg.segment_images(mels, 4, size=227)
    assert out.shape == (8, 3, 227, 227) and torch.isfinite(out).all()
