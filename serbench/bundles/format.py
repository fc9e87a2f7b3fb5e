"""The model bundle on disk: a folder with ``model.json`` and weights that load without executing code.

Layout::

    MODEL_DIR/model.json            what the model is (see below), every file's SHA-256
    MODEL_DIR/weights.safetensors   torch weights and normalization arrays; the SVMs' fitted arrays
    MODEL_DIR/<name>.skops          scikit-learn estimators, skops format (SVM bundles of format 2 and
                                    older: the pipeline; still read)

``model.json`` holds the format and its version, the serbench version and git commit that
wrote it, the system (registry type, stored name, kind, profile, every setting), the
labels in score order, what the scores are (probabilities or SVM decision scores), the
feature set (name, version, parameters, library versions, cache key), the normalization
(per-speaker or not; the model's input statistics), the training data (corpus, root,
emotions, speakers, class counts, a hash of the manifest rows used, the data
fingerprint), the benchmark run of the same system, settings and data when the results
store has one, the library versions, and ``files``: name -> size and SHA-256.

Reading (:func:`read_bundle`) checks, in this order, and stops at the first problem with a
one-line :class:`BundleError`: the folder and ``model.json``; the format, its version and
the serbench version (a newer one is refused); the system (known here, able to load
bundles); the feature set (computed identically here: same cache key, else the
differences are named); every listed file (present, same size, same SHA-256); then each
file's content: a weights file that holds a pickle (or a PyTorch/NumPy pickle archive)
is refused before any parser sees it, safetensors are parsed with ``safetensors.numpy``
and skops files are loaded with the system's explicit allow-list of types. Nothing is
ever unpickled.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import zipfile
from pathlib import Path
from typing import Any

from serbench import __version__
from serbench.errors import SerbenchError
from serbench.io import atomic_write_bytes, atomic_write_text, ensure_inside, unlink_inside
from serbench.systems.base import ModelParts, System

FORMAT = "serbench-model"
#: Bump when a bundle written by this version cannot be read by an older reader.
#: 2: SVM bundles hold a calibration and give probabilities (``scores: probability``); a reader
#: of format 1 would label their decision values as probabilities.
#: 3: SVM bundles hold the fitted SVM as arrays in weights.safetensors (model.json ``model.stored_as``),
#: no skops file; a reader of format 2 finds no pipeline in them. Bundles of format 2 and 1 still load.
FORMAT_VERSION = 3
MODEL_JSON = "model.json"
WEIGHTS = "weights.safetensors"
SKOPS_SUFFIX = ".skops"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class BundleError(SerbenchError):
    """A model bundle cannot be written or used (missing, changed, unsafe or incompatible)."""


# ---------------------------------------------------------------- hashing and sniffing

def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pickle_payload(data: bytes) -> str | None:
    """What kind of pickle ``data`` is (a pickle stream, a PyTorch archive, a NumPy object array), or None.

    Checked on the raw bytes, before any parser runs: these formats execute code when loaded.
    """
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return f"a Python pickle (protocol {data[1]})"
    if data[:6] == b"\x93NUMPY" and re.search(rb"'descr':\s*'[|<>=]?O", data[:512]):
        return "a NumPy object array (stored as a pickle)"
    if data[:4] == b"PK\x03\x04":
        try:
            import io

            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            return None
        if any(n.endswith((".pkl", ".pickle")) or n.rsplit("/", 1)[-1] == "data.pkl" for n in names):
            return "a pickle archive (e.g. a torch.save file)"
    return None


def _refuse_pickle(where: Path, data: bytes) -> None:
    kind = pickle_payload(data)
    if kind is not None:
        raise BundleError(f"{where}: refused, the file is {kind}; model bundles never unpickle (loading a pickle "
                          "can run arbitrary code). Use a bundle written by `serbench train`")


# ---------------------------------------------------------------- versions

def _version_tuple(version: str) -> tuple[int, ...]:
    """'0.10.2' -> (0, 10, 2); pre-release and local tags are ignored."""
    head = re.match(r"\d+(\.\d+)*", str(version).strip())
    return tuple(int(p) for p in head.group(0).split(".")) if head else ()


def check_versions(record: dict, where: Path) -> None:
    """Refuse a bundle of another format, a newer format version or a newer serbench."""
    if record.get("format") != FORMAT:
        raise BundleError(f"{where}: not a serbench model bundle (format {record.get('format')!r}, expected {FORMAT!r})")
    fv = record.get("format_version")
    if not isinstance(fv, int) or isinstance(fv, bool):
        raise BundleError(f"{where}: format_version {fv!r} is not an integer; the file is damaged")
    written_by = str(record.get("serbench_version") or "?")
    if fv > FORMAT_VERSION:
        raise BundleError(f"{where}: bundle format {fv} (written by serbench {written_by}) is newer than this "
                          f"serbench ({__version__}) reads (up to {FORMAT_VERSION}); upgrade serbench")
    if _version_tuple(written_by) > _version_tuple(__version__):
        raise BundleError(f"{where}: written by serbench {written_by}, newer than this install ({__version__}); "
                          "upgrade serbench to use it")


# ---------------------------------------------------------------- feature sets

def feature_record(name: str) -> dict:
    """What model.json records about the feature set ``name``: name, kind, version, params, libraries, key."""
    from serbench.features.registry import get_feature_set

    return json.loads(json.dumps(get_feature_set(name).describe(), default=str))


def check_feature_set(saved: dict, where: Path) -> None:
    """Refuse a bundle whose feature set this install computes differently (its cache key differs)."""
    from serbench.features.registry import FeatureSetError

    name = str(saved.get("name"))
    try:
        here = feature_record(name)
    except FeatureSetError:
        raise BundleError(f"{where}: feature set {name!r} is not known to this install of serbench "
                          f"({__version__}); upgrade serbench") from None
    if here.get("key") == saved.get("key"):
        return
    diffs = []
    if here.get("version") != saved.get("version"):
        diffs.append(f"version {saved.get('version')} in the bundle, {here.get('version')} here")
    p_saved, p_here = saved.get("params") or {}, here.get("params") or {}
    for k in sorted(set(p_saved) | set(p_here)):
        if p_saved.get(k) != p_here.get(k):
            diffs.append(f"parameter {k}: {p_saved.get(k)!r} in the bundle, {p_here.get(k)!r} here")
    l_saved, l_here = saved.get("libraries") or {}, here.get("libraries") or {}
    for k in sorted(set(l_saved) | set(l_here)):
        if l_saved.get(k) != l_here.get(k):
            diffs.append(f"{k} {l_saved.get(k)} in the bundle, {l_here.get(k)} here")
    raise BundleError(f"{where}: feature set {name} is computed differently by this install "
                      f"({'; '.join(diffs) or 'its key differs'}), so the model would see other inputs than it "
                      "learned from; retrain it here with `serbench train`, or install the bundle's versions")


# ---------------------------------------------------------------- settings

def settings_from_record(system: System, saved: dict, where: Path) -> Any:
    """The system's settings object from model.json's ``settings`` (types restored, validated)."""
    from serbench.systems.settings import SettingsError, coerce, validate

    cls = system.settings_class
    fields = cls.fields()
    types = cls.types()
    try:   # settings removed since the bundle was written: dropped at their neutral value, else refused
        saved = cls.drop_retired(saved, where=str(where))
    except SettingsError as exc:
        raise BundleError(str(exc)) from None
    unknown = sorted(set(saved) - set(fields))
    if unknown:
        raise BundleError(f"{where}: settings {unknown} are not settings of {system.name} in this install "
                          f"({__version__}); the bundle needs the serbench that wrote it")
    try:
        values = {k: coerce(k, types[k], saved[k]) for k in saved}
        s = cls(**values)
    except (SettingsError, TypeError) as exc:
        raise BundleError(f"{where}: its settings do not fit {system.name} here: {exc}") from None
    pretrained = getattr(s, "pretrained", None)
    if pretrained and not Path(pretrained).expanduser().is_file():
        # The ImageNet weights were used in training and are inside the bundle; the original file is
        # not needed, so its absence here is no error (the other fields were validated when it was written).
        return s
    try:
        validate(s)
    except SettingsError as exc:
        raise BundleError(f"{where}: its settings are invalid for {system.name} here: {exc}") from None
    return s


# ---------------------------------------------------------------- writing

def prepare_folder(out: str | Path, overwrite: bool) -> Path:
    """Check that ``out`` can receive a bundle: absent, empty, or (with ``overwrite``) a bundle.

    Called before training, so a long fit never ends in a refused folder.
    """
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise BundleError(f"--out {out}: exists and is not a folder; give a new folder for the model bundle")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MODEL_JSON).is_file():
            raise BundleError(f"--out {out}: folder is not empty and holds no model bundle; give a new or empty "
                              "folder")
        if not overwrite:
            raise BundleError(f"--out {out}: already holds a model bundle; pass --overwrite to replace it")
    return out


def _old_files(out: Path) -> list[str]:
    try:
        record = json.loads((out / MODEL_JSON).read_text("utf-8"))
        return [n for n in (record.get("files") or {}) if isinstance(n, str) and _NAME.fullmatch(n)]
    except (OSError, ValueError, AttributeError):
        return []


def write_bundle(out: str | Path, parts: ModelParts, record: dict, *, overwrite: bool = False) -> dict:
    """Write ``parts`` and ``record`` (model.json without ``files``) into the folder ``out``.

    Each file is written atomically inside ``out``; model.json is written last, so a bundle
    interrupted mid-write has none and is refused as incomplete. With ``overwrite``, the files
    of the bundle already there are replaced (those no longer needed are removed). Returns
    the complete model.json record.
    """
    import safetensors.numpy

    out = prepare_folder(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    blobs: dict[str, tuple[str, bytes]] = {}
    if parts.tensors:
        import numpy as np

        tensors = {str(k): np.array(v, order="C") for k, v in parts.tensors.items()}   # keeps 0-d shapes
        blobs[WEIGHTS] = ("tensors", safetensors.numpy.save(tensors, metadata={"format": FORMAT}))
    for name, est in parts.estimators.items():
        if not _NAME.fullmatch(name):
            raise BundleError(f"estimator name {name!r}: use letters, digits, '_', '-' and '.' only")
        blobs[name + SKOPS_SUFFIX] = ("estimator", skops_io().dumps(est))
    if not blobs:
        raise BundleError(f"{record.get('system', {}).get('name')}: the fitted model exported no weights")
    stale = [n for n in _old_files(out) if n not in blobs] if overwrite else []
    unlink_inside(out / MODEL_JSON, root)            # an interrupted overwrite leaves no half-valid bundle
    for name in stale:
        unlink_inside(out / name, root)
    files = {}
    for name, (role, data) in blobs.items():
        atomic_write_bytes(out / name, data, inside=root)
        files[name] = {"role": role, "bytes": len(data), "sha256": sha256_bytes(data)}
        if role == "estimator":
            # The types the file holds beyond plain values, so a load checks them against the allow-list
            # without reading the file twice (and never walks scikit-learn).
            files[name]["types"] = skops_types(data)
    full = {**record, "files": files}
    atomic_write_text(out / MODEL_JSON, json.dumps(full, indent=2, sort_keys=False, allow_nan=True) + "\n",
                      inside=root)
    return full


# ---------------------------------------------------------------- reading

def read_record(path: str | Path) -> tuple[Path, dict]:
    """``(folder, model.json)`` of the bundle at ``path``; errors name what is missing or malformed."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        hint = " (give the bundle folder, not a file in it)" if folder.is_file() else ""
        raise BundleError(f"--model {folder}: no such model bundle folder{hint}")
    mj = folder / MODEL_JSON
    if not mj.is_file():
        raise BundleError(f"--model {folder}: no {MODEL_JSON}, so not a model bundle (or an interrupted "
                          "`serbench train`: run it again)")
    try:
        record = json.loads(mj.read_text("utf-8"))
    except UnicodeDecodeError:
        raise BundleError(f"{mj}: not a text file; the bundle is damaged") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{mj}: not valid JSON ({exc.msg} at line {exc.lineno}); the bundle is damaged or "
                          "truncated") from None
    if not isinstance(record, dict):
        raise BundleError(f"{mj}: expected a JSON object; the bundle is damaged")
    return folder, record


