"""melseg: 3-channel log-mel spectrograms and their segment images for the CNN (the paper).

Jiang et al.: "60 Mel-filter banks ... the whole log Mel-spectrogram with 25 ms Hamming
window and 10 ms overlapping [hop] ... with delta and delta-delta ... divide it into N
(1 <= N <= 5) speech emotion segments. Then, resize the speech emotion segment into
227 x 227 x 3 by bilinear interpolation".

:func:`logmel3` computes the full-utterance array that the feature cache stores;
:func:`segment_images` splits and resizes on the fly (on the GPU when given one).

Log-mel: power mel spectrogram (``n_fft`` = window = 25 ms, i.e. 400 points at 16 kHz,
hop 10 ms, Hamming, 60 Slaney mel bands from 0 Hz to Nyquist, frames without centre
padding as the other feature sets: frame ``t`` covers samples ``[t * hop, t * hop + win)``),
then ``ln(max(S, 1e-10))``: a fixed absolute floor (-23.03) so digital silence is finite
and a frame's value does not depend on the rest of the utterance. The set was defined with
``librosa.feature.melspectrogram``; :mod:`serbench.features.spectrum` computes the same
values to the bit with numpy alone (librosa and numba cost ``serbench predict`` over a
second of start-up), and the filterbank stays float32 as librosa's default is.

Deltas: the Savitzky-Golay regression of ``librosa.feature.delta`` (``scipy.signal.savgol_filter``
with ``polyorder = deriv = order``), orders 1 and 2, width 9 (+-4 frames), its 'interp' edge
mode. Utterances with fewer than 9 frames use the largest odd width that fits (``T`` or
``T - 1``); with fewer than 3 frames no regression window fits and the width-3 filter runs
in 'nearest' mode (edge frames repeated), which gives 0 for a single frame.
:func:`serbench.features.deltas.savgol_delta` computes them with the same values without
importing scipy.signal.

Memory: frames are independent (no centre padding), so the mel spectrogram of a long
utterance is computed :data:`CHUNK_FRAMES` frames at a time and the full-resolution
intermediates (the float64 power spectrum above all) never exist for the whole signal. An
utterance of up to one chunk (60 s) takes exactly the one-call path; longer ones give
the same values within float32 rounding. Peak memory then grows with the output, about
0.3 MB per second of audio (a 10-minute file: ~180 MB in :func:`logmel3`).
"""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Sequence

import numpy as np

from serbench.features.deltas import savgol_delta
from serbench.features.functionals import FeatureInputError, check_signal
from serbench.features.mfcc import frame_sizes
from serbench.features.spectrum import mel_filterbank, power_spectrogram

if TYPE_CHECKING:  # torch is imported where it is used: keying this set does not need it
    import torch

VERSION = "1"

PARAMS: dict = {
    "n_mels": 60,
    "win_ms": 25.0,
    "hop_ms": 10.0,
    "window": "hamming",
    "center": False,
    "power": 2.0,
    "fmin": 0.0,
    "fmax": None,  # Nyquist
    "mel_scale": "slaney",
    "log": "ln(max(S, 1e-10))",
    "delta_width": 9,
    "delta_short": "largest odd width <= T, 'nearest' mode below 3 frames",
    "dtype": "float32",
}

#: Fewest frames each segment gets. 16 frames = 25 ms + 15 x 10 ms = 175 ms, the order of
#: the ~160 ms that the paper argues is the shortest useful segment. An utterance with
#: ``T < n_segments * MIN_SEGMENT_FRAMES`` frames is stretched in time by repeating frames
#: evenly (nearest-neighbour, frame ``floor(i * T / L)`` for ``i < L = n_segments *
#: MIN_SEGMENT_FRAMES``) before it is split, so every segment holds real frames from its own
#: stretch of the utterance in time order -- no padding, no empty or borrowed segments.
MIN_SEGMENT_FRAMES = 16

_LOG_FLOOR = 1e-10

#: Frames of mel spectrogram computed per step for long utterances (6000 x 10 ms = 60 s).
CHUNK_FRAMES = 6000


def delta_width(n_frames: int) -> int:
    """Regression width used for an utterance of ``n_frames`` frames (see module docstring)."""
    width = min(PARAMS["delta_width"], n_frames if n_frames % 2 else n_frames - 1)
    return max(width, 3)


