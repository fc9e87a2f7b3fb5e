"""What a reader asks first: which systems were run on the corpus, and which won.

:func:`summary_table` ranks every system the store holds for the corpus (each stored name's row
and each variant) by pooled UA and tests each against the best one with ONE primary test, the
two-sided paired t-test on per-fold UA over the same folds (the test the paper uses); McNemar's
exact test on the pooled utterances (it compares accuracy) stands beside it as the second test,
and a row says when the two disagree at 0.05. :func:`folded_tables` says which paper-shaped tables
have no run at all, with one ``serbench run`` command that would fill each.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from serbench.reports.collect import Collection, RunResult, SystemSpec
from serbench.reports.render import Table, best_cells
from serbench.reports.significance import MCNEMAR, T_TEST, compare
from serbench.reports.tables import MISSING, NOT_APPLICABLE, _p, best_run, missing_systems, pct

#: The primary test of the summary and of the significance figure, and the second one beside it.
PRIMARY, SECOND = T_TEST, MCNEMAR
ALPHA = 0.05
BEST = "best"
DISAGREE = "tests disagree"

SUMMARY_COLUMNS = ["Rank", "System", "UA %", "UA sd", "WA %", "WA sd", "ΔUA", "p t-test", "p McNemar", "Note"]


def stars(p: float | None) -> str:
    """``"**"`` for p < 0.01, ``"*"`` for p < 0.05, else ``""`` (also when the test did not run)."""
    if p is None:
        return ""
    return "**" if p < 0.01 else "*" if p < ALPHA else ""


def disagree(p_primary: float | None, p_second: float | None) -> bool:
    """Whether one test is significant at 0.05 and the other not (both must have run)."""
    if p_primary is None or p_second is None:
        return False
    return (p_primary < ALPHA) != (p_second < ALPHA)


def ranked(col: Collection) -> list[RunResult]:
    """Every run of the collection, best first: the best run (highest pooled UA, then WA), then by UA, WA, name."""
    runs = list(col.runs.values())
    best = best_run(runs)
    rest = sorted((r for r in runs if r is not best), key=lambda r: (-r.metrics["ua"], -r.metrics["wa"], r.system))
    return ([best] if best is not None else []) + rest


def summary_table(col: Collection) -> Table:
    """Every system run on the corpus, ranked by pooled UA, each tested against the best (module docstring).

    ``values`` holds the numbers (percent; p as floats, NaN when a test could not run) and
    ``disagree`` per row, for programmatic use.
    """
    runs = ranked(col)
    best = runs[0] if runs else None
    rounded = [round(100 * r.metrics["ua"], 1) for r in runs]
    rows: list[list[str]] = []
    values: list[dict] = []
    n_folds = max((len(r.metrics.get("folds") or []) for r in runs), default=0)
    for run, ua in zip(runs, rounded):
        rank = 1 + sum(1 for other in rounded if other > ua)
        m = run.metrics
        p_t = p_m = None
        diff = None
        note = ""
        if run is best:
            note = BEST
            cells = ["", "", "", BEST if len(runs) > 1 else NOT_APPLICABLE]
        else:
            tests = {t.test: t for t in compare(run, best, tests=(PRIMARY, SECOND))}
            p_t, p_m = tests[PRIMARY].p, tests[SECOND].p
            diff = round(100 * (m["ua"] - best.metrics["ua"]), 1) + 0.0     # + 0.0: no "-0.0"
            if p_t is None:
                note = f"t-test not run: {tests[PRIMARY].note}"
            elif disagree(p_t, p_m):
                note = DISAGREE
            cells = [f"{diff:+.1f}", _p(p_t), _p(p_m), note]
        rows.append([str(rank), run.system, pct(m["ua"]) + stars(p_t), pct(m.get("ua_sd")), pct(m["wa"]),
                     pct(m.get("wa_sd")), *cells[:3], cells[3]])
        values.append({"rank": rank, "system": run.system, "run_id": run.run_id, "best": run is best,
                       "ua": _percent(m["ua"]), "ua_sd": _percent(m.get("ua_sd")), "wa": _percent(m["wa"]),
                       "wa_sd": _percent(m.get("wa_sd")),
                       "diff_ua": float("nan") if diff is None else diff,
                       "p_t_test": float("nan") if p_t is None else p_t,
                       "p_mcnemar": float("nan") if p_m is None else p_m,
                       "disagree": disagree(p_t, p_m)})
    frame = pd.DataFrame(rows, columns=SUMMARY_COLUMNS, dtype=str)
    notes = summary_notes(col, best, n_folds, len(runs))
    return Table("summary", f"Summary — every system run on {col.corpus}, best first", frame, notes,
                 pd.DataFrame(values), bold=best_cells(frame, ["UA %", "WA %"]))


def headline(col: Collection, best: RunResult, n_runs: int) -> str:
    """The answer in one sentence: which system won, by how much, and against how many it is significant."""
    m = best.metrics
    text = f"{best.system} has the best pooled UA on {col.corpus}: {pct(m['ua'])} % (WA {pct(m['wa'])} %)"
    if n_runs < 2:
        return text + "; it is the only system run."
    others = [r for r in col.runs.values() if r is not best]
    tested = [t for r in others for t in compare(r, best, tests=(PRIMARY,))]
    below = sum(1 for t in tested if t.p is not None and t.p < ALPHA and (t.mean_diff or 0) < 0)
    return (text + f"; by the paired t-test on per-fold UA, {below} of the {len(others)} other system(s) are "
            "significantly below it (p < 0.05).")


def _percent(value: float | None) -> float:
    return float("nan") if value is None else 100 * float(value)


def summary_notes(col: Collection, best: RunResult | None, n_folds: int, n_runs: int) -> list[str]:
    """The summary's legend: what was compared with what, by which test, stated once."""
    if best is None:
        return []
    notes = [headline(col, best, n_runs),
             "UA = mean per-class recall, WA = accuracy, in percent, pooled over every test prediction; sd = their "
             "standard deviation over the folds; ΔUA = pooled UA minus the best's, in points."]
    if n_runs > 1:
        notes.append(f"Significance against the best, one primary test: a two-sided paired t-test on per-fold UA over "
                     f"the same {n_folds} folds ({max(n_folds - 1, 0)} degrees of freedom): UA ** p < 0.01, "
                     "* p < 0.05, no mark = not significant. McNemar's exact test on the pooled utterances "
                     "(it compares accuracy) is the second test, beside it; \"tests disagree\" = one p < 0.05 and "
                     f"the other not. {n_runs - 1} comparisons, uncorrected: expect about one in 20 "
                     "false marks among systems that do not differ.")
    else:
        notes.append("One system only: nothing to compare.")
    return notes


