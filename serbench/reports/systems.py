"""The systems table: the other papers' systems next to CNN+SRU and the best SVM baseline.

Every measured number is recomputed from stored predictions. What each system's own paper
reports comes from the experiment files (``[[reported_system]]``: ``recipes/seed-papers.toml``
and the collection's experiment), with the corpus it was measured on, always labelled "paper".
"""
from __future__ import annotations

import pandas as pd

from serbench.reports.collect import Collection, RunResult
from serbench.reports.render import Table
from serbench.reports.significance import MCNEMAR, T_TEST, compare
from serbench.reports.tables import (
    _SIG_COLUMNS, LEGEND_METRICS, _corpus_notes, LEGEND_MISSING, MISSING, NOT_APPLICABLE, SIGNIFICANCE_NOTES,
    _metric_cells, _metric_columns, _p, _sig_rows, _values_row, best_run, deep_runs, identity_notes,
    paper_best_segments, paper_name, reported,
)



def system_models() -> list[str]:
    """The registered systems of the systems table, in their registry order (the papers' order)."""
    from serbench.systems import registry

    return registry.names(table="systems")



def systems_reported(col: Collection) -> dict[str, list[dict]]:
    """System -> [{"corpus", "wa", "ua", "source"}]: what other papers report, from every shipped experiment
    file (``reference_figures``) and the collection's own experiment (which wins for a system it names)."""
    from serbench.systems.experiment import reference_figures

    cached = col.__dict__.get("_systems_reported")   # read the shipped files once per collection
    if cached is None:
        cached = dict(reference_figures()[1])
        if col.experiment is not None:
            cached.update(col.experiment.systems_reported)
        col.__dict__["_systems_reported"] = cached
    return cached


_COLUMNS = (["System", "Model"] + _metric_columns() + ["fold time s (mean)", "device",
            "UA − ref (points)", "t-test p vs ref", "McNemar p vs ref", "WA % — paper", "UA % — paper",
            "paper corpus", "paper source"])


def reference_run(col: Collection) -> tuple[RunResult | None, str]:
    """The CNN+SRU run the systems are compared with, and how it was chosen.

    The paper's best N for this corpus when that run exists (chosen without looking at our
    results); otherwise our best N by pooled UA, which is optimistic and said so.
    """
    runs = deep_runs(col, "cnn-sru")
    n = paper_best_segments(col)
    if n is not None and n in runs:
        return runs[n], f"cnn-sru-N{n}: the N of the paper's best CNN+SRU on {col.corpus}"
    best = best_run(runs.values())
    if best is None:
        return None, "no complete CNN+SRU run"
    return best, (f"{best.system}: our best N by pooled UA (picked on test results, so optimistic; "
                  "the paper gives no best N for this corpus or that run is missing)")


def system_runs(col: Collection) -> list[RunResult]:
    """Runs of the systems-table systems and of any other unsegmented deep model, in a stable order."""
    order = {m: i for i, m in enumerate(system_models())}
    found = [r for r in col.runs.values()
             if r.spec.kind == "deep" and (r.spec.table == "systems" or r.spec.segments is None)]
    return sorted(found, key=lambda r: (order.get(r.spec.model or "", len(order)), r.spec.speaker_norm, r.system))


def best_baseline(col: Collection) -> RunResult | None:
    return best_run(r for r in col.runs.values() if r.spec.kind == "baseline" and not r.spec.speaker_norm)


def _paper_cells(col: Collection, run: RunResult | None, model: str | None, figures: dict) -> list[str]:
    corpus = col.corpus
    fmt = (lambda v: "not reported" if v is None else f"{v:.1f}")
    if run is not None and run.spec.kind == "baseline":
        feature = run.spec.feature or ""
        entry = reported(col).get((corpus.lower(), "V", feature))
        if entry is None:
            return [NOT_APPLICABLE] * 4
        return [fmt(entry.get("wa")), fmt(entry.get("ua")), corpus, f"{paper_name(col)} Table V (SVM)"]
    if model == "cnn-sru":
        n = run.spec.segments if run is not None else None
        key = ((corpus.lower(), "I", "CNN+SRU N=1") if n == 1 else (corpus.lower(), "II", f"N={n}"))
        entry = reported(col).get(key)
        if entry is None:
            return [NOT_APPLICABLE] * 4
        return [fmt(entry.get("wa")), fmt(entry.get("ua")), corpus, f"{paper_name(col)} Table {key[1]}"]
    reports = figures.get(model or "", [])
    if not reports:
        return ["not reported"] * 2 + [NOT_APPLICABLE] * 2
    # This corpus' figure when the paper has one, else every figure it gives with its corpus.
    same = [r for r in reports if r["corpus"] == corpus.lower()]
    chosen = same or reports
    fmt = (lambda v: "not reported" if v is None else f"{v:.2f}".rstrip("0").rstrip("."))
    return ["; ".join(fmt(r["wa"]) for r in chosen), "; ".join(fmt(r["ua"]) for r in chosen),
            "; ".join(str(r["corpus"] or "not stated") for r in chosen),
            "; ".join(sorted({str(r["source"]) for r in chosen}))]


