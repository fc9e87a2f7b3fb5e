"""A small ctypes binding to the eSpeak NG C library shipped by ``espeakng-loader``.

Only what the demo corpus needs: synchronous synthesis of one UTF-8 text with a
voice (an eSpeak NG voice name, or a voice file) and the four prosody parameters
(rate, volume, pitch, pitch range), returned as 16-bit samples. No subprocess,
no system package, no root.

The library keeps global state (one current voice, one parameter set, one
callback), so every call here runs under a module-level lock and the library is
initialized once per process, however often :func:`synthesize` is called.

Reproducibility: eSpeak NG's generator keeps a few counters across calls, so the
same call can differ by a few sample values depending on what was spoken before.
Two voice settings drive that: ``flutter`` (a pitch wobble read from a table at a
position that never resets) and ``roughness`` below 8 (an amplitude modulation
every n-th glottal cycle, counted since the process started); a ``volume`` above
100 adds a third (a gain control that recovers slowly). A voice file with
``flutter 0`` and ``roughness 8``, a volume of at most 100 and a fixed ``seed``
(for the breath noise) give byte-identical output whatever came before; the demo
corpus uses such settings. The eSpeak NG variants (``en-us+m1``, ...) set flutter
and roughness, so output made with them can differ slightly from call to call.

>>> samples, sr = synthesize("Hello there.", "en-us+f2")  # doctest: +SKIP
>>> samples.dtype, sr  # doctest: +SKIP
(dtype('int16'), 22050)
"""
from __future__ import annotations

import atexit
import ctypes
import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass

import numpy as np

from serbench.errors import SerbenchError

# Values from espeak-ng's public header speak_lib.h (API revision 12).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # without it the library calls exit() when its data folder is missing
_ESPEAK_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EE_OK = 0
_EE_NOT_FOUND = 2
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_PARAM_WORDGAP = 7
# eSpeak NG copies a voice file's path into a fixed buffer: longer paths are cut and not found.
_MAX_VOICE_PATH = 59
_ERRORS = {-1: "internal error", 1: "buffer full", 2: "not found"}

#: Accepted parameter ranges (the header's documented limits).
RATE_RANGE = (80, 450)      # words per minute, 175 is normal
VOLUME_RANGE = (0, 200)     # 100 is normal; above it eSpeak compresses the amplitude
PITCH_RANGE = (0, 100)      # base pitch, 50 is the voice's own
RANGE_RANGE = (0, 100)      # pitch range: 0 monotone, 50 normal


class EspeakError(SerbenchError):
    """eSpeak NG cannot be loaded or refuses a voice, a parameter or a text."""


class _EspeakEvent(ctypes.Structure):
    # Only passed through as a pointer; the layout is declared for completeness of the callback type.
    class _Id(ctypes.Union):
        _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


class _EspeakVoice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),  # 0 none, 1 male, 2 female
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_EspeakEvent))


@dataclass(frozen=True)
class EngineInfo:
    """What was loaded: the library file, its data folder, its version and output rate."""

    library: str
    data_path: str
    version: str
    sample_rate: int


