"""Paired significance tests between two systems evaluated on the same data.

Two levels, reported separately because they answer different questions:

* fold level (the paper's Table IV): per-fold UA of system A vs system B over the SAME
  folds, paired t-test (``scipy.stats.ttest_rel``) and, where n >= 6, the Wilcoxon
  signed-rank test (``scipy.stats.wilcoxon``). With LOSO the folds are speakers, so n is
  small (4 on CASIA: the t-test has 3 degrees of freedom and little power).
* utterance level: McNemar's exact test on the pooled predictions of the same utterances
  (correct/incorrect per utterance; ``scipy.stats.binomtest`` on the discordant pairs).
  It has far more pairs than folds, hence more power, but it tests accuracy (WA-type) and
  treats utterances as independent, ignoring that they cluster by speaker.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from serbench.reports.collect import ReportError, RunResult

WILCOXON_MIN_N = 6  # below this the exact signed-rank test cannot reach p < 0.05 two-sided

# Test names as printed; the scipy function behind each is listed in SCIPY_FUNCTIONS.
T_TEST = "paired t-test"
WILCOXON = "Wilcoxon signed-rank"
MCNEMAR = "McNemar exact"
SCIPY_FUNCTIONS = {T_TEST: "scipy.stats.ttest_rel", WILCOXON: "scipy.stats.wilcoxon",
                   MCNEMAR: "scipy.stats.binomtest on the discordant pairs"}


class FoldMismatchError(ReportError):
    """Two systems were not evaluated on the same folds or utterances, so they cannot be paired."""


@dataclass
class PairedTest:
    """One paired test between systems ``a`` and ``b``.

    ``level``: 'fold' (per-fold UA) or 'utterance' (pooled correctness). ``mean_diff`` is in
    percentage points, a minus b (UA for fold level, WA for McNemar). ``p`` is two-sided;
    ``p``/``statistic`` are None when the test was not run, and ``note`` says why.
    ``per_fold_a``/``per_fold_b``: fold -> UA in percent (fold-level tests only).
    """

    test: str
    level: str
    a: str
    b: str
    n: int
    mean_diff: float | None = None
    statistic: float | None = None
    df: int | None = None
    p: float | None = None
    per_fold_a: dict[str, float] = field(default_factory=dict)
    per_fold_b: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def ran(self) -> bool:
        return self.p is not None


def paired_folds(a: pd.Series, b: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Align two per-fold series on fold name; raise :class:`FoldMismatchError` unless the folds match."""
    fa, fb = set(map(str, a.index)), set(map(str, b.index))
    if fa != fb:
        only_a, only_b = sorted(fa - fb), sorted(fb - fa)
        raise FoldMismatchError(
            f"folds differ between {a.name!r} and {b.name!r}: only in {a.name!r}: {only_a or 'none'}, "
            f"only in {b.name!r}: {only_b or 'none'}; re-run both under the same protocol to pair them")
    order = sorted(fa)
    a, b = a.copy(), b.copy()
    a.index, b.index = a.index.map(str), b.index.map(str)
    return a.loc[order], b.loc[order]


def t_test(a: pd.Series, b: pd.Series) -> PairedTest:
    """Paired t-test on per-fold values (fractions, indexed by fold name) of two systems."""
    a, b = paired_folds(a, b)
    n = len(a)
    res = _fold_result(T_TEST, a, b)
    if n < 2:
        res.note = f"n too small (n={n}; the t-test needs at least 2 folds)"
        return res
    diff = a.to_numpy() - b.to_numpy()
    res.df = n - 1
    if np.allclose(diff, diff[0]):
        # scipy returns nan when the differences have zero variance: say so instead of printing nan.
        res.note = "the per-fold differences are all equal: zero variance, t undefined"
        return res
    r = stats.ttest_rel(a.to_numpy(), b.to_numpy())
    res.statistic, res.p = float(r.statistic), float(r.pvalue)
    res.note = f"{n - 1} df" + ("; few folds: low power" if n < 6 else "")
    return res


