"""Self-supervised speech upstreams (WavLM, HuBERT, wav2vec 2.0, data2vec, Whisper's encoder) as feature sets.

Each upstream is a vector set: per utterance, the mean and the standard deviation over time of
every hidden state of the frozen model (``L00`` is the input of the first transformer layer,
``L01``..``LN`` the layers' outputs), columns ``L03_mean_0017``, ``L03_std_0017``, one block of
``2 * hidden`` columns per layer, layers in order (:func:`layer_blocks`).

Offline first: a model is read from ``<models root>/<name>/`` (the Hugging Face folder layout:
``config.json``, ``preprocessor_config.json``, ``model.safetensors`` or ``pytorch_model.bin``)
through ``transformers`` with ``local_files_only=True``; the models root is ``--model-dir``,
else ``$SERBENCH_MODELS``, else ``~/.local/share/serbench/models``. ``serbench models fetch NAME``
fills it with ``huggingface_hub`` where there is a network. The SHA-256 of the weights (and of the
two configuration files) is part of the set's cache key: other weights under the same name start
another cache folder, never mixing with cached rows.

Windows: Whisper reads 30-s frames; a longer file is cut into 30-s windows and each window's
features are pooled only over the encoder frames that hold audio (``ceil(samples / 320)`` of its
1500), never its zero padding. The other upstreams read windows of :data:`WINDOW_S` seconds (a
tail shorter than :data:`MIN_TAIL_S` joins the window before it). Pooling over windows is
frame-weighted (sums and sums of squares over every frame of every window, in float64). Trailing
digital silence (samples below one 16-bit step) is padding, not audio, and is cut first.
On a GPU the model runs in float16, on a CPU in float32; the precision is part of the key
(``SERBENCH_SSL_DEVICE=cpu`` forces the CPU).

Batches: :meth:`Encoder.batch` takes several utterances (the extraction loop hands it files of
similar length) and runs their windows together, at most :func:`batch_seconds` of padded audio
per forward pass. Whether windows of different lengths may share a batch depends on the model
(:func:`pads_with_mask`): only where the padded result equals the unpadded one.

* Padded, with the attention mask: the wav2vec2, HuBERT and WavLM models whose convolutional
  front-end normalizes each frame (``feat_extract_norm == "layer"``: wav2vec2-large-robust,
  hubert-large, wavlm-large) and whose feature extractor returns an attention mask. Each window
  is pooled over its own frames only (``_get_feat_extract_output_lengths`` of its length).
* Exactly equal lengths only: models with a group-normalized front-end (wav2vec2-base,
  hubert-base, wavlm-base-plus: the norm spans the time axis, so padding changes every frame)
  and data2vec (its stacked positional convolutions carry the padding into the last frames even
  with the mask). Their windows batch only with windows of the same number of samples (full
  20-s windows; files of identical length).
* Whisper: every window is a zero-padded 30-s frame already, so any windows share a batch, each
  pooled over its own frames that hold audio.

A batch's values equal the file's values alone to float32 rounding (tests/features/test_ssl_batching.py).

This module imports only the standard library at import time (the registry is read by
``serbench --help``); transformers and torch load when a model is loaded.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import threading
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from serbench.features.registry import FeatureSet, FeatureSetError, Kind, _dist_version, _major_minor

if TYPE_CHECKING:
    import numpy as np

MODELS_ENV = "SERBENCH_MODELS"
DEVICE_ENV = "SERBENCH_SSL_DEVICE"
BATCH_ENV = "SERBENCH_SSL_BATCH_S"
#: Bump when the pooling or windowing changes (part of every SSL set's key).
VERSION = "2"
SAMPLE_RATE = 16000
#: Window of the wav2vec2-family upstreams (seconds): attention memory grows with its square.
WINDOW_S = 20.0
#: A tail window shorter than this joins the window before it (the conv front-end needs 25 ms, and a
#: very short window describes little).
MIN_TAIL_S = 1.0
#: Whisper's frame: 30 s of audio, 1500 encoder frames of 20 ms (320 samples) each.
WHISPER_WINDOW_S = 30.0
WHISPER_HOP = 320
#: Padded audio (seconds) of one forward pass, by device (``SERBENCH_SSL_BATCH_S`` sets it): windows of
#: several files run together up to it. Memory grows with it; a window longer than it runs alone. On a
#: CPU a larger batch gained little (wavlm-base-plus, 8 x 3 s in one pass: 1.05x) and two Whisper frames
#: per pass were slower than one (0.93x; benchmarks/bench_ssl.py), hence one 30-s frame there.
BATCH_SECONDS = {"cuda": 240.0, "cpu": 30.0}
SILENCE_PEAK = 1.0 / 32768
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class ModelFolderError(FeatureSetError):
    """An upstream's local folder is missing, of another architecture, or incomplete."""


