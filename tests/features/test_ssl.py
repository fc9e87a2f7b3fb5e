"""Self-supervised upstreams as feature sets: pooled features equal transformers' own hidden states.

Every model here is a tiny random one of the real architecture, saved with ``save_pretrained``
into a temporary models root: no download, no network.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ssl_models import FAMILY_OF, noise, save_tiny, tiny_model  # noqa: E402

from serbench.features.registry import get_feature_set  # noqa: E402
from serbench.features.ssl import ModelFolderError, whisper_frames  # noqa: E402

SR = 16000




def split(values: np.ndarray, n_states: int, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    blocks = values.reshape(n_states, 2, hidden)
    return blocks[:, 0], blocks[:, 1]


@pytest.mark.parametrize("family", ["wav2vec2", "hubert", "wavlm", "data2vec-audio"])
def test_pooled_features_equal_the_models_hidden_states(models, family):
    name = FAMILY_OF[family]
    save_tiny(models, name)
    model, fe = tiny_model(family)
    audio = noise(0.6, seed=3)
    with torch.no_grad():
        states = model(**fe(audio, sampling_rate=SR, return_tensors="pt"), output_hidden_states=True).hidden_states
    fs = get_feature_set(name)
    names = fs.feature_names()
    assert len(names) == 3 * 2 * 16 and names[0] == "L00_mean_0000" and "L02_std_0015" in names
    values = fs.make_extractor()(audio, SR)
    means, stds = split(values, 3, 16)
    for layer, h in enumerate(states):
        np.testing.assert_allclose(means[layer], h[0].mean(0).numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(stds[layer], h[0].std(0, unbiased=False).numpy(), rtol=1e-3, atol=1e-5)


def _whisper_reference(enc, fe, audio):
    """Per hidden state: (sum over the frames that hold audio, number of such frames), with transformers directly."""
    with torch.no_grad():
        states = enc(fe(audio, sampling_rate=SR, return_tensors="pt").input_features,
                     output_hidden_states=True).hidden_states
    n = math.ceil(len(audio) / 320)
    return [h[0, :n].double().sum(0).numpy() for h in states], n


def test_whisper_pools_only_frames_that_hold_audio(models):
    save_tiny(models, "whisper-small")
    model, fe = tiny_model("whisper")
    enc = model.get_encoder()
    audio = noise(2.0, seed=1)
    extractor = get_feature_set("whisper-small").make_extractor()
    plain = extractor(audio, SR)
    padded = extractor(np.concatenate([audio, np.zeros(3 * SR, np.float32)]), SR)
    np.testing.assert_allclose(plain, padded, rtol=1e-5, atol=1e-6)
    sums, n = _whisper_reference(enc, fe, audio)
    assert n == whisper_frames(len(audio)) == 100
    means, _ = split(plain, 3, 16)
    for layer, s in enumerate(sums):
        np.testing.assert_allclose(means[layer], s / n, rtol=1e-4, atol=1e-5)


def test_a_long_whisper_file_is_pooled_over_its_30s_windows(models):
    save_tiny(models, "whisper-small")
    model, fe = tiny_model("whisper")
    enc = model.get_encoder()
    audio = noise(70.0, seed=2)
    values = get_feature_set("whisper-small").make_extractor()(audio, SR)
    windows = [audio[:30 * SR], audio[30 * SR:60 * SR], audio[60 * SR:]]
    refs = [_whisper_reference(enc, fe, w) for w in windows]
    assert [n for _, n in refs] == [1500, 1500, 500]
    total = sum(n for _, n in refs)
    means, _ = split(values, 3, 16)
    for layer in range(3):
        np.testing.assert_allclose(means[layer], sum(s[layer] for s, _ in refs) / total, rtol=1e-4, atol=1e-5)


def test_cache_key_follows_the_weights(models):
    save_tiny(models, "wavlm-base-plus", seed=0)
    fs = get_feature_set("wavlm-base-plus")
    first = fs.key
    assert fs.key == first and len(first) == 12
    assert fs.params["weights_sha256"] and fs.params["revision"]
    import shutil

    shutil.rmtree(models / "wavlm-base-plus")
    save_tiny(models, "wavlm-base-plus", seed=1)           # other weights, same name and config
    assert fs.key != first


def _one_line(exc: pytest.ExceptionInfo, folder: Path) -> str:
    text = str(exc.value)
    assert "\n" not in text and str(folder) in text
    return text


def test_a_missing_folder_is_one_line_naming_it(models):
    with pytest.raises(ModelFolderError) as exc:
        get_feature_set("hubert-large").key
    text = _one_line(exc, models / "hubert-large")
    assert "serbench models fetch hubert-large" in text and "facebook/hubert-large-ll60k" in text


def test_a_folder_of_another_architecture_is_one_line(models):
    save_tiny(models, "wavlm-base-plus", family="hubert")
    with pytest.raises(ModelFolderError) as exc:
        get_feature_set("wavlm-base-plus").key
    assert "'hubert'" in _one_line(exc, models / "wavlm-base-plus")


def test_truncated_weights_are_one_line(models):
    folder = save_tiny(models, "data2vec-base")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 100])
    with pytest.raises(ModelFolderError) as exc:
        get_feature_set("data2vec-base").key
    assert "truncated" in _one_line(exc, folder)


def test_extract_writes_layer_columns_to_the_cache_and_resumes(models, tmp_path):
    import soundfile as sf

    from serbench.features import extract, load

    save_tiny(models, "hubert-base")
    root = tmp_path / "corpus"
    for i, (spk, emo) in enumerate([("spk1m", "angry"), ("spk1m", "sad"), ("spk2f", "angry"), ("spk2f", "sad")]):
        (root / spk / emo).mkdir(parents=True)
        sf.write(root / spk / emo / "s01.wav", noise(0.4, seed=i), SR, subtype="PCM_16")
    cache = tmp_path / "cache"
    first = extract("demo", root, ["hubert-base"], cache=cache, progress=False)
    assert first.sets["hubert-base"].extracted == 4 and not first.failures()
    again = extract("demo", root, ["hubert-base"], cache=cache, progress=False)
    assert again.sets["hubert-base"].extracted == 0 and again.sets["hubert-base"].cached == 4
    X, manifest = load("demo", "hubert-base", root=root, cache=cache, progress=False)
    assert X.shape == (4, 3 * 2 * 16) and list(X.columns[:2]) == ["L00_mean_0000", "L00_mean_0001"]
    assert (manifest["status"] == "ok").all() and np.isfinite(X.to_numpy()).all()
    meta = json.loads(next((cache / "demo").glob("hubert-base-*/meta.json")).read_text())
    assert meta["params"]["weights_sha256"] and meta["params"]["hub_id"] == "facebook/hubert-base-ls960"


def test_a_cached_set_whose_weights_are_not_here_is_unknown_never_stale(models, tmp_path, monkeypatch):
    """Without the weights, a self-supervised set's key cannot be computed: `cache clear --stale` keeps its
    (expensive) features and `cache info` marks it '?', where a set at another key is stale ('*')."""
    import soundfile as sf
    from click.testing import CliRunner

    from serbench.cli import cli
    from serbench.features import extract
    from serbench.features.cache import list_folders

    save_tiny(models, "hubert-base")
    root = tmp_path / "corpus"
    for i, emo in enumerate(("angry", "sad")):
        (root / "spk1m" / emo).mkdir(parents=True)
        sf.write(root / "spk1m" / emo / "s01.wav", noise(0.4, seed=i), SR, subtype="PCM_16")
    cache = tmp_path / "cache"
    extract("demo", root, ["hubert-base"], cache=cache, progress=False)
    [folder] = list_folders(cache)
    assert folder.current is True
    monkeypatch.setenv("SERBENCH_MODELS", str(tmp_path / "elsewhere"))
    assert folder.current is None
    info = CliRunner().invoke(cli, ["cache", "info", "--cache", str(cache)])
    assert info.exit_code == 0 and f"{folder.key}?" in info.output and "cannot be checked" in info.output
    cleared = CliRunner().invoke(cli, ["cache", "clear", "--stale", "--yes", "--cache", str(cache)])
    assert cleared.exit_code == 0, cleared.output
    assert folder.path.is_dir()
