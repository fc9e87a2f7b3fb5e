"""serbench.features.deltas gives scipy.signal.savgol_filter's deltas to the bit, without importing scipy.signal.

melseg's cached rows and trained bundles were computed with ``savgol_filter`` (through librosa.feature.delta),
so the deltas must not move by one ulp: arrays are compared by value and by their raw bits.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.signal

from serbench.features import deltas, melseg

N_FRAMES = [1, 2, 3, 4, 5, 8, 9, 10, 11, 50, 301, 6003]
TABLE_WIDTHS = (3, 5, 7, 9)


def _assert_bits_equal(ours: np.ndarray, ref: np.ndarray) -> None:
    np.testing.assert_array_equal(ours, ref)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    # assert_array_equal takes -0.0 == 0.0; the raw bits do not
    np.testing.assert_array_equal(ours.view(np.uint64), ref.view(np.uint64))


def _reference(x: np.ndarray, width: int, order: int, mode: str) -> np.ndarray:
    return scipy.signal.savgol_filter(x, width, polyorder=order, deriv=order, delta=1.0, axis=-1, mode=mode)


def _log_mels(kind: str, n_frames: int) -> np.ndarray:
    """(60, n_frames) float64 arrays shaped like log-mel spectrograms."""
    rng = np.random.default_rng(n_frames)
    t = np.arange(n_frames, dtype=np.float64)
    band = np.arange(60, dtype=np.float64)[:, None]
    if kind == "random":
        return -8.0 + 3.0 * rng.standard_normal((60, n_frames))
    if kind == "floor":       # digital silence at ln(1e-10) with a few loud frames
        x = np.full((60, n_frames), np.log(1e-10))
        x[:, ::7] = rng.uniform(-5.0, 2.0, size=(60, x[:, ::7].shape[1]))
        return x
    if kind == "polynomial":  # what a degree-2 fit reproduces exactly, up to rounding
        return -3.0 + 0.01 * band * t - 1e-4 * (t - n_frames / 2.0) ** 2 + 0.5 * np.sin(band)
    if kind == "steps":       # flat runs with jumps, large and small magnitudes mixed
        return np.where((t // 4) % 2 == 0, -20.0, 1e3 * (band - 30.0) / 30.0) + 1e-9 * band
    if kind == "logmel":      # logmel3's own static channel of a chirp
        n = 400 + 160 * (n_frames - 1)
        sig = scipy.signal.chirp(np.arange(n) / 16000.0, f0=60.0, t1=max(n / 16000.0, 1e-3), f1=7000.0)
        return melseg.logmel3((0.3 * sig).astype(np.float32), 16000)[0].astype(np.float64)
    raise ValueError(kind)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("width", TABLE_WIDTHS)
def test_stored_taps_are_savgol_coeffs_to_the_bit(width, order):
    ours = deltas.savgol_coeffs(width, order)
    _assert_bits_equal(ours, scipy.signal.savgol_coeffs(width, order, deriv=order))
    assert not ours.flags.writeable


def test_the_table_covers_every_width_melseg_uses():
    used = {melseg.delta_width(n) for n in range(1, 200)}
    assert used == set(TABLE_WIDTHS)
    assert {(o, w) for o in (1, 2) for w in used} <= set(deltas._COEFFS)


@pytest.mark.parametrize("kind", ["random", "floor", "polynomial", "steps", "logmel"])
@pytest.mark.parametrize("n_frames", N_FRAMES)
def test_deltas_are_savgol_filters_to_the_bit(kind, n_frames):
    x = _log_mels(kind, n_frames)
    assert x.shape == (60, n_frames) and x.dtype == np.float64
    for order in (1, 2):
        # every tabled width in both modes melseg uses ('interp' needs width <= T), and melseg's own choice
        for width in TABLE_WIDTHS:
            modes = ("interp", "nearest") if width <= n_frames else ("nearest",)
            for mode in modes:
                _assert_bits_equal(deltas.savgol_delta(x, width, order, mode), _reference(x, width, order, mode))
        width, mode = melseg.delta_width(n_frames), ("interp" if n_frames >= 3 else "nearest")
        _assert_bits_equal(deltas.savgol_delta(x, width, order, mode), _reference(x, width, order, mode))


def test_input_is_left_unchanged_and_output_is_new():
    x = _log_mels("random", 50)
    before = x.copy()
    y = deltas.savgol_delta(x, 9, 2)
    assert np.array_equal(x, before) and not np.shares_memory(x, y)


@pytest.mark.parametrize("width, order, mode, dtype, shape", [
    (11, 1, "interp", np.float64, (60, 40)),     # a width outside the table
    (9, 3, "interp", np.float64, (60, 40)),      # an order outside the table
    (9, 1, "mirror", np.float64, (60, 40)),      # another mode
    (9, 2, "interp", np.float32, (60, 40)),      # another dtype
    (5, 1, "interp", np.float64, (40,)),         # another rank
])
def test_other_arguments_go_to_scipy_and_agree(width, order, mode, dtype, shape):
    x = np.random.default_rng(width).standard_normal(shape).astype(dtype)
    ours, ref = deltas.savgol_delta(x, width, order, mode), _reference(x, width, order, mode)
    np.testing.assert_array_equal(ours, ref)
    assert ours.dtype == ref.dtype


def test_interp_wider_than_the_signal_is_refused():
    with pytest.raises(ValueError, match="interp mode needs at least width=9 frames"):
        deltas.savgol_delta(np.zeros((60, 8)), 9, 1, "interp")


def test_logmel3_does_not_import_scipy_signal():
    code = textwrap.dedent("""
        import json, sys
        import numpy as np
        from serbench.features import melseg
        for n_frames in (1, 2, 5, 301):
            x = (0.1 * np.random.default_rng(n_frames).standard_normal(400 + 160 * (n_frames - 1))).astype(np.float32)
            assert melseg.logmel3(x, 16000).shape == (3, 60, n_frames)
        print(json.dumps(sorted(m for m in ("scipy.signal", "scipy.ndimage", "librosa") if m in sys.modules)))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    # scipy.ndimage loaded: the deltas really ran in that interpreter
    assert json.loads(res.stdout.strip().splitlines()[-1]) == ["scipy.ndimage"]