class _Engine:
    """The loaded library, its output rate and the buffer the callback fills."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # a dependency in setup.cfg, but say what to do if it is missing
            raise EspeakError("the demo corpus needs the 'espeakng-loader' package: "
                              "pip install espeakng-loader") from exc
        self.library = str(espeakng_loader.get_library_path())
        self.data_path = str(espeakng_loader.get_data_path())
        try:
            lib = ctypes.CDLL(self.library)
        except OSError as exc:
            raise EspeakError(f"{self.library}: cannot load eSpeak NG ({exc}); "
                              "reinstall the 'espeakng-loader' package") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByFile.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByFile.restype = ctypes.c_int
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_EspeakVoice)]
        lib.espeak_SetVoiceByProperties.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint),
                                     ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        # espeak_ng_SetRandSeed seeds the breath-noise generator; older builds lack it.
        self.set_seed = getattr(lib, "espeak_ng_SetRandSeed", None)
        if self.set_seed is not None:
            self.set_seed.argtypes = [ctypes.c_long]
            self.set_seed.restype = None
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_Info.restype = ctypes.c_char_p
        # The data path is given explicitly so a system-wide espeak-ng install is never picked up.
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(),
                                     _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise EspeakError(f"{self.data_path}: eSpeak NG failed to initialize with this data folder; "
                              "reinstall the 'espeakng-loader' package")
        self.sample_rate = int(rate)
        self.version = (lib.espeak_Info(None) or b"").decode(errors="replace")
        self.lib = lib
        self._chunks: list[np.ndarray] = []
        # Keep a reference: ctypes frees the trampoline when the Python object dies.
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes.POINTER(ctypes.c_short), n: int, events: object) -> int:
        # A NULL wav marks the end of synthesis; n == 0 does not.
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def check(self, code: int, what: str) -> None:
        if code != _EE_OK:
            raise EspeakError(f"eSpeak NG: {what} failed ({_ERRORS.get(code, code)})")


_lock = threading.RLock()
_engine: _Engine | None = None
_voice_dir: str | None = None


def _get_engine() -> _Engine:
    global _engine
    with _lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


def engine_info() -> EngineInfo:
    """Load and initialize eSpeak NG if needed; report its library, data folder, version and rate."""
    with _lock:
        e = _get_engine()
        return EngineInfo(library=e.library, data_path=e.data_path, version=e.version, sample_rate=e.sample_rate)


def _check_range(name: str, value: int, bounds: tuple[int, int]) -> int:
    value = int(round(value))
    if not bounds[0] <= value <= bounds[1]:
        raise EspeakError(f"eSpeak NG {name}={value} is out of range; use {bounds[0]}..{bounds[1]}")
    return value


def _short_voice_path(path: str) -> str:
    """A path to the voice file that eSpeak NG can open: it truncates longer names.

    Long paths are replaced by a copy in a private folder with a short name (created
    once per process, removed at exit), named by the content's hash.
    """
    global _voice_dir
    if len(os.fsencode(path)) <= _MAX_VOICE_PATH:
        return path
    with open(path, "rb") as f:
        content = f.read()
    if _voice_dir is None:
        for base in (tempfile.gettempdir(), "/tmp"):
            if os.path.isdir(base) and len(os.fsencode(base)) <= _MAX_VOICE_PATH - 32:
                _voice_dir = tempfile.mkdtemp(prefix="sbv", dir=base)
                atexit.register(shutil.rmtree, _voice_dir, True)
                break
        else:
            raise EspeakError(f"{path}: eSpeak NG cannot open voice files with paths over {_MAX_VOICE_PATH} bytes "
                              "and no short temporary folder was found; set TMPDIR to a short path")
    short = os.path.join(_voice_dir, hashlib.sha256(content).hexdigest()[:16])
    if not os.path.isfile(short):
        with open(short, "wb") as f:
            f.write(content)
    return short


def _select_voice(engine: _Engine, voice: str | os.PathLike, gender: str | None) -> None:
    if isinstance(voice, os.PathLike):
        path = os.fspath(voice)
        if not os.path.isfile(path):
            raise EspeakError(f"{path}: eSpeak NG voice file does not exist")
        code = engine.lib.espeak_SetVoiceByFile(_short_voice_path(path).encode())
        engine.check(code, f"loading voice file {path} (is it an eSpeak NG voice file?)")
        return
    code = engine.lib.espeak_SetVoiceByName(voice.encode())
    if code == _EE_NOT_FOUND and gender in ("m", "f"):
        # Fall back to any voice of that language and gender (the variant part is dropped).
        spec = _EspeakVoice(name=None, languages=voice.split("+")[0].encode(), identifier=None,
                            gender=1 if gender == "m" else 2, age=0, variant=0)
        code = engine.lib.espeak_SetVoiceByProperties(ctypes.byref(spec))
    if code == _EE_NOT_FOUND:
        raise EspeakError(f"eSpeak NG has no voice {voice!r}; use a name such as 'en-us', 'en-us+m3' or 'en+f2'")
    engine.check(code, f"selecting voice {voice!r}")


def synthesize(
    text: str,
    voice: str | os.PathLike = "en-us",
    *,
    rate: float = 175,
    volume: float = 100,
    pitch: float = 50,
    pitch_range: float = 50,
    word_gap: int = 0,
    seed: int | None = None,
    gender: str | None = None,
) -> tuple[np.ndarray, int]:
    """Speak ``text`` with ``voice``; return ``(samples, sample_rate)``.

    ``voice`` is an eSpeak NG voice name with an optional variant (``"en-us+f2"``)
    or a path (:class:`os.PathLike`) to an eSpeak NG voice file. If the name is
    unknown and ``gender`` ('m' or 'f') is given, a voice of the name's language
    and that gender is chosen by properties instead.
    ``rate`` is in words per minute (80..450), ``volume`` 0..200 (100 normal),
    ``pitch`` and ``pitch_range`` 0..100 (50: the voice's own), ``word_gap`` the
    pause between words in units of 10 ms, ``seed`` seeds the breath noise.

    ``samples`` is int16 of shape (n,) at the engine's rate (22050 Hz for eSpeak NG).
    Raises :class:`EspeakError` on any failure, including a text that gives no audio.
    """
    if not text.strip():
        raise EspeakError("eSpeak NG: nothing to say (empty text)")
    params = (
        (_PARAM_RATE, _check_range("rate", rate, RATE_RANGE)),
        (_PARAM_VOLUME, _check_range("volume", volume, VOLUME_RANGE)),
        (_PARAM_PITCH, _check_range("pitch", pitch, PITCH_RANGE)),
        (_PARAM_RANGE, _check_range("pitch_range", pitch_range, RANGE_RANGE)),
        (_PARAM_WORDGAP, _check_range("word_gap", word_gap, (0, 100))),
    )
    data = text.encode("utf-8") + b"\0"
    with _lock:
        engine = _get_engine()
        _select_voice(engine, voice, gender)
        # Parameters come after the voice: selecting a voice resets them to its defaults.
        for param, value in params:
            engine.check(engine.lib.espeak_SetParameter(param, value, 0), f"setting parameter {param} to {value}")
        if seed is not None and engine.set_seed is not None:
            engine.set_seed(int(seed) & 0x7FFFFFFF)
        engine._chunks = []
        try:
            engine.check(engine.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8,
                                                 None, None), f"synthesizing {text[:40]!r}")
            engine.check(engine.lib.espeak_Synchronize(), "waiting for synthesis")
            chunks = engine._chunks
        finally:
            engine._chunks = []
        sample_rate = engine.sample_rate
    if not chunks:
        raise EspeakError(f"eSpeak NG produced no audio for {text[:40]!r} with voice {voice!r}")
    return np.concatenate(chunks).astype(np.int16, copy=False), sample_rate
