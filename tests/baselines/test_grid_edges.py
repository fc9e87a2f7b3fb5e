"""A hyper-parameter chosen on the edge of its grid is a fold warning; `serbench systems` shows the grids."""
from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from serbench.baselines.svm import param_grid
from serbench.cli import cli
from serbench.systems.builtin.svm import grid_edge_warnings


def test_edge_choices_are_named_inner_ones_are_not():
    grid = param_grid("svm-linear")
    low = grid_edge_warnings({"svc__C": 1e-4}, grid)
    assert low == ["C = 0.0001 is the lowest value of its grid (0.0001, 0.001, 0.01, 0.1, 1, 10): the best C may "
                   "lie below it"]
    assert "highest" in grid_edge_warnings({"svc__C": 10.0}, grid)[0]
    assert grid_edge_warnings({"svc__C": 0.01}, grid) == []
    rbf = param_grid("svm-rbf")
    lines = grid_edge_warnings({"svc__C": 100.0, "svc__gamma": "scale"}, rbf)
    assert len(lines) == 1 and lines[0].startswith("C = 100 is the highest")
    assert grid_edge_warnings({"svc__C": 1.0, "svc__gamma": 1e-4}, rbf)[0].startswith("gamma = 0.0001 is the lowest")


def test_a_fold_that_chooses_the_lowest_C_records_the_warning():
    """Separable rows: every C scores UA 1.0 in the inner CV, the first of the grid (the lowest) wins."""
    from serbench.experiments.dataset import Dataset
    from serbench.experiments.harness import FoldContext
    from serbench.systems import registry

    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 12)
    X = rng.normal(size=(24, 5)) + 10.0 * y[:, None]
    speakers = np.repeat(["a", "b", "c", "d"], 6)
    data = Dataset(corpus="toy", labels=["angry", "sad"], y=y, speakers=speakers,
                   utterance_ids=np.array([f"u{i}" for i in range(24)]), inputs=X, fingerprint="toy")
    system = registry.get("svm-linear")
    s = system.settings(overrides={"feature": "MFCC"})
    ctx = FoldContext(run_id="t", system="x", fold="d", seed=0, checkpoint_dir=None, device="cpu")
    model = system.fit(data, np.arange(18), s, ctx)
    assert model.info["best_params"] == {"svc__C": 1e-4}
    assert any(w.startswith("C = 0.0001 is the lowest value of its grid") for w in model.info["warnings"])


def test_systems_shows_the_svm_grids():
    res = CliRunner().invoke(cli, ["systems", "svm-linear"])
    assert res.exit_code == 0 and "C      0.0001, 0.001, 0.01, 0.1, 1, 10" in res.output
    res = CliRunner().invoke(cli, ["systems", "svm-rbf"])
    assert "gamma  scale, 0.0001, 0.001, 0.01" in res.output and "C      0.1, 1, 10, 100" in res.output
    res = CliRunner().invoke(cli, ["systems", "cnn-sru"])
    assert res.exit_code == 0 and "hyper-parameters chosen" not in res.output