def read_system(record: dict, where: Path) -> System:
    from serbench.systems import registry

    typ = (record.get("system") or {}).get("type") if isinstance(record.get("system"), dict) else None
    names = registry.names()
    if typ not in names:
        raise BundleError(f"{where}: names system {typ!r}, which this install does not know (known: "
                          f"{', '.join(names)}); upgrade serbench or register that system first")
    system = registry.get(typ)
    if not system.exportable:
        raise BundleError(f"{where}: system {typ} cannot load model bundles in this install")
    return system


def check_files(folder: Path, record: dict) -> dict[str, bytes]:
    """name -> bytes of every file listed in model.json, each checked (a plain name of the bundle, present,
    its size and SHA-256, no pickle); nothing is parsed, and nothing heavier than hashlib is imported."""
    files = record.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{folder / MODEL_JSON}: lists no weights files; the bundle is damaged")
    root = folder.resolve()
    blobs: dict[str, bytes] = {}
    for name, entry in files.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name == MODEL_JSON or not isinstance(entry, dict):
            raise BundleError(f"{folder / MODEL_JSON}: file entry {name!r} is not a plain file name of the bundle")
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{path}: missing; model.json lists it (the bundle is incomplete: copy the whole "
                              "folder)")
        ensure_inside(path, root, "read")
        data = path.read_bytes()
        if len(data) != entry.get("bytes"):
            raise BundleError(f"{path}: {len(data)} bytes, model.json says {entry.get('bytes')}: the file was "
                              "truncated or replaced")
        if sha256_bytes(data) != entry.get("sha256"):
            raise BundleError(f"{path}: changed since the bundle was written (SHA-256 differs from model.json); "
                              "refusing to load modified weights")
        _refuse_pickle(path, data)
        role = entry.get("role")
        if role != "tensors" and not (role == "estimator" and name.endswith(SKOPS_SUFFIX)):
            raise BundleError(f"{folder / MODEL_JSON}: file {name} has unknown role {role!r}")
        blobs[name] = data
    return blobs