@dataclass(frozen=True)
class Upstream:
    """One registered upstream: where it comes from and what it expects.

    ``family`` is the transformers ``model_type`` its ``config.json`` must declare; ``layers`` the
    number of transformer layers (hidden states: ``layers + 1``); ``hidden`` their width.
    """

    name: str
    hub_id: str
    revision: str
    licence: str
    family: str
    layers: int
    hidden: int
    size: str                     # "base" | "large" (the benchmark's grouping)
    normalization: str
    description: str

    @property
    def input(self) -> str:
        return f"{SAMPLE_RATE // 1000} kHz mono float; {self.normalization}"


_WAV_NORM = "zero mean, unit variance per window (do_normalize in the folder's preprocessor_config.json)"
_RAW = "raw waveform (do_normalize false in its preprocessor_config.json)"
_WHISPER = "log-mel of a 30-s frame zero-padded (80 bins; 128 for large-v3), scaled as Whisper does"

# Revisions: this machine reaches no hub, so no commit could be read and checked here; every upstream is
# pinned to "main", and the cache key holds the SHA-256 of the weights actually used (so a moved "main"
# never mixes with cached rows). `serbench models fetch` records the commit it resolved in
# serbench-fetch.json beside the weights. Licences as their model cards state them.
UPSTREAMS: tuple[Upstream, ...] = (
    Upstream("wav2vec2-base", "facebook/wav2vec2-base", "main", "apache-2.0", "wav2vec2", 12, 768, "base",
             _WAV_NORM, "wav2vec 2.0 base, LibriSpeech 960 h, self-supervised only"),
    Upstream("wav2vec2-large-robust", "facebook/wav2vec2-large-robust", "main", "apache-2.0", "wav2vec2", 24, 1024,
             "large", _WAV_NORM, "wav2vec 2.0 large, robust pre-training (Libri-Light, CommonVoice, Switchboard, Fisher)"),
    Upstream("hubert-base", "facebook/hubert-base-ls960", "main", "apache-2.0", "hubert", 12, 768, "base",
             _RAW, "HuBERT base, LibriSpeech 960 h"),
    Upstream("hubert-large", "facebook/hubert-large-ll60k", "main", "apache-2.0", "hubert", 24, 1024, "large",
             _WAV_NORM, "HuBERT large, Libri-Light 60k h"),
    Upstream("wavlm-base-plus", "microsoft/wavlm-base-plus", "main", "MIT (microsoft/unilm)", "wavlm", 12, 768,
             "base", _RAW, "WavLM base+, 94k h (Libri-Light, GigaSpeech, VoxPopuli)"),
    Upstream("wavlm-large", "microsoft/wavlm-large", "main", "MIT (microsoft/unilm)", "wavlm", 24, 1024, "large",
             _WAV_NORM, "WavLM large, 94k h"),
    Upstream("data2vec-base", "facebook/data2vec-audio-base", "main", "apache-2.0", "data2vec-audio", 12, 768,
             "base", _WAV_NORM, "data2vec audio base, LibriSpeech 960 h, self-supervised only"),
    Upstream("data2vec-large", "facebook/data2vec-audio-large", "main", "apache-2.0", "data2vec-audio", 24, 1024,
             "large", _WAV_NORM, "data2vec audio large, Libri-Light 60k h, self-supervised only"),
    Upstream("whisper-small", "openai/whisper-small", "main", "apache-2.0", "whisper", 12, 768, "base",
             _WHISPER, "Whisper small, encoder only"),
    Upstream("whisper-medium", "openai/whisper-medium", "main", "apache-2.0", "whisper", 24, 1024, "large",
             _WHISPER, "Whisper medium, encoder only"),
    Upstream("whisper-large-v3", "openai/whisper-large-v3", "main", "apache-2.0", "whisper", 32, 1280, "large",
             _WHISPER, "Whisper large-v3, encoder only"),
)

_BY_NAME = {u.name.lower(): u for u in UPSTREAMS}


