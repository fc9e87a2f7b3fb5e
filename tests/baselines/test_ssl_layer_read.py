"""The SVM and the probe read a self-supervised set one layer block at a time: the same numbers as
computed from a copy of every column (the way they read before), bit for bit."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from serbench.baselines import svm  # noqa: E402
from serbench.experiments.harness import FoldContext  # noqa: E402
from serbench.systems import registry  # noqa: E402
from serbench.systems.builtin.ssl_probe import FittedProbe  # noqa: E402
from serbench.systems.run import prepare  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ssl_data import N_STATES, WIDTH, loader, make_data, wavlm  # noqa: E402,F401  (wavlm: a fixture)


@pytest.mark.parametrize("layer", ["1", "auto"])
def test_svm_on_layer_blocks_equals_the_svm_on_a_copy_of_every_column(wavlm, layer):
    X, m = make_data(n_features=N_STATES * WIDTH)
    plan = prepare("svm-linear", "demo", "/c", overrides={"feature": "wavlm-base-plus", "layer": layer},
                   load_features=loader(X, m))
    data = plan.data
    # A fixed layer is read alone from the cache; auto reads every layer.
    assert data.inputs.shape[1] == (WIDTH if layer != "auto" else N_STATES * WIDTH)
    every = X.loc[data.utterance_ids].to_numpy(np.float64)
    for fold in plan.folds:
        ctx = FoldContext(run_id="t", system=plan.system, fold=fold.name, seed=0)
        model = plan.task.fit(data, fold.train, plan.payload, ctx)
        out = plan.task.predict(model, data, fold.test, plan.payload, ctx)
        # Before: the fold's rows with every column, then a view of each block.
        train, test = every[fold.train], every[fold.test]
        layers = range(N_STATES) if layer == "auto" else [int(layer)]
        searches = {k: svm.select_model(train[:, k * WIDTH:(k + 1) * WIDTH], data.true_labels(fold.train),
                                        data.speakers[fold.train], classifier="svm-linear", seed=0)
                    for k in layers}
        best = max(searches, key=lambda k: (searches[k].best_score_, -k))
        assert model.info["layer"] == best and model.columns == (best * WIDTH, (best + 1) * WIDTH)
        if layer == "auto":
            assert model.info["layer_inner_ua"] == {str(k): float(v.best_score_) for k, v in searches.items()}
        assert model.info["best_params"] == searches[best].best_params_
        np.testing.assert_array_equal(out.scores, svm.decision_scores(searches[best], test[:, slice(*model.columns)],
                                                                      data.labels))
        # A bundle predicts from whole rows (every layer, as extraction gives them): the same scores.
        whole = dataclasses.replace(data, inputs=every, meta={})
        np.testing.assert_array_equal(plan.task.predict(model, whole, fold.test, plan.payload, ctx).scores,
                                      out.scores)


def test_probe_statistics_and_inputs_equal_those_of_the_whole_matrix():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4 * 24)) * 10.0 ** rng.integers(-4, 5, size=4 * 24)
    X[:, 5] = 3.0                                                       # a constant column
    rows = np.sort(rng.choice(50, size=37, replace=False))
    data = SimpleNamespace(inputs=X)
    probe = registry.get("ssl-probe")
    mean, scale = probe._statistics(data, rows, 4)
    whole = np.asarray(X[rows], dtype=np.float64)
    np.testing.assert_array_equal(mean, whole.mean(0))
    np.testing.assert_array_equal(scale, whole.std(0))
    scale[scale < 1e-12] = 1.0
    model = FittedProbe(None, mean, scale, {})
    before = torch.as_tensor((whole - mean) / scale, dtype=torch.float32).reshape(len(rows), 4, -1)
    after = probe._tensor(data, rows, model, 4, "cpu")
    assert after.dtype == torch.float32 and torch.equal(after, before)
