"""The SVM on a self-supervised set: one layer's block, given or chosen by the inner CV on training speakers only."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

from serbench.baselines import svm  # noqa: E402
from serbench.experiments.harness import FoldContext  # noqa: E402
from serbench.systems import registry  # noqa: E402
from serbench.systems.run import prepare  # noqa: E402
from serbench.systems.settings import SettingsError  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ssl_data import N_STATES, WIDTH, loader, make_data, wavlm  # noqa: E402,F401  (wavlm: a fixture)


def run_folds(X, m, layer=None):
    overrides = {"feature": "wavlm-base-plus", **({"layer": layer} if layer is not None else {})}
    plan = prepare("svm-linear", "demo", "/c", overrides=overrides, load_features=loader(X, m))
    out = {}
    for fold in plan.folds:
        ctx = FoldContext(run_id="t", system=plan.system, fold=fold.name, seed=0)
        model = plan.task.fit(plan.data, fold.train, plan.payload, ctx)
        out[fold.name] = (model, plan.task.predict(model, plan.data, fold.test, plan.payload, ctx))
    return plan, out


@pytest.mark.slow
def test_auto_layer_is_chosen_on_training_speakers_only(wavlm, monkeypatch):
    X, m = make_data(n_features=N_STATES * WIDTH)
    matrix, speakers = X.to_numpy(), m["speaker"].to_numpy(str)
    calls = []
    real = svm.select_model

    def spy(Xs, y, spk, **kw):
        # which rows of the whole matrix these are (a layer block matches its own columns exactly)
        seen = set()
        for row in Xs:
            hits = [i for i in range(len(matrix)) for b in range(N_STATES)
                    if np.array_equal(row, matrix[i, b * WIDTH:(b + 1) * WIDTH])]
            assert hits, "a fitted row matches no data row"
            seen |= set(speakers[hits])
        calls.append((Xs.shape[1], seen, set(np.asarray(spk))))
        return real(Xs, y, spk, **kw)

    monkeypatch.setattr(svm, "select_model", spy)
    plan, folds = run_folds(X, m)
    assert plan.payload.layer == "auto" and plan.config["settings"]["layer"] == "auto"
    assert plan.config["upstream"]["hub_id"] == "microsoft/wavlm-base-plus"
    assert len(plan.config["upstream"]["weights_sha256"]) == 64
    assert len(calls) == len(folds) * N_STATES          # one model selection per layer per fold
    for i, test_speaker in enumerate(sorted(folds)):
        for width, seen, given in calls[i * N_STATES:(i + 1) * N_STATES]:
            assert width == WIDTH and test_speaker not in seen and test_speaker not in given
        info = folds[test_speaker][0].info
        assert set(info["layer_inner_ua"]) == {"0", "1", "2"}
        assert info["layer"] == max(range(N_STATES), key=lambda k: (info["layer_inner_ua"][str(k)], -k))


@pytest.mark.slow
def test_the_chosen_layer_ignores_the_test_speaker(wavlm):
    X, m = make_data(n_features=N_STATES * WIDTH)
    poisoned = X.copy()
    rows = (m["speaker"] == "s3").to_numpy()
    poisoned.loc[rows] = np.random.default_rng(1).normal(size=(rows.sum(), X.shape[1])) * 1e6
    _, clean = run_folds(X, m)
    _, dirty = run_folds(poisoned, m)
    a, b = clean["s3"][0].info, dirty["s3"][0].info
    assert a["layer"] == b["layer"] and a["layer_inner_ua"] == b["layer_inner_ua"]
    assert a["best_params"] == b["best_params"]


def test_a_given_layer_reads_only_its_block(wavlm):
    X, m = make_data(n_features=N_STATES * WIDTH)
    _, folds = run_folds(X, m, layer="2")
    for model, out in folds.values():
        assert model.columns == (2 * WIDTH, 3 * WIDTH) and model.info["layer"] == 2
        assert "layer_inner_ua" not in model.info and np.isfinite(out.scores).all()


def test_layer_is_refused_for_other_sets_and_out_of_range(wavlm):
    with pytest.raises(SettingsError, match="--layer 3: IS10 has no layers"):
        registry.get("svm-linear").settings(None, {"feature": "IS10", "layer": "3"})
    with pytest.raises(SettingsError, match="--layer top"):
        registry.get("svm-linear").settings(None, {"feature": "wavlm-base-plus", "layer": "top"})
    assert "layer" not in registry.get("svm-linear").settings(None, {"feature": "IS10"}).as_dict()
    X, m = make_data(n_features=N_STATES * WIDTH)
    with pytest.raises(Exception, match="--layer 3: wavlm-base-plus has layers 0..2"):
        run_folds(X, m, layer="3")
