"""Every registered system's export/restore: the restored model predicts what the fitted one did."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from serbench.bundles.format import read_files, write_bundle
from serbench.experiments.dataset import Dataset
from serbench.experiments.harness import FoldContext
from serbench.systems import SystemOptionError, registry

torch.set_num_threads(1)

LABELS = ["angry", "sad"]
OVERRIDES = {"cnn-sru": {"segments": 2}, "cnn": {"segments": 2}, "sru": {"segments": 2},
             "svm-linear": {"feature": "MFCC"}, "svm-rbf": {"feature": "MFCC"}, "svm-liblinear": {"feature": "MFCC"},
             "ssl-probe": {"feature": "wavlm-base-plus"}}


def dataset(kind: str, seed: int = 0) -> Dataset:
    """3 speakers x 2 classes x 3 utterances: features (n, 12) or log-mel (3, 60, T) with class-bright bands."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.repeat([0, 1], 3), 3)
    speakers = np.repeat(["spk0", "spk1", "spk2"], 6)
    if kind == "features":
        inputs = rng.normal(size=(18, 12)) + 2.0 * y[:, None] * np.linspace(-1, 1, 12)[None, :]
    else:
        inputs = []
        for c in y:
            m = rng.normal(size=(3, 60, int(rng.integers(40, 90)))).astype(np.float32) - 5.0
            lo = 30 if c == 0 else 2
            m[0, lo:lo + 10] += 4.0
            inputs.append(m)
    return Dataset(corpus="synthetic", labels=list(LABELS), y=y.astype(np.int64), speakers=speakers,
                   utterance_ids=np.array([f"u{i}" for i in range(18)]), inputs=inputs,
                   fingerprint=f"export-test-{kind}-{seed}",
                   meta={"layer_blocks": 2} if kind == "features" else {})   # ssl-probe: 2 layers of 6


CASES = [pytest.param(name, OVERRIDES.get(name), id=name) for name in registry.names()] + [
    # Cross-fitted CNN+SRU: K CNNs and K SRU heads, averaged.
    pytest.param("cnn-sru", {"segments": 2, "sru_crossfit": 2}, id="cnn-sru-xfit2", marks=pytest.mark.slow),
    # Trained on time shifts, tested on three: the restored model cuts the same context images and crops.
    pytest.param("cnn-sru", {"segments": 2, "cnn_time_shift": 0.25, "cnn_test_crops": 3}, id="cnn-sru-shift"),
    # An ensemble of two seeds: both members' CNNs and SRUs travel.
    pytest.param("cnn-sru", {"segments": 2, "ensemble": 2}, id="cnn-sru-ensemble2"),
    # The SRU as a correction to its CNN's FC8: the frozen copy of FC8 travels in the head.
    pytest.param("cnn-sru", {"segments": 2, "sru_residual": True}, id="cnn-sru-residual"),
    # An SVM on one layer block of a self-supervised set: the block's columns travel with the model.
    pytest.param("svm-linear", {"feature": "wavlm-base-plus", "layer": "1"}, id="svm-linear-ssl-layer")]


@pytest.mark.parametrize("name,overrides", CASES)
def test_restored_model_predicts_what_the_fitted_one_did(tmp_path, name, overrides):
    system = registry.get(name)
    assert system.exportable
    s = system.settings("tiny" if system.kind == "deep" else None, overrides)
    data = dataset("features" if system.inputs == "features" else "melseg")
    ctx = FoldContext(run_id="t", system=name, fold="t", seed=0, device="cpu", threads=1, log=lambda _m: None)
    rows = np.arange(len(data))
    fitted = system.fit(data, rows, s, ctx)
    before = system.predict(fitted, data, rows, s, ctx)
    parts = system.export(fitted, s)
    json.dumps(parts.meta)
    json.dumps(parts.normalization)
    record = write_bundle(tmp_path / "b", parts, {"system": {"name": name}, "scores": parts.score_kind,
                                                   "model": parts.meta})
    loaded = read_files(tmp_path / "b", record, system)
    restored = system.restore(loaded, s, LABELS, device="cpu")
    test = dataset("features" if system.inputs == "features" else "melseg", seed=1)   # unseen inputs
    after = system.predict(restored, test, rows, s, ctx)
    again = system.predict(fitted, test, rows, s, ctx)
    np.testing.assert_allclose(after.scores, again.scores, rtol=0, atol=1e-12)
    if again.predicted is not None:
        np.testing.assert_array_equal(after.predicted, again.predicted)
    assert before.scores.shape == (18, 2)
    assert parts.score_kind == ("decision" if system.kind == "baseline" else "probability")