def get_upstream(name: str) -> Upstream:
    try:
        return _BY_NAME[str(name).strip().lower()]
    except KeyError:
        raise FeatureSetError(f"unknown upstream {name!r}; choose from {', '.join(u.name for u in UPSTREAMS)}") \
            from None


def is_ssl(feature: str | None) -> bool:
    """Whether ``feature`` names a registered self-supervised upstream set."""
    return feature is not None and str(feature).strip().lower() in _BY_NAME


def models_root(value: str | os.PathLike | None = None) -> Path:
    """The models root: ``value``, else ``$SERBENCH_MODELS``, else ``~/.local/share/serbench/models``."""
    if value:
        return Path(value).expanduser()
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV]).expanduser()
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "serbench" / "models"


def use_models_root(value: str | os.PathLike | None) -> None:
    """``--model-dir``: make ``value`` the models root of this process and of the workers it starts."""
    if value:
        os.environ[MODELS_ENV] = str(Path(value).expanduser().resolve())


# ---- the local folder --------------------------------------------------------------------------------
def _fetch_hint(up: Upstream, folder: Path) -> str:
    return (f"`serbench models fetch {up.name} --to {folder.parent}` where there is a network, or put the Hugging "
            f"Face folder of {up.hub_id} (revision {up.revision}: config.json, preprocessor_config.json, "
            f"model.safetensors) at {folder}")


def weight_files(folder: Path) -> list[Path]:
    """The weights of a Hugging Face folder: one file or the shards its index lists (sorted)."""
    for index_name, single in (("model.safetensors.index.json", "model.safetensors"),
                               ("pytorch_model.bin.index.json", "pytorch_model.bin")):
        index = folder / index_name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ModelFolderError(f"{folder}: {index_name} is unreadable ({type(exc).__name__}); fetch the "
                                       "folder again") from None
            return [folder / s for s in shards]
        if (folder / single).is_file():
            return [folder / single]
    return []


def _check_safetensors(path: Path) -> str | None:
    """Why a safetensors file is incomplete (None: its header's tensors all fit in the file)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return "shorter than a safetensors header"
        n = struct.unpack("<Q", head)[0]
        if n > size - 8 or n > 100_000_000:
            return "its header runs past the end of the file"
        try:
            header = json.loads(f.read(n))
        except ValueError:
            return "its header is not JSON"
    ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    want = 8 + n + (max(ends) if ends else 0)
    if size < want:
        return f"{size} bytes where its header needs {want}"
    return None


def check_weights(path: Path) -> str | None:
    """Why a weights file cannot be complete (None when it looks whole); reads headers only."""
    if not path.is_file():
        return "missing"
    if path.suffix == ".safetensors":
        return _check_safetensors(path)
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; a cut one has no central directory
        return "not a complete torch zip archive"
    return None


def inspect_folder(up: Upstream, folder: Path) -> dict:
    """Check ``folder`` holds ``up`` (cheap: configs and weight headers); returns its config.

    Raises :class:`ModelFolderError` in one line naming the folder: missing, another architecture,
    no preprocessor config, no or truncated weights.
    """
    if not folder.is_dir():
        raise ModelFolderError(f"{up.name}: no model folder {folder}; {_fetch_hint(up, folder)}")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(f"{folder}: no config.json, not a Hugging Face model folder; "
                               f"{_fetch_hint(up, folder)}") from None
    except (OSError, ValueError) as exc:
        raise ModelFolderError(f"{folder}: config.json is unreadable ({type(exc).__name__}); "
                               f"{_fetch_hint(up, folder)}") from None
    found = config.get("model_type") if isinstance(config, dict) else None
    if found != up.family:
        raise ModelFolderError(f"{folder}: holds a {found!r} model (config.json model_type), {up.name} is a "
                               f"{up.family!r} model; {_fetch_hint(up, folder)}")
    if not (folder / "preprocessor_config.json").is_file():
        raise ModelFolderError(f"{folder}: no preprocessor_config.json (the feature extractor's settings); "
                               f"{_fetch_hint(up, folder)}")
    files = weight_files(folder)
    if not files:
        raise ModelFolderError(f"{folder}: no weights ({' or '.join(WEIGHT_FILES)}); {_fetch_hint(up, folder)}")
    for p in files:
        problem = check_weights(p)
        if problem:
            raise ModelFolderError(f"{folder}: weights file {p.name} is truncated or damaged ({problem}); "
                                   f"{_fetch_hint(up, folder)}")
    return config


_HASHES: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, remembered per (path, size, mtime) in this process."""
    st = path.stat()
    k = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        if k in _HASHES:
            return _HASHES[k]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    digest = h.hexdigest()
    with _HASH_LOCK:
        _HASHES[k] = digest
    return digest