def wilcoxon_test(a: pd.Series, b: pd.Series, min_n: int = WILCOXON_MIN_N) -> PairedTest:
    """Wilcoxon signed-rank test on per-fold values; skipped (with the reason) when n < ``min_n``."""
    a, b = paired_folds(a, b)
    n = len(a)
    res = _fold_result(WILCOXON, a, b)
    if n < min_n:
        res.note = f"n too small (n={n} folds; needs >= {min_n})"
        return res
    diff = a.to_numpy() - b.to_numpy()
    if np.all(diff == 0):
        res.note = "all per-fold differences are zero: nothing to rank"
        return res
    r = stats.wilcoxon(a.to_numpy(), b.to_numpy())
    res.statistic, res.p = float(r.statistic), float(r.pvalue)
    zeros = int(np.sum(diff == 0))
    res.note = f"{zeros} zero difference(s) dropped (scipy default)" if zeros else ""
    return res


def mcnemar_test(a: RunResult, b: RunResult) -> PairedTest:
    """McNemar's exact test on the utterances both runs predicted (the same set, same true labels).

    The statistic is the number of utterances A got right and B wrong; the p-value is the
    two-sided binomial test of that count among the discordant pairs against 1/2.
    """
    pa = a.predictions.set_index("utterance_id")
    pb = b.predictions.set_index("utterance_id")
    ua, ub = set(pa.index), set(pb.index)
    if ua != ub:
        raise FoldMismatchError(
            f"utterances differ between {a.system!r} ({len(ua)}) and {b.system!r} ({len(ub)}): "
            f"{len(ua - ub)} only in the first, {len(ub - ua)} only in the second; "
            "re-run both on the same corpus and label set to pair them")
    pb = pb.loc[pa.index]
    if not (pa["true"] == pb["true"]).all():
        bad = pa.index[pa["true"] != pb["true"]][0]
        raise FoldMismatchError(f"utterance {bad!r} has different true labels in {a.system!r} and {b.system!r}")
    ca = (pa["predicted"] == pa["true"]).to_numpy()
    cb = (pb["predicted"] == pb["true"]).to_numpy()
    return mcnemar_counts(int(np.sum(ca & ~cb)), int(np.sum(~ca & cb)), n=len(ca),
                          mean_diff=100.0 * float(ca.mean() - cb.mean()), a=a.system, b=b.system)


def mcnemar_counts(a_only: int, b_only: int, *, n: int, mean_diff: float | None = None,
                   a: str = "A", b: str = "B") -> PairedTest:
    """McNemar's exact test from the discordant counts: A right/B wrong, A wrong/B right."""
    res = PairedTest(test=MCNEMAR, level="utterance", a=a, b=b, n=n, mean_diff=mean_diff,
                     statistic=float(a_only))
    discordant = a_only + b_only
    if discordant == 0:
        res.p = 1.0
        res.note = "no discordant utterances: the systems agree on every utterance's correctness"
        return res
    res.p = float(stats.binomtest(a_only, discordant, 0.5).pvalue)
    res.note = f"discordant: {a_only} right only by A, {b_only} right only by B"
    return res


def compare(a: RunResult, b: RunResult, tests: tuple[str, ...] = (T_TEST, WILCOXON, MCNEMAR)) -> list[PairedTest]:
    """The ``tests`` between two runs (default all): t-test and Wilcoxon on per-fold UA, McNemar on utterances.

    A pairing problem (different folds or utterances) does not raise: the affected tests come
    back not run, with the reason in ``note``.
    """
    out: list[PairedTest] = []
    ua_a, ua_b = a.fold_series("ua"), b.fold_series("ua")
    for fn, name in ((t_test, T_TEST), (wilcoxon_test, WILCOXON)):
        if name not in tests:
            continue
        try:
            out.append(fn(ua_a, ua_b))
        except FoldMismatchError as exc:
            out.append(PairedTest(test=name, level="fold", a=a.system, b=b.system, n=0,
                                  note=f"skipped: {exc}"))
    if MCNEMAR in tests:
        try:
            out.append(mcnemar_test(a, b))
        except FoldMismatchError as exc:
            out.append(PairedTest(test=MCNEMAR, level="utterance", a=a.system, b=b.system, n=0,
                                  note=f"skipped: {exc}"))
    return out


def _fold_result(test: str, a: pd.Series, b: pd.Series) -> PairedTest:
    return PairedTest(test=test, level="fold", a=str(a.name), b=str(b.name), n=len(a),
                      mean_diff=100.0 * float(np.mean(a.to_numpy() - b.to_numpy())) if len(a) else None,
                      per_fold_a={k: 100.0 * float(v) for k, v in a.items()},
                      per_fold_b={k: 100.0 * float(v) for k, v in b.items()})