def test_restore_refuses_parts_of_another_shape(tmp_path):
    system = registry.get("crnn")
    s = system.settings("tiny")
    data = dataset("melseg")
    ctx = FoldContext(run_id="t", system="crnn", fold="t", seed=0, device="cpu", threads=1, log=lambda _m: None)
    parts = system.export(system.fit(data, np.arange(len(data)), s, ctx), s)
    with pytest.raises(SystemOptionError, match="does not fit its settings"):
        system.restore(parts, s.replace(hidden=s.hidden + 2), LABELS)
    with pytest.raises(SystemOptionError, match="does not fit its settings"):
        system.restore(parts, s, LABELS + ["happy"])                  # another number of classes
    del parts.tensors["norm.mean"]
    with pytest.raises(SystemOptionError, match="normalization"):
        system.restore(parts, s, LABELS)


@pytest.mark.parametrize("name,extra", [("cnn-sru", {}), ("cnn", {}), ("sru", {}),
                                        ("cnn-sru", {"sru_crossfit": 2})])
def test_ensemble_adds_new_seeds_to_the_single_model_and_averages_them(name, extra):
    from serbench.systems.builtin.cnn_sru import CascadeModel

    system = registry.get(name)
    data = dataset("melseg")
    ctx = FoldContext(run_id="t", system=name, fold="t", seed=0, device="cpu", threads=1, log=lambda _m: None)
    rows = np.arange(len(data))
    single_s = system.settings("tiny", {"segments": 2, **extra})
    s = system.settings("tiny", {"segments": 2, "ensemble": 2, **extra})
    single, ens = system.fit(data, rows, single_s, ctx), system.fit(data, rows, s, ctx)
    parts = "cnns" if system.uses_cnn else "heads"
    g = len(getattr(single, parts))                    # models per member (cross-fitted groups)
    assert len(getattr(ens, parts)) == 2 * g

    def weights(model, i):
        net = model.cnns[i][0] if system.uses_cnn else model.heads[i]
        return [p.detach().clone() for p in net.parameters()]

    # Member 0 is the single model itself (same seeds); member 1 learned from another seed.
    for i in range(g):
        assert all(torch.equal(a, b) for a, b in zip(weights(ens, i), weights(single, i)))
    assert not all(torch.equal(a, b) for a, b in zip(weights(ens, 0), weights(ens, g)))
    both = system.predict(ens, data, rows, s, ctx).scores
    alone = [system.predict(CascadeModel(cnns=ens.cnns[i * g:(i + 1) * g], heads=ens.heads[i * g:(i + 1) * g],
                                         sru_norm=ens.sru_norm, info={"timings": {}}),
                            data, rows, s, ctx).scores for i in range(2)]
    np.testing.assert_allclose(both, np.mean(alone, axis=0), rtol=0, atol=1e-6)
    assert not np.allclose(alone[0], alone[1])
    assert any(stage.endswith("-m1") for stage in ens.info["curves"])


def test_cnn_ablation_trains_the_cascades_cnns():
    """The cnn system and stage 1 of cnn-sru draw the same seeds: the same CNNs, member by member (so the
    recipe driver may score the CNN ablation from a cascade's CNNs)."""
    data = dataset("melseg")
    rows = np.arange(len(data))
    fitted = {}
    for name in ("cnn", "cnn-sru"):
        ctx = FoldContext(run_id="t", system=name, fold="t", seed=0, device="cpu", threads=1, log=lambda _m: None)
        s = registry.get(name).settings("tiny", {"segments": 2, "ensemble": 2})
        fitted[name] = registry.get(name).fit(data, rows, s, ctx)
    assert len(fitted["cnn"].cnns) == len(fitted["cnn-sru"].cnns) == 2
    for (a, _), (b, _) in zip(fitted["cnn"].cnns, fitted["cnn-sru"].cnns):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