def _combined(paths: list[Path]) -> str:
    if len(paths) == 1:
        return file_sha256(paths[0])
    h = hashlib.sha256()
    for p in paths:
        h.update(f"{p.name}:{file_sha256(p)}\n".encode())
    return h.hexdigest()


def compute_device() -> tuple[str, str]:
    """``(device, dtype name)``: cuda/float16 when a GPU is present (unless ``SERBENCH_SSL_DEVICE=cpu``)."""
    want = os.environ.get(DEVICE_ENV, "").strip().lower()
    if want == "cpu":
        return "cpu", "float32"
    import torch

    if torch.cuda.is_available():
        return "cuda", "float16"
    if want == "cuda":
        raise FeatureSetError(f"{DEVICE_ENV}=cuda but torch sees no GPU")
    return "cpu", "float32"


def batch_seconds(device: str) -> float:
    """Padded audio per forward pass on ``device``: ``$SERBENCH_SSL_BATCH_S``, else :data:`BATCH_SECONDS`."""
    raw = os.environ.get(BATCH_ENV, "").strip()
    if not raw:
        return BATCH_SECONDS.get(device, BATCH_SECONDS["cpu"])
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or math.isinf(value):
        raise FeatureSetError(f"{BATCH_ENV}={raw!r}: give the seconds of padded audio per forward pass, a positive "
                              "number (e.g. 60)")
    return value


def layer_columns(layer: int, hidden: int) -> list[str]:
    """The column names of hidden state ``layer``'s block (its means, then its stds; :func:`layer_blocks`
    gives their positions): what a reader of one layer asks the cache for."""
    return [f"L{layer:02d}_{stat}_{j:04d}" for stat in ("mean", "std") for j in range(hidden)]