def parse_files(folder: Path, record: dict, system: System, blobs: dict[str, bytes]) -> ModelParts:
    """The parts in the checked files (:func:`check_files`): safetensors parsed with ``safetensors.numpy``,
    skops files loaded trusting only the allowed types they hold."""
    files = record["files"]
    parts = ModelParts(meta=dict(record.get("model") or {}), score_kind=str(record.get("scores") or "probability"),
                       normalization=dict(record.get("normalization") or {}))
    for name, data in blobs.items():
        role = files[name].get("role")
        path = folder / name
        if role == "tensors":
            if len(data) < 8 or data[8:9] != b"{":
                raise BundleError(f"{path}: not a safetensors file")
            import safetensors.numpy

            try:
                parts.tensors.update(safetensors.numpy.load(data))
            except Exception as exc:  # the parser's own errors vary by version
                raise BundleError(f"{path}: not a readable safetensors file ({type(exc).__name__})") from None
        else:
            parts.estimators[name[:-len(SKOPS_SUFFIX)]] = _load_skops(path, data, system, files[name].get("types"))
    return parts


def read_files(folder: Path, record: dict, system: System) -> ModelParts:
    """Check every file listed in model.json (present, size, SHA-256, no pickle) and load the parts."""
    return parse_files(folder, record, system, check_files(folder, record))


