"""What ``serbench predict`` checks before it imports anything heavy: windows and the output (format, place).

Pure Python (no numpy, pandas, torch or scikit-learn), so a mistyped option is refused at once;
:mod:`serbench.bundles.inference` re-exports every name here.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from serbench.bundles.format import BundleError

#: Shortest window accepted (seconds): the functionals need enough 10 ms frames for their statistics
#: (regression coefficients, percentiles, deltas) and the log-mel sets a few 25 ms frames per segment.
MIN_WINDOW_S = 0.25
#: Shortest step between windows (seconds): one frame of the feature sets; finer steps repeat the same frames.
MIN_HOP_S = 0.01

#: File suffixes taken from a folder (what libsndfile decodes); other files there are listed as passed over.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".snd",
                  ".caf", ".w64", ".rf64")


class PredictError(BundleError):
    """Inputs or options that cannot be predicted (no inputs, bad windows, speakers unknown)."""



def check_window(window: float | None, hop: float | None) -> tuple[float | None, float | None]:
    if window is None:
        if hop is not None:
            raise PredictError("--hop needs --window")
        return None, None
    window = float(window)
    hop = window if hop is None else float(hop)
    if not math.isfinite(window) or window < MIN_WINDOW_S:
        raise PredictError(f"--window {window:g}: give a length in seconds >= {MIN_WINDOW_S} (the feature sets "
                           "need that much audio per window)")
    if not math.isfinite(hop) or hop < MIN_HOP_S or hop > window:
        raise PredictError(f"--hop {hop:g}: give a step in seconds from {MIN_HOP_S} (one feature frame) to the "
                           f"window length {window:g} (longer steps would leave audio out)")
    return window, hop



FORMATS = ("csv", "parquet", "json")
#: Output file suffixes and the format each names (the format always follows the suffix).
OUTPUT_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}


def output_format(out: str | Path, fmt: str | None = None) -> str:
    """The format ``out``'s suffix names; ``fmt``, when given, must agree with it.

    An unknown or missing suffix is refused: a CSV written under ``.xlsx`` or no suffix at
    all misleads whoever opens it.
    """
    suffix = Path(out).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        got = f"suffix {Path(out).suffix!r}" if suffix else "no suffix"
        raise PredictError(f"--out {out}: {got}; the format follows the suffix, use one of "
                           f"{', '.join(OUTPUT_SUFFIXES)}")
    named = OUTPUT_SUFFIXES[suffix]
    if fmt and fmt != named:
        raise PredictError(f"--format {fmt}: --out {out} names {named} by its suffix; leave out --format or "
                           f"give a .{fmt} file name")
    return named


def folder_files(folder: Path, passed_over: list[str]) -> list[Path]:
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_dir() or p.name.startswith("."):
            continue
        if p.suffix.lower() in AUDIO_SUFFIXES:
            out.append(p)
        else:
            passed_over.append(str(p))
    return out


def check_output(out: str | Path, fmt: str | None = None, *, inputs: Any = (), model_dir: str | Path | None = None,
                 overwrite: bool = False) -> tuple[Path, str]:
    """``(path, format)`` of the table to write, checked before any work (see :func:`serbench.io.check_output_file`).

    Refused: an unknown suffix, one of the ``inputs`` (files; folders are expanded to their
    audio files), a path inside the model bundle ``model_dir``, and an existing file unless
    ``overwrite``.
    """
    from serbench.io import OutputError, check_output_file

    fmt = output_format(out, fmt)
    files: list[Path] = []
    for item in inputs if isinstance(inputs, (list, tuple)) else [inputs]:
        if isinstance(item, (str, Path)):
            p = Path(item).expanduser()
            files.extend(folder_files(p, []) if p.is_dir() else [p])
    try:
        path = check_output_file(out, inputs=files, inside_inputs=[model_dir] if model_dir is not None else [],
                                 overwrite=overwrite)
    except OutputError as exc:
        raise PredictError(str(exc)) from None
    return path, fmt


__all__ = ["AUDIO_SUFFIXES", "check_output", "PredictError", "check_window", "output_format", "FORMATS",
           "OUTPUT_SUFFIXES", "MIN_WINDOW_S", "MIN_HOP_S"]