def layer_blocks(n_columns: int, n_states: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: the columns of each hidden state (mean then std, ``2 * hidden`` wide)."""
    if n_states < 1 or n_columns % n_states:
        raise FeatureSetError(f"{n_columns} columns do not split into {n_states} layer blocks")
    w = n_columns // n_states
    return [(i * w, (i + 1) * w) for i in range(n_states)]


# ---- the backend ---------------------------------------------------------------------------------------
@dataclass
class SSLBackend:
    """What the registry needs of one upstream in one local folder (see :class:`~serbench.features.registry.Backend`)."""

    upstream: Upstream
    folder: Path
    config: dict = field(repr=False)
    device: str = "cpu"
    dtype: str = "float32"

    version = VERSION

    @cached_property
    def n_layers(self) -> int:
        key = "encoder_layers" if self.upstream.family == "whisper" else "num_hidden_layers"
        return int(self.config[key])

    @cached_property
    def hidden(self) -> int:
        return int(self.config["d_model" if self.upstream.family == "whisper" else "hidden_size"])

    @property
    def n_states(self) -> int:
        return self.n_layers + 1

    @cached_property
    def weights_sha256(self) -> str:
        return _combined(weight_files(self.folder))

    @cached_property
    def config_sha256(self) -> str:
        return _combined([self.folder / "config.json", self.folder / "preprocessor_config.json"])

    @cached_property
    def params(self) -> dict[str, object]:  # type: ignore[override]
        up = self.upstream
        return {"hub_id": up.hub_id, "revision": up.revision, "family": up.family, "layers": self.n_layers,
                "hidden": self.hidden, "pooling": "mean and std (ddof 0) over the frames of every hidden state",
                "window_s": WHISPER_WINDOW_S if up.family == "whisper" else WINDOW_S,
                "min_tail_s": None if up.family == "whisper" else MIN_TAIL_S,
                "trailing_silence": "cut (peak below one 16-bit step)",
                "weights_sha256": self.weights_sha256, "config_sha256": self.config_sha256,
                "precision": self.dtype}

    def libraries(self) -> dict[str, str]:
        return {n: _major_minor(_dist_version(n)) for n in ("transformers", "torch")}

    def feature_names(self) -> list[str]:
        return [c for layer in range(self.n_states) for c in layer_columns(layer, self.hidden)]

    def provenance(self) -> dict:
        """What a run record says about the upstream it read."""
        up = self.upstream
        return {"upstream": up.name, "hub_id": up.hub_id, "revision": up.revision, "licence": up.licence,
                "folder": str(self.folder), "weights_sha256": self.weights_sha256,
                "fetched": _fetch_record(self.folder), "layers": self.n_layers, "precision": self.dtype}

    def make_extractor(self) -> Callable[["np.ndarray", int], "np.ndarray"]:
        return Encoder(self)

    @property
    def batch_seconds(self) -> float:
        """Padded audio per forward pass: the extraction loop sizes its chunks of files by it (and knows
        from it that :meth:`Encoder.batch` takes several files)."""
        return batch_seconds(self.device)


def _fetch_record(folder: Path) -> dict | None:
    try:
        return json.loads((folder / FETCH_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


FETCH_RECORD = "serbench-fetch.json"
_BACKENDS: dict[tuple, SSLBackend] = {}


def backend_for(up: Upstream, root: Path | None = None) -> SSLBackend:
    """The backend of ``up`` in ``<models root>/<name>`` (checked; remembered while the folder is unchanged)."""
    folder = (root or models_root()) / up.name
    config = inspect_folder(up, folder)
    stats = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in
                  [*weight_files(folder), folder / "config.json", folder / "preprocessor_config.json"])
    device, dtype = compute_device()
    k = (up.name, str(folder.resolve()), stats, device, dtype)
    if k not in _BACKENDS:
        _BACKENDS[k] = SSLBackend(up, folder, config, device, dtype)
    return _BACKENDS[k]


@dataclass(frozen=True)
class SSLFeatureSet(FeatureSet):
    """A feature set whose implementation lives in a local model folder: backend and key follow the folder."""

    upstream: Upstream | None = field(default=None, repr=False, compare=False)

    @property
    def backend(self) -> SSLBackend:  # type: ignore[override]
        assert self.upstream is not None
        return backend_for(self.upstream)

    @property
    def key(self) -> str:  # type: ignore[override]
        blob = json.dumps({"name": self.name, "kind": self.kind.value, "version": self.version,
                           "params": self.params, "libraries": self.libraries}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def feature_sets() -> list[SSLFeatureSet]:
    """One vector set per upstream (registered by :mod:`serbench.features.registry`)."""
    return [SSLFeatureSet(u.name, Kind.VECTOR, f"{u.description}: mean and std over time of every hidden layer "
                                                f"({u.layers} layers + input, {u.hidden} wide)",
                          lambda: None, None, upstream=u) for u in UPSTREAMS]


def provenance(feature: str | None) -> dict | None:
    """The run record's upstream facts for an SSL ``feature`` (None for other sets)."""
    if not is_ssl(feature):
        return None
    return backend_for(get_upstream(str(feature))).provenance()


def n_states(feature: str) -> int:
    """Hidden states (layers + 1) of an SSL set in its local folder."""
    return backend_for(get_upstream(feature)).n_states


def columns_of_layer(feature: str, layer: int) -> list[str]:
    """The columns of hidden state ``layer`` of an SSL set in its local folder (refused beyond its layers)."""
    backend = backend_for(get_upstream(feature))
    if not 0 <= int(layer) < backend.n_states:
        raise FeatureSetError(f"--layer {layer}: {feature} has layers 0..{backend.n_states - 1} (0: the input of "
                              "the first transformer layer)")
    return layer_columns(int(layer), backend.hidden)


# ---- extraction ---------------------------------------------------------------------------------------
def windows(n: int, family: str) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` sample ranges of the windows of an ``n``-sample signal."""
    size = int((WHISPER_WINDOW_S if family == "whisper" else WINDOW_S) * SAMPLE_RATE)
    bounds = [(s, min(s + size, n)) for s in range(0, n, size)] or [(0, 0)]
    if family != "whisper" and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < MIN_TAIL_S * SAMPLE_RATE:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds


def whisper_frames(n_samples: int) -> int:
    """Encoder frames of a Whisper window that hold audio: mel frames centred before the end, halved by conv2."""
    return max(1, min(1500, math.ceil(n_samples / WHISPER_HOP)))


def trim_trailing_silence(x: "np.ndarray") -> "np.ndarray":
    import numpy as np

    loud = np.flatnonzero(np.abs(x) >= SILENCE_PEAK)
    return x[: int(loud[-1]) + 1] if loud.size else x[:0]


def pads_with_mask(family: str, config: dict, processor: Any) -> bool:
    """Whether windows of different lengths may share a batch, zero-padded, with the attention mask.

    Only where padding leaves every real frame as it is: a wav2vec2, HuBERT or WavLM model whose
    convolutional front-end normalizes each frame on its own (``feat_extract_norm == "layer"``),
    whose feature extractor returns the mask (and so normalizes each window over its own samples),
    and whose one positional convolution sees zeros past the end, as it does alone (the models zero
    the padded frames before it). A group norm spans the time axis, padding included; data2vec's
    stacked positional convolutions carry the padding into the last real frames.
    """
    return (family in ("wav2vec2", "hubert", "wavlm") and config.get("feat_extract_norm") == "layer"
            and bool(getattr(processor, "return_attention_mask", False)))


def plan_batches(lengths: Sequence[int], budget: int, mode: str) -> list[list[int]]:
    """Windows (by index into ``lengths``, in samples) grouped into forward passes.

    Longest first (ties in input order), so that a batch holds windows of similar length. A batch
    costs its window count times its longest window (``mode`` 'padded'), times the 30-s frame
    (``'whisper'``), or holds windows of exactly one length only (``'equal'``); it stays within
    ``budget`` samples, except a window longer than the budget, which runs alone.
    """
    frame = int(WHISPER_WINDOW_S * SAMPLE_RATE)
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda k: (-lengths[k], k)):
        if batches:
            last = batches[-1]
            width = frame if mode == "whisper" else lengths[last[0]]      # the batch's longest window
            if (len(last) + 1) * width <= budget and (mode != "equal" or lengths[i] == lengths[last[0]]):
                last.append(i)
                continue
        batches.append([i])
    return batches


class Encoder:
    """An upstream loaded once (per process): ``encoder(signal, sr) -> (n_states * 2 * hidden,)`` float64.

    :meth:`batch` extracts several utterances at once (what the extraction loop calls); calling the
    encoder on one utterance is ``batch([signal], sr)[0]``.
    """

    def __init__(self, backend: SSLBackend) -> None:
        import torch
        import transformers

        self.backend = backend
        up, folder = backend.upstream, str(backend.folder)
        self.torch = torch
        self.device = torch.device(backend.device)
        self.dtype = torch.float16 if backend.dtype == "float16" else torch.float32
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()   # one bar per worker per load: noise in the run's log
        try:
            self.processor = transformers.AutoFeatureExtractor.from_pretrained(folder, local_files_only=True)
            cls = {"wav2vec2": "Wav2Vec2Model", "hubert": "HubertModel", "wavlm": "WavLMModel",
                   "data2vec-audio": "Data2VecAudioModel", "whisper": "WhisperModel"}[up.family]
            model, info = getattr(transformers, cls).from_pretrained(folder, local_files_only=True,
                                                                     output_loading_info=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelFolderError(f"{folder}: transformers cannot load it ({type(exc).__name__}: "
                                   f"{' '.join(str(exc).split())[:200]}); fetch the folder again") from None
        missing = [k for k in info.get("missing_keys", ()) if "masked_spec_embed" not in k
                   and (up.family != "whisper" or k.startswith("encoder."))]
        if missing:
            raise ModelFolderError(f"{folder}: its weights lack {len(missing)} tensor(s) of the {cls} "
                                   f"(e.g. {missing[0]}): not {up.hub_id}'s weights; fetch the folder again")
        if up.family == "whisper":
            model = model.get_encoder()  # the decoder is dropped with the full model
        self.model = model.to(self.device, self.dtype).eval()
        self.family = up.family
        self.n_states = backend.n_states
        self.hidden = backend.hidden
        self.mode = ("whisper" if up.family == "whisper" else
                     "padded" if pads_with_mask(up.family, backend.config, self.processor) else "equal")
        self.budget = int(backend.batch_seconds * SAMPLE_RATE)

    def _run_model(self, batch: list["np.ndarray"]) -> tuple[Any, list[int]]:
        """The model's output on ``batch`` and each window's frames that hold audio."""
        import warnings

        torch = self.torch
        if self.mode == "whisper":
            feats = self.processor(batch, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            with torch.inference_mode():
                out = self.model(feats["input_features"].to(self.device, self.dtype), output_hidden_states=True)
            return out, [whisper_frames(len(w)) for w in batch]
        if self.mode == "padded":
            feats = self.processor(batch, sampling_rate=SAMPLE_RATE, padding="longest", return_attention_mask=True,
                                   return_tensors="pt")
            lengths = torch.tensor([len(w) for w in batch])
            valid = [int(n) for n in self.model._get_feat_extract_output_lengths(lengths)]
        else:
            if len({len(w) for w in batch}) != 1:
                raise FeatureSetError(f"{self.backend.upstream.name}: windows of different lengths in one batch; "
                                      "this model's output changes with padding")
            feats = self.processor(batch, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            valid = []
        inputs = {k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device))
                  for k, v in feats.items()}
        with torch.inference_mode(), warnings.catch_warnings():
            # WavLM hands torch a boolean padding mask beside its float position bias; torch warns that
            # mixing the two is deprecated (the result is right).
            warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
            out = self.model(**inputs, output_hidden_states=True)
        return out, valid or [int(out.hidden_states[0].shape[1])] * len(batch)

    def _forward(self, batch: list["np.ndarray"]) -> tuple["np.ndarray", "np.ndarray", list[int]]:
        """Windows -> per window and hidden state the sums and sums of squares (float64) over its frames
        that hold audio, ``(B, n_states, hidden)`` each, and those frames' counts."""
        torch = self.torch
        out, valid = self._run_model(batch)
        states = out.hidden_states
        if len(states) != self.n_states:
            raise FeatureSetError(f"{self.backend.folder}: the model gave {len(states)} hidden states, its config "
                                  f"{self.n_states}")
        frames = int(states[0].shape[1])
        if max(valid) > frames:
            raise FeatureSetError(f"{self.backend.folder}: {max(valid)} frames expected, the model gave {frames}")
        with torch.inference_mode():
            keep = (torch.arange(frames, device=states[0].device)[None, :]
                    < torch.tensor(valid, device=states[0].device)[:, None]).to(torch.float64)[..., None]
            sums, squares = [], []
            for h in states:
                v = h.to(torch.float64) * keep                  # (B, T, H), frames past the audio zeroed
                sums.append(v.sum(1))
                squares.append((v * v).sum(1))
            return (torch.stack(sums, 1).cpu().numpy(), torch.stack(squares, 1).cpu().numpy(), valid)

    def batch(self, signals: Sequence["np.ndarray"], sr: int) -> list["np.ndarray"]:
        """Several utterances -> one feature vector each, in order (NaN for one shorter than 25 ms).

        Their windows run together, at most :attr:`budget` samples of padded audio per forward pass
        (:func:`plan_batches`, by this model's :attr:`mode`), each pooled into its own utterance.
        """
        import numpy as np

        if sr != SAMPLE_RATE:
            raise FeatureSetError(f"{self.backend.upstream.name} reads {SAMPLE_RATE} Hz audio, got {sr} Hz")
        width = self.n_states * 2 * self.hidden
        out: list[np.ndarray | None] = [None] * len(signals)
        pieces: list[tuple[int, np.ndarray]] = []
        for i, signal in enumerate(signals):
            x = trim_trailing_silence(np.asarray(signal, dtype=np.float32).reshape(-1))
            if x.size < 400:  # shorter than one 25-ms frame of the convolutional front-end: nothing to describe
                out[i] = np.full(width, np.nan)
                continue
            pieces += [(i, x[a:b]) for a, b in windows(x.size, self.family)]
        sums = np.zeros((len(signals), self.n_states, self.hidden))
        squares = np.zeros_like(sums)
        frames = np.zeros(len(signals), dtype=np.int64)
        for group in plan_batches([p.size for _, p in pieces], self.budget, self.mode):
            s, q, n = self._forward([pieces[k][1] for k in group])
            for j, k in enumerate(group):
                i = pieces[k][0]
                sums[i] += s[j]
                squares[i] += q[j]
                frames[i] += n[j]
        for i in range(len(signals)):
            if out[i] is None:
                mean = sums[i] / frames[i]
                std = np.sqrt(np.maximum(squares[i] / frames[i] - mean * mean, 0.0))
                out[i] = np.stack([mean, std], axis=1).reshape(-1)     # per state: mean block, then std block
        return out  # type: ignore[return-value]

    def __call__(self, signal: "np.ndarray", sr: int) -> "np.ndarray":
        return self.batch([signal], sr)[0]


# ---- fetching ---------------------------------------------------------------------------------------------
class FetchError(FeatureSetError):
    """A download that could not be done (no network, hub refused)."""


def fetch(name: str, to: str | os.PathLike | None = None, *, say: Callable[[str], None] = lambda _m: None) -> Path:
    """Download upstream ``name`` at its pinned revision into ``<to>/<name>`` (default: the models root).

    The files go into a temp folder beside the target, which is renamed into place only when the
    download is complete and checks out (:func:`inspect_folder`); on any failure the temp folder is
    removed, so nothing is left half-written. Without a network: :class:`FetchError` in one line.
    """
    from serbench.io import ensure_inside, rmtree_inside

    up = get_upstream(name)
    root = models_root(to)
    target = root / up.name
    if target.exists():
        inspect_folder(up, target)
        say(f"{up.name}: already at {target}")
        return target
    root.mkdir(parents=True, exist_ok=True)
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=f".{up.name}.partial-", dir=root))
    ensure_inside(tmp, root)
    try:
        try:
            import huggingface_hub as hub

            api = hub.HfApi()
            info = api.model_info(up.hub_id, revision=up.revision)
            files = {s.rfilename for s in (info.siblings or [])}
            weights = ([f for f in files if f.endswith(".safetensors") or f == "model.safetensors.index.json"]
                       or [f for f in files if f.startswith("pytorch_model.bin")])
            wanted = ["config.json", "preprocessor_config.json", *sorted(weights)]
            say(f"{up.name}: downloading {up.hub_id} at {info.sha} ({', '.join(wanted)})")
            hub.snapshot_download(up.hub_id, revision=info.sha, local_dir=str(tmp), allow_patterns=wanted)
        except Exception as exc:  # no network, hub errors: one line, nothing kept
            raise FetchError(f"models fetch {up.name}: cannot download {up.hub_id} ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:160]}); without a network, put its Hugging Face folder "
                             f"(config.json, preprocessor_config.json, model.safetensors) at {target}") from None
        from serbench.io import atomic_write_text

        hashes = {p.name: file_sha256(p) for p in weight_files(tmp)}
        atomic_write_text(tmp / FETCH_RECORD, json.dumps(
            {"hub_id": up.hub_id, "revision": up.revision, "commit": info.sha, "sha256": hashes},
            indent=1, sort_keys=True) + "\n", inside=root)
        inspect_folder(up, tmp)
        cache = tmp / ".cache"          # huggingface_hub's download bookkeeping
        if cache.is_dir():
            rmtree_inside(cache, tmp)
        os.replace(tmp, target)
    except BaseException:
        if tmp.exists():
            rmtree_inside(tmp, root)
        raise
    say(f"{up.name}: {target}")
    return target


def local_status(up: Upstream, root: Path | None = None) -> tuple[str, Path]:
    """``("found" | "missing" | problem, folder)``: a cheap look at an upstream's local folder (no hashing)."""
    folder = (root or models_root()) / up.name
    if not folder.exists():
        return "missing", folder
    try:
        inspect_folder(up, folder)
    except ModelFolderError as exc:
        return f"unusable: {exc}", folder
    return "found", folder


__all__ = ["UPSTREAMS", "Upstream", "SSLFeatureSet", "SSLBackend", "Encoder", "ModelFolderError", "FetchError",
           "models_root", "use_models_root", "get_upstream", "is_ssl", "inspect_folder", "fetch", "local_status",
           "layer_blocks", "check_layer_data", "provenance", "n_states", "windows", "whisper_frames", "feature_sets",
           "batch_seconds", "plan_batches", "pads_with_mask", "layer_columns",
           "columns_of_layer"]


def check_layer_data(data: Any, feature: str, layer: str) -> None:
    """Before a run: ``data`` holds ``feature``'s layer blocks (every layer, or only ``layer`` when it was read
    alone: :func:`columns_of_layer`) and ``layer`` is one of them.

    Records the number of blocks in ``data.meta['layer_blocks']`` and, when the data holds one layer, which
    one in ``data.meta['layers']``, for the fold tasks (which may run where the model folder is not).
    """
    backend = backend_for(get_upstream(feature))
    n, block = backend.n_states, 2 * backend.hidden
    if layer != "auto" and not 0 <= int(layer) < n:
        raise FeatureSetError(f"--layer {layer}: {feature} has layers 0..{n - 1} (0: the input of the first "
                              "transformer layer)")
    width = int(data.inputs.shape[1])
    if layer != "auto" and width == block:
        data.meta["layer_blocks"], data.meta["layers"] = 1, [int(layer)]
        return
    if width != n * block:
        raise FeatureSetError(f"{width} columns do not split into {feature}'s {n} layer blocks of {block}")
    data.meta["layer_blocks"] = n