def logmel3(signal: np.ndarray, sr: int) -> np.ndarray:
    """Log-mel static, delta and delta-delta of an utterance.

    Parameters
    ----------
    signal : ndarray, shape (n,)
        Mono audio (16 kHz normally); at least one window (25 ms) long.
    sr : int

    Returns
    -------
    ndarray, shape (3, 60, T), float32; ``T = 1 + (n - win) // hop``.
    """
    x = check_signal(signal, sr)
    win, hop = frame_sizes(sr, PARAMS["win_ms"], PARAMS["hop_ms"])
    if x.size < win:
        raise FeatureInputError(
            f"signal has {x.size} samples, shorter than one {PARAMS['win_ms']} ms window ({win} samples)")
    n_frames = 1 + (x.size - win) // hop
    # float32 filters: librosa's default dtype, which defined this set's values.
    fb = mel_filterbank(sr, win, PARAMS["n_mels"], PARAMS["fmin"], sr / 2.0, dtype=np.float32)
    static = np.empty((PARAMS["n_mels"], n_frames), dtype=np.float64)
    for t0 in range(0, n_frames, CHUNK_FRAMES):
        t1 = min(n_frames, t0 + CHUNK_FRAMES)
        # Frames t0 .. t1-1 read samples [t0 * hop, (t1 - 1) * hop + win): exactly those of the whole call.
        power = power_spectrogram(x[t0 * hop:(t1 - 1) * hop + win], win, hop, PARAMS["window"])
        # librosa.feature.melspectrogram's own contraction (a float64 BLAS product), so the sums round alike.
        mel = np.einsum("ft,mf->mt", power, fb, optimize=True)
        static[:, t0:t1] = np.log(np.maximum(mel, _LOG_FLOOR))
        del power, mel
    width = delta_width(n_frames)
    mode = "interp" if n_frames >= 3 else "nearest"
    out = np.empty((3, PARAMS["n_mels"], n_frames), dtype=np.float32)
    out[0] = static
    for order in (1, 2):
        out[order] = savgol_delta(static, width, order, mode)
    return out


def segment_bounds(n_frames: int, n_segments: int) -> np.ndarray:
    """Frame boundaries of ``n_segments`` contiguous, near-equal segments.

    Segment ``k`` is ``[bounds[k], bounds[k + 1])``; ``bounds[k] = round(k * n_frames /
    n_segments)`` (halves up, exact integer arithmetic), so the segments tile
    ``[0, n_frames)`` with no gap or overlap and widths differ by at most one frame.

    Returns
    -------
    ndarray, shape (n_segments + 1,), int64, ``bounds[0] = 0``, ``bounds[-1] = n_frames``.
    """
    n_frames, n_segments = _positive_int(n_frames, "n_frames"), _positive_int(n_segments, "n_segments")
    if n_frames < n_segments:
        raise FeatureInputError(
            f"cannot split {n_frames} frames into {n_segments} non-empty segments; "
            "segment_images stretches short utterances first")
    k = np.arange(n_segments + 1, dtype=np.int64)
    return (2 * k * n_frames + n_segments) // (2 * n_segments)


def stretch_frames(n_frames: int, n_segments: int) -> np.ndarray | None:
    """Frame indices that stretch a too-short utterance to ``n_segments * MIN_SEGMENT_FRAMES``.

    Returns ``None`` when the utterance is long enough (no stretching), else an int64
    array of shape (n_segments * MIN_SEGMENT_FRAMES,), non-decreasing, covering every frame.
    """
    target = n_segments * MIN_SEGMENT_FRAMES
    if n_frames >= target:
        return None
    return (np.arange(target, dtype=np.int64) * n_frames) // target