# ---------------------------------------------------------------- paper tables without any run

def _needs(key: str, spec: SystemSpec) -> bool:
    """Whether the paper-shaped table ``key`` shows a row for the declared run ``spec``."""
    model = spec.model or ""
    cascade = model.startswith("cnn-sru") and not spec.speaker_norm
    if key == "table1":
        return model == "cnn-sru" and spec.segments == 1 and not spec.speaker_norm
    if key == "table2":
        return model == "cnn-sru" and not spec.speaker_norm
    if key in ("table3", "table4"):
        return (cascade or model in ("cnn", "sru")) and not spec.speaker_norm
    if key == "table5":
        return spec.kind == "baseline" or model == "cnn-sru"
    if key == "systems":
        return spec.table == "systems" or model == "cnn-sru"
    return False


def is_empty(table: Table) -> bool:
    """A paper-shaped table none of whose rows has a run: every one of our UA cells (Table IV: ΔUA) is missing."""
    frame = table.frame
    column = "UA %" if "UA %" in frame.columns else "ΔUA (points)" if "ΔUA (points)" in frame.columns else None
    if column is None or frame.empty:
        return frame.empty
    return bool((frame[column] == MISSING).all())


def table_label(table: Table) -> str:
    """``"Table I"`` / ``"Systems"``: the title up to its dash."""
    return table.title.split(" — ")[0]


def folded_tables(col: Collection, tables: list[Table], runs: str | Path | None = None,
                  cache: str | Path | None = None) -> dict[str, str]:
    """Table key -> one line for each table without any run: ``Table I: no run yet — run: <command>`` (one
    ``serbench run ... --only a,b`` for the runs the experiment declares for it), or why there is none."""
    from serbench.reports.commands import produce_command

    missing = missing_systems(col)
    out = {}
    for table in tables:
        if table.detail_only or not is_empty(table):
            continue
        names = [s.name for s in missing if _needs(table.key, s)]
        if names:
            out[table.key] = f"{table_label(table)}: no run yet — run: {produce_command(names, col, runs, cache)}"
        else:
            out[table.key] = (f"{table_label(table)}: no run yet — {col.experiment_label} declares none of its runs on "
                              f"{col.corpus}.")
    return out


__all__ = ["summary_table", "summary_notes", "ranked", "stars", "disagree", "folded_tables", "is_empty",
           "table_label", "PRIMARY", "SECOND", "ALPHA"]
