import numpy as np
import pytest
import soundfile as sf

from serbench.audio import TARGET_SR, audio_info, file_hash, load_audio
from serbench.errors import AudioError


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000])
def test_any_rate_becomes_16k(tmp_path, tone, sr):
    path = tone(tmp_path / "a.wav", seconds=0.5, sr=sr)
    audio = load_audio(path)
    assert audio.sample_rate == TARGET_SR and audio.orig_sample_rate == sr
    assert audio.signal.dtype == np.float32 and audio.signal.ndim == 1
    assert abs(len(audio.signal) - 0.5 * TARGET_SR) <= 2
    # a 220 Hz tone stays a 220 Hz tone after resampling
    spectrum = np.abs(np.fft.rfft(audio.signal))
    assert abs(np.argmax(spectrum) * TARGET_SR / len(audio.signal) - 220) < 5


def test_stereo_is_averaged_to_mono(tmp_path):
    path = tmp_path / "stereo.wav"
    left = np.full(1600, 0.2)
    right = np.full(1600, 0.6)
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    audio = load_audio(path)
    assert audio.orig_channels == 2
    np.testing.assert_allclose(audio.signal, 0.4, atol=1e-6)


def test_unchanged_16k_pcm_is_bit_exact(tmp_path, tone):
    path = tone(tmp_path / "a.wav", sr=16000)
    ref, _ = sf.read(path, dtype="float32")
    np.testing.assert_array_equal(load_audio(path).signal, ref)


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk", "unreadable"),
    (b"this is not audio at all" * 10, "unreadable"),
])
def test_bad_files_name_the_file_and_reason(tmp_path, content, reason):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=reason) as exc:
        load_audio(path)
    assert str(path) in str(exc.value)


def test_zero_length_audio(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros((0,)), 16000)
    with pytest.raises(AudioError, match="zero length") as exc:
        audio_info(path)
    assert "zero.wav" in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")


def test_nan_samples_rejected(tmp_path):
    path = tmp_path / "nan.wav"
    x = np.zeros(1600, dtype=np.float32)
    x[10] = np.nan
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(path)


def test_silence_loads(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(1600), 16000)
    assert float(np.abs(load_audio(path).signal).max()) == 0.0


def test_file_hash_tracks_content(tmp_path, tone):
    a = tone(tmp_path / "a.wav", freq=220)
    b = tone(tmp_path / "b.wav", freq=220)
    c = tone(tmp_path / "c.wav", freq=330)
    assert file_hash(a) == file_hash(b) != file_hash(c)