# ---------------------------------------------------------------- skops: one explicit allow-list, no walk

#: What ``import skops.io`` would otherwise cost: skops builds its default list of trusted scikit-learn
#: types at import by walking every scikit-learn module (``sklearn.utils.all_estimators``, which also
#: imports torch through scikit-learn's array-API shims): 2.7-4.5 s on a 2-core machine, at every load.
_SKOPS_LOCK = threading.Lock()
#: Parts of a module path that scikit-learn's own estimator list (``all_estimators``) leaves out.
_SKLEARN_IGNORED = {"tests", "externals", "setup", "conftest", "experimental", "estimator_checks"}


def skops_io() -> Any:
    """``skops.io``, imported without its walk of scikit-learn when serbench imports it first.

    skops' defaults then trust no scikit-learn estimator by themselves: serbench names every type
    a file holds that is not a plain value (:func:`skops_types`) and passes exactly those as
    ``trusted`` once :func:`check_trusted` has allowed each of them, so a load trusts no more than
    before (never a type outside the allow-list) and walks nothing. A process that imported skops
    itself keeps skops' full defaults; serbench's check is the same either way.
    """
    import sys

    mod = sys.modules.get("skops.io")
    if mod is not None and "skops.io._general" in sys.modules:
        return mod
    with _SKOPS_LOCK:
        if "skops.io._trusted_types" in sys.modules:
            import skops.io

            return skops.io
        import sklearn.utils

        real = sklearn.utils.all_estimators
        sklearn.utils.all_estimators = lambda type_filter=None: []
        try:
            import skops.io
        finally:
            sklearn.utils.all_estimators = real
        return skops.io


