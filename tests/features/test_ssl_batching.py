"""Self-supervised upstreams: utterances batched together give the features each gives alone.

Tiny random models of every family, saved with ``save_pretrained`` into a temporary models root.
The layer-normalized wav2vec2 / HuBERT / WavLM front-ends (the large models') pad with the
attention mask; group-normalized front-ends and data2vec batch only windows of equal length;
Whisper batches any windows (each a padded 30-s frame).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ssl_models import TINY_SSL, TINY_SSL_20MS, noise, save_tiny, tiny_model  # noqa: E402

import importlib  # noqa: E402

from serbench.features.registry import FeatureSetError, get_feature_set  # noqa: E402
from serbench.features.ssl import Encoder, plan_batches, windows  # noqa: E402

SR = 16000
RTOL, ATOL = 1e-4, 1e-5
#: The large models' names, by family: a layer-normalized front-end whose extractor returns the mask.
extract = importlib.import_module("serbench.features.extract")   # the module, not the function it exports
LAYER_NORM = {"wav2vec2": "wav2vec2-large-robust", "hubert": "hubert-large", "wavlm": "wavlm-large"}




def save_layer_norm(root: Path, family: str, real_rate: bool = False) -> str:
    """A tiny model of ``family`` shaped like the large ones: layer-norm front-end, stable layer norm, the mask."""
    import transformers as T

    name = LAYER_NORM[family]
    torch.manual_seed(0)
    config_cls, model_cls = {"wav2vec2": (T.Wav2Vec2Config, T.Wav2Vec2Model), "hubert": (T.HubertConfig, T.HubertModel),
                             "wavlm": (T.WavLMConfig, T.WavLMModel)}[family]
    model = model_cls(config_cls(**(TINY_SSL_20MS if real_rate else TINY_SSL), feat_extract_norm="layer",
                                 do_stable_layer_norm=True)).eval()
    fe = T.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=True,
                                    return_attention_mask=True)
    model.save_pretrained(root / name)
    fe.save_pretrained(root / name)
    return name


class Spy:
    """Records the window lengths of every forward pass of an encoder."""

    def __init__(self, encoder: Encoder) -> None:
        self.calls: list[list[int]] = []
        real = encoder._forward

        def forward(batch):
            self.calls.append([len(w) for w in batch])
            return real(batch)

        encoder._forward = forward


def alone_and_batched(name: str, signals: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray], Spy]:
    alone = [get_feature_set(name).make_extractor()(x, SR) for x in signals]
    encoder = get_feature_set(name).make_extractor()
    spy = Spy(encoder)
    return alone, encoder.batch(signals, SR), spy


@pytest.mark.parametrize("family", sorted(LAYER_NORM))
def test_padded_batch_equals_each_utterance_alone(models, family):
    name = save_layer_norm(models, family)
    signals = [noise(0.9, 1), noise(1.6, 2), noise(0.45, 3)]
    alone, batched, spy = alone_and_batched(name, signals)
    assert get_feature_set(name).make_extractor().mode == "padded"
    # One forward pass held all three lengths, padded to the longest.
    assert spy.calls == [sorted(map(len, signals), reverse=True)]
    for a, b in zip(alone, batched):
        assert np.isfinite(b).all()
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL)


def test_padding_changes_the_other_front_ends_so_they_batch_equal_lengths_only(models):
    """Group-normalized front-ends and data2vec: a padded window's real frames differ (the reason for the
    rule), so their batches hold windows of one length; results equal each file alone."""
    fe_kw = dict(sampling_rate=SR, padding=True, return_tensors="pt")
    long, short = noise(1.6, 2), noise(0.9, 1)
    for family, name in (("wav2vec2", "wav2vec2-base"), ("data2vec-audio", "data2vec-base")):
        model, fe = tiny_model(family)
        with torch.no_grad():
            alone = model(**fe(short, **fe_kw), output_hidden_states=True).hidden_states[-1][0]
            mask = {"return_attention_mask": True} if family == "data2vec-audio" else {}
            padded = model(**fe([long, short], **fe_kw, **mask), output_hidden_states=True).hidden_states[-1][1]
        assert float((padded[:len(alone)] - alone).abs().max()) > 1e-2
        save_tiny(models, name)
        twin = noise(0.9, 7)                                   # the same length as ``short``: they may share
        signals = [short, long, twin]
        before, batched, spy = alone_and_batched(name, signals)
        assert sorted(map(sorted, spy.calls)) == [[0.9 * SR, 0.9 * SR], [1.6 * SR]]
        for a, b in zip(before, batched):
            np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL)


def test_whisper_windows_of_different_files_share_a_batch(models, monkeypatch):
    save_tiny(models, "whisper-small")
    monkeypatch.setenv("SERBENCH_SSL_BATCH_S", "120")           # four 30-s frames
    signals = [noise(2.0, 1), noise(35.0, 2), noise(0.5, 3)]
    alone, batched, spy = alone_and_batched("whisper-small", signals)
    assert sorted(len(c) for c in spy.calls) == [4]           # 30 s + 5 s + 2 s + 0.5 s, one pass
    for a, b in zip(alone, batched):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL)


@pytest.mark.slow
def test_long_files_pad_across_windows_and_the_budget_splits_the_batches(models, monkeypatch):
    """Several windows per file (20 s each, a tail), the 20-ms frame rate of the real models, a budget
    smaller than the files: every batch stays within it and the pooled features equal each file alone."""
    name = save_layer_norm(models, "wavlm", real_rate=True)
    monkeypatch.setenv("SERBENCH_SSL_BATCH_S", "45")
    signals = [noise(44.0, 1), noise(3.5, 2), noise(21.5, 3), noise(2.0, 4)]
    alone, batched, spy = alone_and_batched(name, signals)
    lengths = sorted((b - a for x in signals for a, b in windows(x.size, "wavlm")), reverse=True)
    assert sorted(n for c in spy.calls for n in c) == sorted(lengths)
    assert all(len(c) * max(c) <= 45 * SR for c in spy.calls) and len(spy.calls) < len(lengths)
    assert any(len(set(c)) > 1 for c in spy.calls)             # some batch padded windows of different lengths
    for a, b in zip(alone, batched):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL)


def test_short_and_silent_files_in_a_batch(models):
    name = save_layer_norm(models, "hubert")
    tail = np.concatenate([noise(0.8, 2), np.zeros(SR, np.float32)])     # trailing silence is cut first
    out = get_feature_set(name).make_extractor().batch([noise(0.01, 1), tail, noise(0.8, 2)], SR)
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
    np.testing.assert_allclose(out[1], out[2], rtol=RTOL, atol=ATOL)


def test_plan_batches_keeps_the_budget_and_the_rules():
    lengths = [16000, 48000, 16000, 30000, 16000, 500000, 47000]
    for mode in ("padded", "equal", "whisper"):
        plan = plan_batches(lengths, 100000, mode)
        assert sorted(i for b in plan for i in b) == list(range(len(lengths)))
        for b in plan:
            width = 480000 if mode == "whisper" else max(lengths[i] for i in b)
            assert len(b) == 1 or len(b) * width <= 100000
            assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)
            if mode == "equal":
                assert len({lengths[i] for i in b}) == 1
    assert plan_batches(lengths, 100000, "equal")[-1] == [0, 2, 4]      # equal lengths, input order
    assert plan_batches(lengths, 100000, "padded")[:2] == [[5], [1, 6]]
    assert plan_batches([10, 10], 1_000_000, "whisper") == [[0, 1]]


def test_a_bad_batch_budget_is_one_line(models, monkeypatch):
    save_tiny(models, "hubert-base")
    monkeypatch.setenv("SERBENCH_SSL_BATCH_S", "lots")
    with pytest.raises(FeatureSetError, match=r"^SERBENCH_SSL_BATCH_S='lots': give the seconds") as exc:
        get_feature_set("hubert-base").make_extractor()
    assert "\n" not in str(exc.value)


def _corpus(root: Path, lengths: dict[str, float]) -> Path:
    import soundfile as sf

    for i, (rel, seconds) in enumerate(lengths.items()):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, noise(seconds, i), SR, subtype="PCM_16")
    return root


LENGTHS = {"spk1m/angry/a.wav": 0.5, "spk1m/angry/b.wav": 1.5, "spk1m/sad/c.wav": 0.9, "spk2f/angry/d.wav": 1.2,
           "spk2f/sad/e.wav": 0.6, "spk2f/sad/f.wav": 1.0}


def test_extraction_batches_files_by_length_and_caches_what_each_gives_alone(models, tmp_path, monkeypatch):
    """The loop hands the encoder files of similar length (longest first), writes every row under its own
    utterance, counts seconds of audio on its bar, and resumes after an interrupt."""
    name = save_layer_norm(models, "wavlm")
    monkeypatch.setenv("SERBENCH_SSL_BATCH_S", "2.5")            # chunks of at most 2.5 s of audio
    root = _corpus(tmp_path / "corpus", LENGTHS)
    seen: list[list[int]] = []
    real_batch = Encoder.batch
    stop = {"after": 1}

    def batch(self, signals, sr):
        if len(seen) >= stop["after"]:
            raise KeyboardInterrupt
        seen.append([len(x) for x in signals])
        return real_batch(self, signals, sr)

    monkeypatch.setattr(Encoder, "batch", batch)
    bars = []
    real_progress = extract._progress

    def progress(enabled):
        bars.append(real_progress(False))
        return bars[-1]

    monkeypatch.setattr(extract, "_progress", progress)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        extract.extract("demo", root, [name], cache=cache, progress=True)
    assert seen == [[int(1.5 * SR)]]                             # the longest file first, alone (1.5 + 1.2 > 2.5)
    stop["after"] = 99
    report = extract.extract("demo", root, [name], cache=cache, progress=True)
    assert report.sets[name].extracted == 5 and report.sets[name].cached == 1 and not report.failures()
    assert seen[1:] == [[int(1.2 * SR), int(1.0 * SR)], [int(0.9 * SR), int(0.6 * SR), int(0.5 * SR)]]
    [task] = bars[-1].tasks
    assert task.fields["unit"] == "s" and task.total == pytest.approx(sum(LENGTHS.values()) - 1.5)
    assert task.completed == pytest.approx(task.total)
    X, manifest = extract.load("demo", name, root=root, cache=cache, progress=False)
    encoder = get_feature_set(name).make_extractor()
    for u, path in zip(manifest["utterance_id"], manifest["path"]):
        import soundfile as sf

        x, _ = sf.read(path, dtype="float32")
        np.testing.assert_allclose(X.loc[u].to_numpy(), real_batch(encoder, [x], SR)[0], rtol=RTOL, atol=ATOL)


def test_a_file_that_breaks_a_batch_fails_alone(models, tmp_path, monkeypatch):
    name = save_layer_norm(models, "hubert")
    root = _corpus(tmp_path / "corpus", LENGTHS)
    real_batch = Encoder.batch

    def fragile(self, signals, sr):
        if any(len(x) == int(0.9 * SR) for x in signals):
            raise RuntimeError("cannot take this file")
        return real_batch(self, signals, sr)

    monkeypatch.setattr(Encoder, "batch", fragile)
    report = extract.extract("demo", root, [name], cache=tmp_path / "cache", progress=False)
    [failure] = report.sets[name].failed
    assert failure.utterance_id == "spk1m_sad_c" and "cannot take this file" in failure.reason
    assert report.sets[name].extracted == 5


def test_the_other_sets_still_count_files(models, tmp_path, monkeypatch):
    root = _corpus(tmp_path / "corpus", LENGTHS)
    bars = []
    real_progress = extract._progress

    def progress(enabled):
        bars.append(real_progress(False))
        return bars[-1]

    monkeypatch.setattr(extract, "_progress", progress)
    extract.extract("demo", root, ["MFCC"], cache=tmp_path / "cache", progress=True)
    [task] = bars[0].tasks
    assert "unit" not in task.fields and task.total == task.completed == len(LENGTHS)


def test_a_run_of_a_batched_set_and_a_file_by_file_set_gives_each_its_own_rows(models, tmp_path):
    name = save_layer_norm(models, "hubert")
    root = _corpus(tmp_path / "corpus", LENGTHS)
    report = extract.extract("demo", root, [name, "MFCC"], cache=tmp_path / "both", progress=False)
    assert report.sets[name].extracted == report.sets["MFCC"].extracted == len(LENGTHS)
    for fs, alone in ((name, tmp_path / "ssl"), ("MFCC", tmp_path / "mfcc")):
        extract.extract("demo", root, [fs], cache=alone, progress=False)
        X, _ = extract.load("demo", fs, root=root, cache=tmp_path / "both", progress=False)
        Y, _ = extract.load("demo", fs, root=root, cache=alone, progress=False)
        np.testing.assert_allclose(X.to_numpy(), Y.to_numpy(), rtol=RTOL, atol=ATOL)


def test_the_seconds_column_of_the_bar():
    bar = extract._progress(False)
    files = bar.add_task("a", total=4)
    audio = bar.add_task("b", total=12.5, unit="s")
    bar.advance(files, 1)
    bar.advance(audio, 2.5)
    [column] = [c for c in bar.columns if type(c).__name__ == "Done"]
    assert column.render(bar.tasks[0]).plain == "1/4"
    assert column.render(bar.tasks[1]).plain.startswith("2/12 s of audio")


@pytest.mark.slow
def test_two_workers_give_the_rows_of_one(models, tmp_path):
    """Chunks on two worker processes come back in any order; the rows land under their own utterances.

    Run in a fresh interpreter: workers fork from a server that keeps the environment it started with,
    and another test may have started it before this one set the models root."""
    import os
    import subprocess

    name = save_layer_norm(models, "wav2vec2")
    root = _corpus(tmp_path / "corpus", LENGTHS)
    code = (f"from serbench.features import extract; import sys; "
            f"[extract('demo', {str(root)!r}, [{name!r}], cache=c, progress=False, jobs=j) "
            f"for c, j in ((sys.argv[1], 1), (sys.argv[2], 2))]")
    env = {**os.environ, "SERBENCH_SSL_BATCH_S": "2.5"}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "c1"), str(tmp_path / "c2")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    X1, _ = extract.load("demo", name, root=root, cache=tmp_path / "c1", progress=False)
    X2, _ = extract.load("demo", name, root=root, cache=tmp_path / "c2", progress=False)
    assert list(X1.index) == list(X2.index) and np.isfinite(X1.to_numpy()).all()
    np.testing.assert_allclose(X2.to_numpy(), X1.to_numpy(), rtol=RTOL, atol=ATOL)