def _timing_cells(run: RunResult | None) -> list[str]:
    if run is None:
        return [MISSING, MISSING]
    timings = run.record.get("timings") or {}
    mean = timings.get("fold_wall_s_mean")
    return [f"{mean:.0f}" if isinstance(mean, (int, float)) else NOT_APPLICABLE,
            str(timings.get("device") or (run.record.get("config") or {}).get("device") or NOT_APPLICABLE)]


def _versus_cells(run: RunResult | None, ref: RunResult | None) -> list[str]:
    if run is None or ref is None:
        return [MISSING if run is None else NOT_APPLICABLE] * 3
    if run is ref:
        return ["reference"] * 3
    tests = {t.test: t for t in compare(run, ref, tests=(T_TEST, MCNEMAR))}
    diff = round(100 * (run.metrics["ua"] - ref.metrics["ua"]), 1) + 0.0   # + 0.0: no "-0.0"
    return [f"{diff:+.1f}", _p(tests[T_TEST].p) if T_TEST in tests else NOT_APPLICABLE,
            _p(tests[MCNEMAR].p) if MCNEMAR in tests else NOT_APPLICABLE]


def runs_of(present: list[RunResult], model: str) -> list[RunResult]:
    """The runs of the systems table's row ``model``: stored under its name, or under its name prefixed with
    what it reads (``wavlm-base-plus-ssl-probe``: one row per input)."""
    return [r for r in present if r.spec.model == model
            or (r.spec.system == model and str(r.spec.model).endswith(f"-{model}"))]


def systems_table(col: Collection) -> Table:
    """Each seed-paper system, CNN+SRU (reference) and the best SVM baseline, with tests against CNN+SRU."""
    corpus = col.corpus
    ref, ref_note = reference_run(col)
    figures = systems_reported(col)
    rows: list[list[str]] = []
    values: list[dict] = []

    def add(label: str, model: str | None, run: RunResult | None, system: str) -> None:
        rows.append([system, label, *_metric_cells(run), *_timing_cells(run), *_versus_cells(run, ref),
                     *_paper_cells(col, run, model, figures)])
        values.append(_values_row("systems", system, "", run))

    add(f"CNN+SRU ({paper_name(col)})", "cnn-sru", ref, ref.system if ref else "cnn-sru-N?")
    present = system_runs(col)
    models = system_models()
    shown: list[RunResult] = []
    for model in models:          # the papers' order; a system without a run is a 'missing' row
        runs = runs_of(present, model)
        shown += runs
        for run in runs or [None]:
            add(model if run is None or run.spec.model == model else str(run.spec.model), model, run,
                run.system if run else model)
    for run in present:
        if all(run is not r for r in shown):
            add(run.spec.model or run.system, run.spec.model, run, run.system)
    svm = best_baseline(col)
    add("best SVM baseline (no speaker norm)", None, svm, svm.system if svm else "SVM baseline")
    notes = [LEGEND_METRICS, LEGEND_MISSING,
             f"ref = {ref_note}. Tests vs ref: paired t-test on per-fold UA and McNemar's exact test on "
             "pooled utterances (details in significance-systems).",
             "fold time = mean wall seconds per fold from the run record, on the device shown (it counts only "
             "the process that ran each fold's last part).",
             '"paper" columns are what each system\'s own paper reports, on the corpus shown there: a figure '
             "from another corpus or protocol is context, not a target for this corpus.",
             "best SVM baseline = the SVM run with the highest pooled UA, picked on test results (optimistic).",
             *_corpus_notes(col), *identity_notes(col, [ref, *present, svm], models)]
    return Table("systems", f"Systems — the seed papers' models vs CNN+SRU, {corpus}",
                 pd.DataFrame(rows, columns=_COLUMNS, dtype=str), notes, pd.DataFrame(values))


def systems_significance(col: Collection) -> Table:
    """All paired tests of each seed-paper system against the CNN+SRU reference."""
    ref, ref_note = reference_run(col)
    rows: list[list[str]] = []
    runs = system_runs(col)
    present = {r.spec.model for r in runs}
    for run in runs:
        rows += _sig_rows(run.system, ref.system if ref else "cnn-sru", run, ref)
    for model in system_models():
        if model not in present:
            rows += _sig_rows(model, ref.system if ref else "cnn-sru", None, ref)
    notes = SIGNIFICANCE_NOTES + [LEGEND_MISSING, f"B = {ref_note}."]
    return Table("significance-systems", f"Significance — systems vs CNN+SRU, {col.corpus}",
                 pd.DataFrame(rows, columns=_SIG_COLUMNS, dtype=str), notes)
