import pandas as pd
import pytest
from scipy import stats

from serbench.reports.collect import collect
from serbench.reports.significance import (
    FoldMismatchError,
    compare,
    mcnemar_counts,
    mcnemar_test,
    t_test,
    wilcoxon_test,
)

A = pd.Series({"s1": 0.50, "s2": 0.55, "s3": 0.40, "s4": 0.62}, name="a")
B = pd.Series({"s1": 0.45, "s2": 0.50, "s3": 0.41, "s4": 0.50}, name="b")


def test_t_test_matches_scipy_on_known_values():
    r = t_test(A, B)
    ref = stats.ttest_rel(A.to_numpy(), B.to_numpy())
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.p == pytest.approx(ref.pvalue)
    assert (r.n, r.df) == (4, 3)
    assert r.mean_diff == pytest.approx(100 * (A - B).mean())
    assert r.per_fold_a == pytest.approx({"s1": 50.0, "s2": 55.0, "s3": 40.0, "s4": 62.0})
    # Hand check: differences 5, 5, -1, 12 points -> mean 5.25, t = mean / (sd / sqrt(4)).
    d = pd.Series([5, 5, -1, 12], dtype=float)
    assert r.statistic == pytest.approx(d.mean() / (d.std(ddof=1) / 2))


def test_t_test_pairs_by_fold_name_not_position():
    shuffled = A.iloc[::-1]
    assert t_test(shuffled, B).statistic == pytest.approx(t_test(A, B).statistic)


def test_t_test_refuses_mismatched_folds():
    other = pd.Series({"s1": 0.5, "s2": 0.5, "s3": 0.5, "s5": 0.5}, name="c")
    with pytest.raises(FoldMismatchError, match="s4.*s5"):
        t_test(A, other)


def test_t_test_constant_difference_is_explained_not_nan():
    r = t_test(A, A - 0.1)
    assert r.p is None and "zero variance" in r.note


def test_wilcoxon_skipped_for_small_n_with_reason():
    r = wilcoxon_test(A, B)
    assert r.p is None and not r.ran
    assert "n too small" in r.note and "n=4" in r.note


def test_wilcoxon_runs_and_matches_scipy_for_n_ge_6():
    folds = [f"s{i}" for i in range(1, 9)]
    a = pd.Series([0.5, 0.6, 0.55, 0.7, 0.65, 0.52, 0.61, 0.58], index=folds, name="a")
    b = pd.Series([0.45, 0.5, 0.56, 0.6, 0.5, 0.47, 0.51, 0.60], index=folds, name="b")
    r = wilcoxon_test(a, b)
    ref = stats.wilcoxon(a.to_numpy(), b.to_numpy())
    assert r.p == pytest.approx(ref.pvalue) and r.statistic == pytest.approx(ref.statistic)


def test_mcnemar_hand_made_case():
    # 10 discordant pairs, A right on 9 of them: two-sided exact p = 2 * P(X >= 9 | n=10, 1/2) = 22/1024.
    r = mcnemar_counts(9, 1, n=50)
    assert r.p == pytest.approx(22 / 1024)
    assert r.statistic == 9 and r.level == "utterance"
    assert mcnemar_counts(0, 0, n=5).p == 1.0


def test_mcnemar_on_runs_counts_discordant_utterances(store):
    store.add("cnn-sru-N5", acc=0.8)
    store.add("cnn-N5", acc=0.5)
    col = collect("casia", store.root)
    r = mcnemar_test(col.get("cnn-sru-N5"), col.get("cnn-N5"))
    # Per speaker and class: 10 utterances, 8 right by A, 5 by B, B's right ones a subset of A's.
    assert r.statistic == 3 * 4 * 4 and r.n == 160
    assert r.p == pytest.approx(stats.binomtest(48, 48, 0.5).pvalue)
    assert r.mean_diff == pytest.approx(30.0)


def test_mcnemar_refuses_different_utterances(store):
    store.add("cnn-sru-N5", acc=0.8)
    store.add("cnn-N5", predictions=store.synth(0.5, speakers=["s1", "s2", "s3"]))
    col = collect("casia", store.root)
    with pytest.raises(FoldMismatchError, match="utterances differ"):
        mcnemar_test(col.get("cnn-sru-N5"), col.get("cnn-N5"))


def test_compare_reports_skips_instead_of_raising(store):
    store.add("cnn-sru-N5", acc=0.8)
    store.add("cnn-N5", predictions=store.synth(0.5, speakers=["s1", "s2", "s3"]))
    col = collect("casia", store.root)
    results = compare(col.get("cnn-sru-N5"), col.get("cnn-N5"))
    assert [r.level for r in results] == ["fold", "fold", "utterance"]
    assert all(not r.ran and r.note.startswith("skipped: ") for r in results)
