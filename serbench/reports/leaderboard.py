"""The cross-corpus leaderboard: systems as rows, corpora as columns, pooled UA with its rank.

Ranks are per corpus over the systems run on it (1 = highest UA; ties share the better rank,
"1224" style). The mean rank is taken over the corpora a system was run on, so rows are sorted
first by how many corpora they cover, then by mean rank: a system seen on one corpus never
outranks one that held up on several.
"""
from __future__ import annotations

import pandas as pd

from serbench.reports.collect import Collection


def leaderboard(collections: dict[str, Collection]) -> pd.DataFrame:
    """One row per system found in any corpus, sorted best first.

    Columns: ``system``; per corpus ``<corpus> UA`` (percent, NaN where not run) and
    ``<corpus> rank`` (NaN where not run); ``corpora`` (how many it was run on); ``mean rank``.
    """
    corpora = list(collections)
    systems = sorted({s for c in collections.values() for s in c.runs})
    frame = pd.DataFrame({"system": systems})
    for corpus in corpora:
        runs = collections[corpus].runs
        ua = pd.Series([100 * runs[s].metrics["ua"] if s in runs else float("nan") for s in systems])
        frame[f"{corpus} UA"] = ua
        # Rank the rounded values: two systems printed with the same UA share a rank.
        frame[f"{corpus} rank"] = ua.round(1).rank(method="min", ascending=False)
    rank_cols = [f"{c} rank" for c in corpora]
    frame["corpora"] = frame[rank_cols].notna().sum(axis=1)
    frame["mean rank"] = frame[rank_cols].mean(axis=1, skipna=True)
    frame = frame.sort_values(["corpora", "mean rank", "system"], ascending=[False, True, True])
    return frame.reset_index(drop=True)


__all__ = ["leaderboard"]
