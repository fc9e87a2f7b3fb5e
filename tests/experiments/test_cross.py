"""Cross-corpus evaluation on synthetic feature tables with a known shift (no audio files)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_helpers import corpus_table, loader_of, two_corpora  # noqa: E402

from serbench.experiments.cross import (  # noqa: E402
    CrossError, cross_metrics, is_cross_name, parse_stored_name, shared_emotions, speaker_bootstrap, stored_name,
)
from serbench.experiments.metrics import unweighted_accuracy  # noqa: E402
from serbench.experiments.store import load_run  # noqa: E402
from serbench.features import CorpusHandle  # noqa: E402
from serbench.systems.cross import plan_cross, run_cross, status  # noqa: E402

SVM = [("svm-linear", {"feature": "IS09"})]


def handles():
    return [CorpusHandle.of("demo", "/nowhere/demo"), CorpusHandle.of("casia", "/nowhere/casia")]


def run_matrix(tmp_path, tables, adapt=("none",), **kw):
    plan = plan_cross(handles(), systems=SVM, adapt=adapt, load_features=loader_of(tables), **kw)
    outcomes = run_cross(plan, runs=tmp_path / "runs", log=lambda m: None)
    return plan, outcomes


def by_label(outcomes):
    return {(o.planned.train, o.planned.test, o.planned.adapt): o for o in outcomes}


def test_matrix_runs_diagonal_is_loso_and_off_diagonal_beats_chance(tmp_path):
    from serbench.systems.run import run_system

    tables = two_corpora(offset=0.5, scale=1.2)    # a moderate shift: still learnable across
    plan, outcomes = run_matrix(tmp_path, tables)
    assert plan.emotions == ["angry", "happy", "neutral", "sad"]
    got = by_label(outcomes)
    assert {k[:2] for k in got} == {("demo", "demo"), ("casia", "casia"), ("demo", "casia"), ("casia", "demo")}
    assert all(o.action == "ran" for o in outcomes)
    for (train, test, _a), o in got.items():
        run = load_run(o.path)
        if train == test:
            # the diagonal is the in-corpus LOSO run on the shared emotions: the same predictions as serbench baseline
            loso = run_system("svm-linear", test, f"/nowhere/{test}", overrides={"feature": "IS09"},
                              emotions=plan.emotions, runs=tmp_path / "loso", load_features=loader_of(tables))
            assert run.record["config"]["identity"]["hash"] == loso.record["config"]["identity"]["hash"]
            pd.testing.assert_frame_equal(run.predictions, loso.predictions)
            assert run.record["config"]["protocol"] == "loso"
        else:
            assert run.record["config"]["protocol"] == f"cross:{train}->{test}"
            assert run.path.parent.name == f"IS09-svm-linear-from-{train}" and run.corpus == test
            assert list(run.predictions["fold"].unique()) == [f"{train}->{test}"]
            assert run.ua > 0.25 + 0.2, f"{train}->{test} UA {run.ua:.2f} is not above chance (0.25)"
    # a second call finds every cell in the store by identity
    again = run_cross(plan, runs=tmp_path / "runs", log=lambda m: None)
    assert [o.action for o in again] == ["done"] * len(outcomes)


def test_adapt_corpus_undoes_a_pure_level_shift(tmp_path):
    tables = two_corpora(offset=8.0)      # the test corpus's features shifted by a constant
    plan, outcomes = run_matrix(tmp_path, tables, adapt=("none", "corpus"), diagonal=False)
    got = {k: load_run(o.path).ua for k, o in by_label(outcomes).items()}
    for pair in (("demo", "casia"), ("casia", "demo")):
        none, corpus = got[(*pair, "none")], got[(*pair, "corpus")]
        assert none < 0.45, f"{pair}: a level shift of 8 should break the unadapted SVM (UA {none:.2f})"
        assert corpus > 0.8 and corpus > none + 0.3, f"{pair}: corpus z-norm should undo it ({none:.2f} -> {corpus:.2f})"
    # without a shift, corpus z-norm changes little: the gain above is the shift's
    names = {o.planned.name for o in outcomes}
    assert "IS09-svm-linear-from-demo-adapt-corpus" in names and "IS09-svm-linear-from-demo" in names
    idents = {o.planned.adapt: o.planned.hash for o in outcomes if o.planned.train == "demo"}
    assert idents["none"] != idents["corpus"]
    # the run listing says where a cross run trained and how it adapted, not "defaults"
    from serbench.systems.identity import run_summary

    for o in outcomes:
        ident, what = run_summary(load_run(o.path).record["config"], o.planned.name)
        assert ident == o.planned.hash
        assert what == f"trained on {o.planned.train}, adapt {o.planned.adapt}"


def _spy(monkeypatch):
    """Record every row matrix the scaler and the SVC are fitted on (StandardScaler.fit, SVC.fit)."""
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    seen = []
    real_scaler, real_svc = StandardScaler.fit, SVC.fit

    def scaler_fit(this, X, y=None, **kw):
        seen.append(np.asarray(X, float).copy())
        return real_scaler(this, X, y, **kw)

    def svc_fit(this, X, y, **kw):
        seen.append(("svc", len(X), set(map(str, y))))
        return real_svc(this, X, y, **kw)

    monkeypatch.setattr(StandardScaler, "fit", scaler_fit)
    monkeypatch.setattr(SVC, "fit", svc_fit)
    return seen


@pytest.mark.parametrize("adapt", ["none", "corpus"])
def test_nothing_fitted_sees_the_test_corpus(tmp_path, monkeypatch, adapt):
    from serbench.experiments.harness import FoldContext
    from serbench.systems.cross import _Data, prepare_cell

    tables = two_corpora(offset=3.0)
    plan = plan_cross(handles(), systems=SVM, adapt=[adapt], pairs=[("demo", "casia")], diagonal=False,
                      load_features=loader_of(tables))
    (cell,) = plan.cells
    run = prepare_cell(cell, plan, _Data(plan))
    data, fold = run.data, run.folds[0]
    assert set(np.unique(data.speakers[fold.train]).tolist()) == {f"demo:d{i}" for i in range(4)}
    assert set(np.unique(data.speakers[fold.test]).tolist()) == {f"casia:c{i}" for i in range(4)}
    seen = _spy(monkeypatch)
    run.task.fit(data, fold.train, run.payload, FoldContext(run_id="t", system=run.system, fold=fold.name, seed=0))
    test_rows = data.inputs[fold.test]
    scalers = [x for x in seen if isinstance(x, np.ndarray)]
    assert scalers and any(isinstance(x, tuple) for x in seen)
    for X in scalers:   # every fitted row is a training-corpus row (the inner CV's splits included)
        d = ((X[:, None, :] - data.inputs[None, fold.train, :]) ** 2).sum(-1).min(1)
        assert np.allclose(d, 0), "a fitted step saw a row that is not a training-corpus row"
        dt = ((X[:, None, :] - test_rows[None, :, :]) ** 2).sum(-1).min(1)
        assert (dt > 1e-9).all(), "a fitted step saw a test-corpus row"
    if adapt == "none":   # and the test rows are the test corpus's features untouched
        X, m = loader_of(tables)("casia", "IS09", root=None, emotions=plan.emotions)
        np.testing.assert_allclose(test_rows, X.loc[data.utterance_ids[fold.test]].to_numpy())
    else:                 # each corpus standardized with its own statistics only
        np.testing.assert_allclose(test_rows.mean(0), 0, atol=1e-9)
        np.testing.assert_allclose(data.inputs[fold.train].mean(0), 0, atol=1e-9)


def test_disjoint_label_sets_are_refused_in_one_line():
    a = corpus_table("a", classes=("angry", "happy"))
    b = corpus_table("b", classes=("sad", "neutral"))
    with pytest.raises(CrossError) as err:
        plan_cross(handles(), systems=SVM, load_features=loader_of({"demo": a, "casia": b}))
    msg = str(err.value)
    assert "\n" not in msg and "share 0 emotion(s)" in msg and "demo: angry, happy" in msg
    with pytest.raises(CrossError, match=r"^--emotions angry,fear: corpus demo has no fear utterances"):
        shared_emotions({"demo": a[1], "casia": corpus_table("c", classes=("angry", "fear"))[1]}, ["angry", "fear"])


def test_recorded_mapping_is_what_the_run_used(tmp_path):
    tables = two_corpora()
    plan, outcomes = run_matrix(tmp_path, tables, diagonal=False)
    for o in outcomes:
        run = load_run(o.path)
        cross = run.record["config"]["cross"]
        mapping = cross["mapping"]
        assert mapping["casia"]["used"] == {"F": "happy", "N": "neutral", "T": "sad", "W": "angry"}
        assert mapping["casia"]["dropped"] == {"A": "fear"}
        assert set(run.labels) == set(cross["emotions"]) == {"angry", "happy", "neutral", "sad"}
        # the test corpus's true labels are its own labels mapped as recorded, row by row
        X, m = tables[o.planned.test]
        own = m.set_index("utterance_id")["label"].astype(str)
        preds = run.predictions
        assert len(preds) == sum(mapping[o.planned.test]["n"].values())
        expect = [mapping[o.planned.test]["used"][own[u]] for u in preds["utterance_id"]]
        assert preds["true"].tolist() == expect
        counts = preds["true"].value_counts().to_dict()
        assert counts == {k: v for k, v in mapping[o.planned.test]["n"].items() if v}


def _predictions(seed=0, n_speakers=6, per=12, acc=(0.9, 0.5, 0.7, 0.3, 0.8, 0.6)):
    rng = np.random.default_rng(seed)
    rows = []
    classes = ["angry", "happy", "sad"]
    for s in range(n_speakers):
        for i in range(per):
            t = classes[i % 3]
            p = t if rng.random() < acc[s] else classes[(i + 1) % 3]
            rows.append({"utterance_id": f"s{s}_{i}", "speaker": f"casia:s{s}", "fold": "a->b", "true": t,
                         "predicted": p})
    return pd.DataFrame(rows)


def test_speaker_bootstrap_is_over_speakers_reproducible_and_contains_the_estimate():
    preds = _predictions()
    a = speaker_bootstrap(preds, n_boot=500, seed=3)
    b = speaker_bootstrap(preds, n_boot=500, seed=3)
    assert a == b and a["unit"] == "speaker" and a["n_speakers"] == 6
    assert a["ua"] == pytest.approx(unweighted_accuracy(preds["true"], preds["predicted"]))
    assert a["low"] <= a["ua"] <= a["high"] and a["high"] - a["low"] > 0.05
    assert speaker_bootstrap(preds, n_boot=500, seed=4) != a
    # over speakers: every utterance of a speaker moves together. Speakers all alike -> a narrow interval,
    # however noisy the utterances: the same rows relabelled as one speaker give no spread at all.
    one = preds.assign(speaker="casia:only")
    c = speaker_bootstrap(one, n_boot=200, seed=0)
    assert c["low"] == c["high"] == pytest.approx(c["ua"])
    # compared with a brute-force resampling of speakers
    rng = np.random.default_rng(3)
    speakers = sorted(preds["speaker"].unique())
    draws = rng.integers(0, len(speakers), size=(500, len(speakers)))
    brute = [unweighted_accuracy(*[pd.concat([preds[preds["speaker"] == speakers[j]] for j in d])[c]
                                   for c in ("true", "predicted")]) for d in draws]
    lo, hi = np.quantile(brute, [0.025, 0.975])
    assert (a["low"], a["high"]) == pytest.approx((lo, hi))


def test_cross_metrics_per_speaker():
    preds = _predictions()
    m = cross_metrics(preds, n_boot=50)
    ps = m["per_speaker"].set_index("speaker")
    for spk, g in preds.groupby("speaker"):
        assert ps.loc[spk, "ua"] == pytest.approx(unweighted_accuracy(g["true"], g["predicted"]))
        assert ps.loc[spk, "n"] == len(g)


def test_store_names_and_speaker_norm_refused():
    assert stored_name("IS10-svm-linear", "emodb") == "IS10-svm-linear-from-emodb"
    assert stored_name("IS10-svm-linear", "emodb", "corpus") == "IS10-svm-linear-from-emodb-adapt-corpus"
    assert parse_stored_name("IS10-svm-linear-from-emodb-adapt-speaker") == ("IS10-svm-linear", "emodb", "speaker")
    assert is_cross_name("IS10-svm-linear-from-emodb") and not is_cross_name("IS10-svm-linear")
    assert not is_cross_name("x-from-nowhere")
    with pytest.raises(CrossError, match="--adapt speaker"):
        plan_cross(handles(), systems=[("svm-linear", {"feature": "IS09", "speaker_norm": True})],
                   load_features=loader_of(two_corpora()))
    with pytest.raises(CrossError, match="--adapt"):
        plan_cross(handles(), systems=SVM, adapt=["both"], load_features=loader_of(two_corpora()))


def test_tables_heatmap_and_in_corpus_reports_skip_cross_runs(tmp_path):
    from serbench.reports.collect import collect
    from serbench.reports.cross import collect_cross, cross_html, leaderboard, long_table, write_cross_tables

    tables = two_corpora(offset=4.0)
    plan, outcomes = run_matrix(tmp_path, tables, adapt=("none", "corpus"))
    runs = tmp_path / "runs"
    col = collect_cross(["demo", "casia"], runs, n_boot=200)
    long = long_table(col)
    assert len(long) == 8 and set(long["kind"]) == {"cross", "in-corpus"}
    for r in long.itertuples():
        assert r.ua_low <= r.ua <= r.ua_high
        assert r.ua == pytest.approx(load_run(r.path).ua)
    board = leaderboard(col, long)
    assert board.iloc[0]["series"] == "IS09-svm-linear +adapt corpus" and board.iloc[0]["rank"] == 1
    paths = write_cross_tables(col, tmp_path / "tables")
    assert (tmp_path / "tables" / "cross-heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "tables" / "cross.md").read_text()
    assert "## IS09-svm-linear +adapt corpus" in md and "McNemar" in md
    mc = pd.read_csv(tmp_path / "tables" / "cross-mcnemar.csv")
    assert len(mc) == 2 and (mc["p"] < 0.05).all()
    assert len(paths) == 7
    html = cross_html(["demo", "casia"], runs)
    assert "id='cross-corpus'" in html and "data:image/png;base64," in html
    assert cross_html(["demo", "casia"], tmp_path / "empty") == ""
    # the in-corpus tables of casia show its LOSO run only
    shown = collect("casia", runs).runs
    assert len(shown) == 1 and all(name.startswith("IS09-svm-linear ") and "-from-" not in name for name in shown)
    st = status(plan, runs)
    assert set(st.values()) == {"done"}


def test_cli_dry_run_and_one_line_errors(tmp_path):
    from click.testing import CliRunner

    from serbench.cli import cli

    r = CliRunner().invoke(cli, ["cross", "--corpus", "demo=/x", "--train", "casia=/y", "--test", "demo=/x",
                                 "--feature", "IS09"])
    assert r.exit_code == 2 and "not both" in r.output
    r = CliRunner().invoke(cli, ["cross", "--corpus", "demo", "--corpus", "casia=/y", "--feature", "IS09"])
    assert r.exit_code == 2 and "give NAME=DIR" in r.output
    r = CliRunner().invoke(cli, ["cross", "--corpus", "demo=/x", "--corpus", "casia=/y", "--feature", "IS09",
                                 "--adapt", "both"])
    assert r.exit_code == 2 and "--adapt" in r.output
    r = CliRunner().invoke(cli, ["cross-tables", "--corpus", "demo", "--corpus", "casia", "--runs",
                                 str(tmp_path / "none")])
    assert r.exit_code == 2 and "no cross-corpus runs" in r.output