def segment_images(mels: Sequence[np.ndarray | torch.Tensor], n_segments: int, size: int = 227,
                   device: str | torch.device | None = None, context: int = 0) -> torch.Tensor:
    """Split each utterance into ``n_segments`` time segments and resize each to ``size x size``.

    Parameters
    ----------
    mels : sequence of arrays or tensors, each of shape (3, n_mels, T_i)
        Outputs of :func:`logmel3` (any float dtype; any number of mel bands).
    n_segments : int >= 1
    size : int >= 1
        Output height and width (227 for AlexNet).
    device : torch device, optional
        Where to segment and resize; default: the device of the first tensor in
        ``mels``, else CPU.

    Returns
    -------
    Tensor, shape (len(mels) * n_segments, 3, size, size), float32 on ``device``.
        Utterance-major: rows ``i * n_segments .. (i + 1) * n_segments - 1`` are utterance
        ``i``'s segments in time order. Values are raw log-mel values, bilinearly resized
        (``align_corners=False``, no antialiasing), not normalised. Utterances shorter than
        ``n_segments * MIN_SEGMENT_FRAMES`` frames are stretched first (see
        :data:`MIN_SEGMENT_FRAMES`).
    context : int >= 0
        Pixels of real neighbouring frames added on each side of every segment, at the
        segment's own time scale: the result is ``(U*N, 3, size, size + 2 * context)``, and
        its centre ``size`` columns are the segment (so a random ``size``-wide crop is the
        segment shifted in time). Time is then interpolated linearly between frames at
        the exact positions ``align_corners=False`` gives the segment's pixels, continued
        past its edges into the neighbouring frames; positions beyond the utterance take
        its first or last frame.
    """
    import torch
    import torch.nn.functional as F

    n_segments = _positive_int(n_segments, "n_segments")
    size = _positive_int(size, "size")
    if isinstance(context, bool) or int(context) != context or context < 0:
        raise FeatureInputError(f"context must be a non-negative integer, got {context!r}")
    if device is None:
        device = next((m.device for m in mels if isinstance(m, torch.Tensor)), torch.device("cpu"))
    device = torch.device(device)
    if context:
        return _context_images(mels, n_segments, size, int(context), device)
    out = torch.empty((len(mels) * n_segments, 3, size, size), dtype=torch.float32, device=device)
    # Segments of equal (n_mels, width) share one interpolate call: a batched resize is far
    # cheaper than thousands of small ones, above all on a GPU.
    groups: dict[tuple[int, int], list[tuple[int, torch.Tensor]]] = defaultdict(list)
    for i, mel in enumerate(mels):
        t = _utterance(mel, i, n_segments, device)
        bounds = segment_bounds(t.shape[2], n_segments)
        for k in range(n_segments):
            seg = t[:, :, int(bounds[k]):int(bounds[k + 1])]
            groups[(seg.shape[1], seg.shape[2])].append((i * n_segments + k, seg))
    for members in groups.values():
        rows = torch.as_tensor([row for row, _ in members], device=device)
        batch = torch.stack([seg for _, seg in members])
        out[rows] = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False)
    return out


def _utterance(mel, i: int, n_segments: int, device) -> "torch.Tensor":
    """Utterance ``i`` as a float32 ``(3, n_mels, T)`` tensor on ``device``, stretched when too short to split."""
    import torch

    if isinstance(mel, torch.Tensor):
        t = mel.to(device=device, dtype=torch.float32)
    else:  # torch.tensor copies: cached arrays may be read-only, which as_tensor warns about
        t = torch.tensor(np.asarray(mel, dtype=np.float32), device=device)
    if t.ndim != 3 or t.shape[0] != 3 or t.shape[1] == 0 or t.shape[2] == 0:
        raise FeatureInputError(f"utterance {i}: expected a (3, n_mels, T > 0) log-mel array, got {tuple(t.shape)}")
    stretch = stretch_frames(t.shape[2], n_segments)
    if stretch is not None:
        t = t[:, :, torch.as_tensor(stretch, device=device)]
    return t


def _context_images(mels, n_segments: int, size: int, context: int, device) -> "torch.Tensor":
    """:func:`segment_images` with ``context`` pixels of neighbouring frames on each side.

    Bilinear resizing is separable: the mel axis is resized once per utterance (the time
    axis at scale 1 is left exactly as it is), then each output column is the linear
    interpolation between the two frames around its source position
    ``a + (j + 0.5) * w / size - 0.5`` for segment ``[a, a + w)`` and column ``j`` in
    ``[-context, size + context)``, clamped to the utterance.
    """
    import torch
    import torch.nn.functional as F

    width = size + 2 * context
    out = torch.empty((len(mels) * n_segments, 3, size, width), dtype=torch.float32, device=device)
    cols = torch.arange(-context, size + context, dtype=torch.float64, device=device) + 0.5
    for i, mel in enumerate(mels):
        t = _utterance(mel, i, n_segments, device)
        n_frames = t.shape[2]
        t = F.interpolate(t[None], size=(size, n_frames), mode="bilinear", align_corners=False)[0]
        bounds = torch.as_tensor(segment_bounds(n_frames, n_segments), dtype=torch.float64, device=device)
        starts, widths = bounds[:-1, None], (bounds[1:] - bounds[:-1])[:, None]
        pos = (starts + cols[None, :] * widths / size - 0.5).clamp(0, n_frames - 1)      # (N, width)
        lo = pos.floor().long()
        hi = (lo + 1).clamp(max=n_frames - 1)
        frac = (pos - lo.double()).float()
        segs = t[:, :, lo] * (1 - frac) + t[:, :, hi] * frac                              # (3, size, N, width)
        out[i * n_segments:(i + 1) * n_segments] = segs.permute(2, 0, 1, 3)
    return out


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise FeatureInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
