"""A damaged, tampered, unsafe or incompatible bundle is refused with one line naming what is wrong."""
from __future__ import annotations

import io
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from serbench import __version__
from serbench.bundles import BundleError, load_model, train
from serbench.bundles.format import MODEL_JSON, pickle_payload

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bundle_edits import edit_json, refused, replace_file  # noqa: E402


class Boom:
    """Unpickling this creates a marker file: proof that a loader ran the payload."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_intact_copy_loads(bundle_copy):
    assert load_model(bundle_copy("svm-linear")).labels == ["angry", "sad"]


#: An SVM bundle and its weights file: the arrays (this format) and the skops pipeline (bundles before it).
WEIGHTS = pytest.mark.parametrize("key,weights", [("svm-linear", "weights.safetensors"), ("svm-skops", "svm.skops")])


@WEIGHTS
def test_changed_weights_are_refused(bundle_copy, key, weights):
    b = bundle_copy(key)
    data = bytearray((b / weights).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (b / weights).write_bytes(bytes(data))
    refused(b, weights, "changed since the bundle was written")


@WEIGHTS
def test_truncated_file_is_refused(bundle_copy, key, weights):
    b = bundle_copy(key)
    data = (b / weights).read_bytes()
    (b / weights).write_bytes(data[: len(data) // 3])
    refused(b, weights, "truncated")


@WEIGHTS
def test_missing_file_is_refused(bundle_copy, key, weights):
    b = bundle_copy(key)
    (b / weights).unlink()
    refused(b, weights, "missing")


def test_missing_or_broken_model_json(bundle_copy, tmp_path):
    b = bundle_copy("svm-linear")
    text = (b / MODEL_JSON).read_text()
    (b / MODEL_JSON).write_text(text[: len(text) // 2])
    refused(b, "model.json", "not valid JSON")
    (b / MODEL_JSON).unlink()
    refused(b, "no model.json")
    refused(tmp_path / "nowhere", "no such model bundle folder")


def test_unknown_system_is_refused(bundle_copy):
    b = bundle_copy("svm-linear")
    edit_json(b, lambda rec: rec["system"].update(type="wav2vec-svm"))
    refused(b, "'wav2vec-svm'", "does not know", "svm-linear")


def test_future_format_or_serbench_version_is_refused(bundle_copy):
    b = bundle_copy("svm-linear")
    edit_json(b, lambda rec: rec.update(format_version=rec["format_version"] + 1))
    refused(b, "newer", "upgrade serbench")
    b = bundle_copy("svm-linear")
    edit_json(b, lambda rec: rec.update(serbench_version="99.0.0"))
    refused(b, "serbench 99.0.0", f"newer than this install ({__version__})")


def test_feature_set_computed_differently_is_refused(bundle_copy):
    b = bundle_copy("svm-linear")

    def older_librosa(rec):
        fs = rec["feature_set"]
        fs["libraries"]["librosa"] = "0.1"
        fs["params"]["n_mfcc"] = 99
        fs["key"] = "0" * 12
    edit_json(b, older_librosa)
    refused(b, "feature set MFCC is computed differently", "librosa 0.1 in the bundle", "n_mfcc")
    b = bundle_copy("svm-linear")
    edit_json(b, lambda rec: rec["feature_set"].update(name="IS99"))
    refused(b, "'IS99'", "not known")


@WEIGHTS
def test_pickle_payload_is_refused_and_never_run(bundle_copy, tmp_path, key, weights):
    marker = tmp_path / "unpickled"
    b = bundle_copy(key)
    replace_file(b, weights, pickle.dumps(Boom(marker), protocol=4))
    refused(b, weights, "pickle", "never unpickle")
    assert not marker.exists()


@pytest.mark.slow
def test_pickled_torch_weights_are_refused(bundle_copy, tmp_path):
    marker = tmp_path / "unpickled"
    b = bundle_copy("crnn")
    buf = io.BytesIO()
    torch.save({"net.x": torch.zeros(2), "boom": Boom(marker)}, buf)
    replace_file(b, "weights.safetensors", buf.getvalue())
    refused(b, "weights.safetensors", "pickle archive")
    replace_file(b, "weights.safetensors", pickle.dumps(Boom(marker)))
    refused(b, "weights.safetensors", "Python pickle")
    replace_file(b, "weights.safetensors", b"\x00" * 64)
    refused(b, "not a safetensors file")
    assert not marker.exists()


def test_skops_with_types_outside_the_allow_list_is_refused(bundle_copy, tmp_path):
    import os

    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    b = bundle_copy("svm-skops")
    replace_file(b, "svm.skops", skops.io.dumps(FunctionTransformer(func=os.system)))
    refused(b, "svm.skops", "allow-list", ".system")


def test_weights_that_do_not_fit_the_settings_are_refused(bundle_copy):
    b = bundle_copy("crnn")
    edit_json(b, lambda rec: rec["system"]["settings"].update(hidden=rec["system"]["settings"]["hidden"] + 1))
    refused(b, "crnn network does not fit its settings", "wrong shape")


@WEIGHTS
def test_file_names_outside_the_bundle_are_refused(bundle_copy, key, weights):
    b = bundle_copy(key)

    def escape(rec):
        rec["files"]["../" + weights] = rec["files"].pop(weights)
    edit_json(b, escape)
    refused(b, f"'../{weights}'", "not a plain file name")


def test_pickle_sniffing():
    assert "protocol 5" in pickle_payload(pickle.dumps([1], protocol=5))
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "NumPy object array" in pickle_payload(buf.getvalue())
    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    assert pickle_payload(buf.getvalue()) is None
    from safetensors.numpy import save

    assert pickle_payload(save({"a": np.zeros(2)})) is None


def test_train_refuses_a_system_that_cannot_be_saved_before_training(toy_systems, tmp_path, corpus):
    with pytest.raises(BundleError, match="toy-mean: this system cannot be saved"):
        train("toy-mean", "demo", corpus, tmp_path / "m", overrides={"feature": "MFCC"})
    assert not (tmp_path / "m").exists()


def test_train_refuses_a_folder_it_does_not_own(tmp_path, corpus, cache):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(BundleError, match="not empty and holds no model bundle"):
        train("svm-linear", "demo", corpus, tmp_path / "notes", overrides={"feature": "MFCC"}, cache=cache)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_overwrite_replaces_a_bundle(trained, tmp_path, corpus, cache):
    out = tmp_path / "m"
    train("svm-linear", "demo", corpus, out, overrides={"feature": "MFCC"}, cache=cache)
    with pytest.raises(BundleError, match="--overwrite"):
        train("svm-linear", "demo", corpus, out, overrides={"feature": "MFCC"}, cache=cache)
    train("svm-linear", "demo", corpus, out, overrides={"feature": "MFCC", "class_weight": "balanced"}, cache=cache,
          overwrite=True)
    assert load_model(out).name == "MFCC-svm-linear-balanced"


def test_settings_from_model_json(tmp_path):
    from serbench.bundles.format import settings_from_record
    from serbench.systems import registry

    system = registry.get("cnn-sru")
    saved = json.loads(json.dumps(system.settings("tiny", {"segments": 2}).as_dict()))
    s = settings_from_record(system, saved, tmp_path)
    assert s == system.settings("tiny", {"segments": 2})
    # The ImageNet file used in training is not needed to load the bundle (its weights are inside).
    assert settings_from_record(system, {**saved, "pretrained": str(tmp_path / "gone.pth")}, tmp_path).pretrained
    with pytest.raises(BundleError, match="cnn_lr"):
        settings_from_record(system, {**saved, "cnn_lr": -1.0}, tmp_path)
    with pytest.raises(BundleError, match="not settings of cnn-sru"):
        settings_from_record(system, {**saved, "warp_drive": 9}, tmp_path)