def skops_types(data: bytes) -> list[str]:
    """The types a skops file holds beyond what skops trusts by default (plain values, numpy, ufuncs),
    as skops names them (``sklearn.svm._classes.SVC``); with skops imported by :func:`skops_io`
    this includes every scikit-learn type of the file."""
    return sorted(skops_io().get_untrusted_types(data=data))


def _is_sklearn_estimator(name: str) -> bool:
    """Is ``name`` a type skops trusts by default: a public, concrete scikit-learn estimator class found,
    under its defining name, in a public module of scikit-learn (what ``all_estimators`` lists), or one
    of skops' own trusted scikit-learn internals? Imports only that type's own scikit-learn modules."""
    import importlib
    import inspect

    module, _, cls_name = name.rpartition(".")
    parts = module.split(".")
    if parts[0] != "sklearn" or not cls_name or cls_name.startswith("_") or _SKLEARN_IGNORED & set(parts):
        return False
    try:
        cls = getattr(importlib.import_module(module), cls_name, None)
    except Exception:  # no such module (or not a module name at all)
        return False
    from sklearn.base import BaseEstimator

    if not inspect.isclass(cls) or f"{cls.__module__}.{cls.__qualname__}" != name:
        return False
    if getattr(cls, "__abstractmethods__", None):
        return False
    if issubclass(cls, BaseEstimator) and cls is not BaseEstimator:
        # reachable from a public module above (or at) its definition: sklearn.svm for sklearn.svm._classes
        for k in range(len(parts), 0, -1):
            public = ".".join(parts[:k])
            if any(p.startswith("_") for p in parts[:k]):
                continue
            if getattr(importlib.import_module(public), cls_name, None) is cls:
                return True
        return False
    trusted_internals = getattr(importlib.import_module("skops.io._trusted_types"), "SKLEARN_INTERNAL_TYPE_NAMES", [])
    return name in trusted_internals


def check_trusted(types: Any, system: System, where: Path) -> list[str]:
    """``types`` (names, as :func:`skops_types` gives them) when every one is on ``system``'s allow-list:
    its ``trusted_types`` plus the scikit-learn estimators skops trusts by default. Else :class:`BundleError`."""
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise BundleError(f"{where}: its list of types in model.json is not a list of names; the bundle is damaged")
    allowed = set(system.trusted_types)
    outside = [t for t in types if t not in allowed and not _is_sklearn_estimator(t)]
    if outside:
        raise BundleError(f"{where}: holds types outside {system.name}'s allow-list ({', '.join(sorted(outside))}); "
                          "refused")
    return list(types)


def _load_skops(path: Path, data: bytes, system: System, recorded: Any = None) -> Any:
    """The object of a skops file, loaded trusting exactly the allowed types it holds.

    ``recorded``: the types model.json lists for the file (written by :func:`write_bundle`); they are
    checked against the allow-list before skops reads the file, and skops then refuses any other type
    in it, so an edited list gains nothing. Without a list (older bundles) the file's types are read
    from the file first.
    """
    sk = skops_io()
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        types = skops_types(data) if recorded is None else recorded
        trusted = check_trusted(types, system, path)
        try:
            return sk.loads(data, trusted=trusted)
        except UntrustedTypesFoundException:
            if recorded is None:
                raise
            # Types model.json does not list (a file replaced, or a list written with skops' full defaults):
            # decide on the file's own types instead.
            trusted = check_trusted(skops_types(data), system, path)
            return sk.loads(data, trusted=trusted)
    except BundleError:
        raise
    except UntrustedTypesFoundException as exc:
        raise BundleError(f"{path}: holds types outside {system.name}'s allow-list ({exc}); refused") from None
    except Exception as exc:  # a damaged zip or schema
        raise BundleError(f"{path}: not a readable skops file ({type(exc).__name__}: {exc})") from None


__all__ = ["BundleError", "FORMAT", "FORMAT_VERSION", "MODEL_JSON", "WEIGHTS", "write_bundle", "read_record",
           "read_system", "read_files", "check_files", "parse_files", "check_versions", "check_trusted", "skops_io",
           "skops_types", "check_feature_set", "feature_record",
           "settings_from_record", "prepare_folder", "pickle_payload", "sha256_bytes"]
