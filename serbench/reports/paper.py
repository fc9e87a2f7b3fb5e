"""The paper-shaped tables: one row per system, our WA/UA next to the paper's, best in bold, marks.

Each table is a :class:`~serbench.reports.render.Table` whose ``frame`` has the paper's
few columns and whose ``details`` hold the long form of :mod:`serbench.reports.tables` and
:mod:`serbench.reports.systems` (fold mean ± sd, run ids, fold times), written to
``<key>-details.csv`` and shown in the HTML report. Significance marks compare a row with
the table's reference system: ``*`` p < 0.05, ``**`` p < 0.01, two-sided; WA by McNemar's
exact test on the pooled utterances (it compares accuracy), UA by the paired t-test on
per-fold UA (the paper's Table IV test). Every number is recomputed from the predictions.
"""
from __future__ import annotations

import pandas as pd

from serbench.reports.collect import Collection, RunResult
from serbench.reports.render import Table, best_cells
from serbench.reports.significance import MCNEMAR, T_TEST, PairedTest, compare
from serbench.reports.systems import (
    best_baseline,
    reference_run,
    runs_of,
    system_models,
    system_runs,
    systems_reported,
    systems_significance,
    systems_table,
)
from serbench.reports.tables import (
    DEFAULT_CLASSIFIER,
    MISSING,
    NOT_APPLICABLE,
    PAPER_MODELS,
    FUSED_NOTE,
    _corpus_notes,
    _p,
    best_run,
    decision_notes,
    deep_runs,
    feature_significance,
    feature_table,
    fused_label,
    fused_run,
    identity_notes,
    model_label,
    paper_best_segments,
    paper_features,
    paper_name,
    paper_segments,
    pct,
    reported,
    segments_for_ablation,
    table1,
    table2,
    table3,
    table4,
)

WA, UA = "WA %", "UA %"
PAPER_WA, PAPER_UA = "paper WA %", "paper UA %"
REF = "(ref)"

COMMON_METRICS = ("WA = accuracy, UA = mean per-class recall, in percent, pooled over all test predictions "
                  "and recomputed from predictions.parquet. Fold mean ± sd, run ids, fold times and every "
                  "test are in <table>-details.csv and in the HTML report.")
COMMON_BOLD = "Bold = the best value of a column (ours and the paper's separately; ties all bold)."
COMMON_MISSING = '"missing" = no complete run of that system in the store (never a number).'


def common_paper(col: Collection) -> str:
    """The footnote saying whose figures the "paper" columns hold (the experiment file's)."""
    if not reported(col):
        return f'"paper" columns: {col.experiment_label} reports no figures, so they are "n/a".'
    return (f'"paper" columns are the figures printed in {paper_name(col)} (as {col.experiment_label} gives them), '
            'not ours; "/" = the paper does not report it; "n/a" = the paper has no such row for this corpus.')

def common_tests(col: Collection) -> str:
    """The one footnote naming the tests behind the marks (with this corpus' number of folds)."""
    n = max((len(r.metrics.get("folds") or []) for r in col.runs.values()), default=0)
    return ("Significance marks: * p < 0.05, ** p < 0.01, two-sided, against the table's reference row "
            f"{REF}: WA by McNemar's exact test on the pooled utterances (it compares accuracy), UA by a paired "
            f"t-test on per-fold UA over the same folds ({n} folds here, so {max(n - 1, 0)} degrees of freedom; "
            "few folds give it little power). No mark = not significant at 0.05, or not testable.")


def stars(p: float | None) -> str:
    """``"**"`` for p < 0.01, ``"*"`` for p < 0.05, else ``""`` (also when the test did not run)."""
    if p is None:
        return ""
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def marked_cells(run: RunResult | None, ref: RunResult | None) -> tuple[str, str]:
    """Our WA and UA cells for ``run``: the numbers with their marks against ``ref``, or "missing"."""
    if run is None:
        return MISSING, MISSING
    wa, ua = pct(run.metrics["wa"]), pct(run.metrics["ua"])
    if ref is None or run is ref:
        return wa, ua
    tests = _tests(run, ref)
    return wa + stars(tests[MCNEMAR].p), ua + stars(tests[T_TEST].p)


def _tests(run: RunResult, ref: RunResult) -> dict[str, PairedTest]:
    return {t.test: t for t in compare(run, ref, tests=(T_TEST, MCNEMAR))}


def _paper(col: Collection, table: str, row: str | None, metric: str) -> str:
    entry = reported(col).get((col.corpus.lower(), table, row)) if row else None
    if entry is None:
        return NOT_APPLICABLE
    value = entry.get(metric)
    if value is None:
        return "/"
    return value if isinstance(value, str) else f"{value:.1f}"


def _common(col: Collection, *extra: str) -> list[str]:
    return [COMMON_METRICS, COMMON_BOLD, COMMON_MISSING, *extra, *decision_notes(col), *_corpus_notes(col)]


def _table(key: str, title: str, rows: list[list[str]], columns: list[str], notes: list[str], common: list[str],
           detail: Table, bold_columns: list[str]) -> Table:
    frame = pd.DataFrame(rows, columns=columns, dtype=str)
    return Table(key, title, frame, notes, detail.values, bold=best_cells(frame, bold_columns), common=common,
                 details=detail.frame)


def _ref_label(label: str, run: RunResult | None, ref: RunResult | None) -> str:
    return f"{label} {REF}" if run is not None and run is ref else label


def stand_in(ref: RunResult | None, runs: "list[RunResult | None]") -> tuple[RunResult | None, bool]:
    """The table's reference, or, when it has no run, the best run the table shows (True: a stand-in)."""
    if ref is not None:
        return ref, False
    best = best_run(r for r in runs if r is not None)
    return best, best is not None


def stand_in_note(what: str, ref: RunResult) -> str:
    """Says that the marks compare with the best run present because the reference ``what`` has none."""
    return (f"{what}, this table's reference, has no run: the marks compare every row with the best system "
            f"present instead, {ref.system} {REF} (highest pooled UA).")


# ---------------------------------------------------------------- Tables I-III

def paper_table1(col: Collection) -> Table:
    """Table I: CNN+SRU on the non-segmented utterance (N = 1)."""
    run = deep_runs(col, "cnn-sru").get(1)
    rows = [["CNN+SRU", *marked_cells(run, None), _paper(col, "I", "CNN+SRU N=1", "wa"),
             _paper(col, "I", "CNN+SRU N=1", "ua")]]
    return _table("table1", f"Table I — CNN+SRU on the non-segmented utterance (N = 1), {col.corpus}", rows,
                  ["Model", WA, UA, PAPER_WA, PAPER_UA], identity_notes(col, [run], ["cnn-sru-N1"]), _common(col, common_paper(col)), table1(col),
                  [WA, UA, PAPER_WA, PAPER_UA])


def paper_table2(col: Collection) -> Table:
    """Table II: CNN+SRU for N = 1..5 (and any other N present), marks against the reference N."""
    runs = deep_runs(col, "cnn-sru")
    ref, why = reference_run(col)
    rows = []
    ns = sorted(set(paper_segments(col)) | set(runs))
    for n in ns:
        paper = ("I", "CNN+SRU N=1") if n == 1 else ("II", f"N={n}")
        rows.append([_ref_label(str(n), runs.get(n), ref), *marked_cells(runs.get(n), ref),
                     _paper(col, *paper, "wa"), _paper(col, *paper, "ua")])
    notes = [f"{REF} = {why}.", "The paper's N = 1 values are its Table I."] if ref else []
    notes += identity_notes(col, runs.values(), [f"cnn-sru-N{n}" for n in ns])
    return _table("table2", f"Table II — CNN+SRU by number of segments N, {col.corpus}", rows,
                  ["N", WA, UA, PAPER_WA, PAPER_UA], notes, _common(col, common_paper(col), common_tests(col)),
                  table2(col), [WA, UA, PAPER_WA, PAPER_UA])


def paper_table3(col: Collection) -> Table:
    """Table III: CNN, SRU and CNN+SRU at each N; marks against CNN+SRU at the same N."""
    best_n = paper_best_segments(col)
    rows = []
    shown: list[RunResult | None] = []
    names: list[str] = []
    fused_any = False
    stand_ins: list[str] = []
    for n in segments_for_ablation(col):
        fused = fused_run(col, n)
        at_n = [deep_runs(col, model).get(n) for model in ("cnn", "sru", "cnn-sru")] + ([fused[0]] if fused else [])
        ref, stood_in = stand_in(deep_runs(col, "cnn-sru").get(n), at_n)
        if stood_in:
            stand_ins.append(stand_in_note(f"CNN+SRU at N = {n}", ref))
        for model in ("cnn", "sru", "cnn-sru"):
            run = deep_runs(col, model).get(n)
            paper_row = PAPER_MODELS[model] if n == best_n else None
            rows.append([_ref_label(PAPER_MODELS[model], run, ref), str(n), *marked_cells(run, ref),
                         _paper(col, "III", paper_row, "wa"), _paper(col, "III", paper_row, "ua")])
            shown.append(run)
            names.append(f"{model}-N{n}")
        if fused is not None:       # fast's own decision beside the cascade: never in the paper's rows
            run, weight = fused
            rows.append([_ref_label(fused_label(weight), run, ref), str(n), *marked_cells(run, ref), NOT_APPLICABLE,
                         NOT_APPLICABLE])
            shown.append(run)
            fused_any = True
    notes = [f"{REF} = CNN+SRU at the same N (the paper's cascade); marks compare the other rows with it.", *stand_ins]
    if fused_any:
        notes.append(FUSED_NOTE)
    notes += identity_notes(col, shown, names)
    if best_n is not None:
        notes.append(f"The paper does not state N for CNN and SRU alone; its values are shown at N = {best_n}, "
                     f"the N of its best CNN+SRU on {col.corpus}.")
    return _table("table3", f"Table III — CNN, SRU and CNN+SRU, {col.corpus}", rows,
                  ["Model", "N", WA, UA, PAPER_WA, PAPER_UA], notes,
                  _common(col, common_paper(col), common_tests(col)), table3(col), [WA, UA, PAPER_WA, PAPER_UA])


def paper_table4(col: Collection) -> Table:
    """Table IV: p of CNN+SRU against CNN and against SRU (t-test as the paper, and McNemar)."""
    best_n = paper_best_segments(col)
    rows = []
    shown: list[RunResult | None] = []
    fused_any = False
    for n in segments_for_ablation(col):
        pairs = [(deep_runs(col, "cnn-sru").get(n), "CNN+SRU", True)]
        fused = fused_run(col, n)
        if fused is not None:       # the fused decision against the same CNN and SRU, beside the cascade
            pairs.append((fused[0], "CNN+SRU fused", False))
            fused_any = True
        for a, a_label, is_paper in pairs:
            shown.append(a)
            for other, b_label in (("cnn", "CNN"), ("sru", "SRU")):
                b = deep_runs(col, other).get(n)
                shown.append(b)
                paper_row = f"({a_label},{b_label})"
                paper_p = _paper(col, "IV", paper_row if is_paper and n == best_n else None, "p")
                if a is None or b is None:
                    rows.append([paper_row, str(n), MISSING, MISSING, MISSING, paper_p])
                    continue
                tests = _tests(a, b)
                diff = round(100 * (a.metrics["ua"] - b.metrics["ua"]), 1) + 0.0   # + 0.0: no "-0.0"
                rows.append([paper_row, str(n), f"{diff:+.1f}", _p(tests[T_TEST].p), _p(tests[MCNEMAR].p),
                             paper_p])
    notes = ["ΔUA = pooled UA of CNN+SRU minus the other model, in points. p: two-sided; t-test = paired t-test "
             "on per-fold UA (the paper's test), McNemar = exact test on the pooled utterances (accuracy); "
             "n/a = not testable (see table4-details.csv)."]
    if best_n is not None:
        notes.append(f"paper p: its Table IV (a t-test, with neither n, t nor N stated), shown at N = {best_n}.")
    if fused_any:
        notes.append(FUSED_NOTE)
    notes += identity_notes(col, shown)
    detail = table4(col)
    frame = pd.DataFrame(rows, columns=["Pair", "N", "ΔUA (points)", "p t-test", "p McNemar", "paper p"], dtype=str)
    return Table("table4", f"Table IV — significance of CNN+SRU against CNN and SRU, {col.corpus}", frame, notes,
                 detail.values, common=_common(col, common_paper(col)), details=detail.frame)


# ---------------------------------------------------------------- Table V

def _feature_label(run: RunResult) -> str:
    s = run.spec
    base = s.feature if s.classifier == DEFAULT_CLASSIFIER and s.feature else s.base
    layer = s.setting("layer")
    if base == s.feature and layer is not None:    # a self-supervised set: one layer, or one chosen per fold
        base = f"{base} (layer per fold)" if layer == "auto" else f"{base} layer {layer}"
    return f"{base} (speaker norm)" if s.speaker_norm else str(base)


def paper_table5(col: Collection) -> Table:
    """Table V: SVM on each feature set, the deep models at their best N, anything else; marks vs CNN+SRU."""
    corpus = col.corpus
    cascade = best_run(deep_runs(col, "cnn-sru").values())
    entries: list[tuple[str, RunResult | None, str | None]] = []   # rendered once the reference is known
    shown: set[str] = set()

    def add(label: str, run: RunResult | None, paper_row: str | None) -> None:
        entries.append((label, run, paper_row))
        if run is not None:
            shown.add(run.system)

    baselines = sorted((r for r in col.runs.values() if r.spec.kind == "baseline"),
                       key=lambda r: (r.spec.speaker_norm, _feature_rank(r.spec.feature, paper_features(col)),
                                      r.spec.classifier != DEFAULT_CLASSIFIER,
                                      r.system))
    plain = {(r.spec.feature or "").lower(): r for r in baselines
             if not r.spec.speaker_norm and r.spec.classifier == DEFAULT_CLASSIFIER}
    features = paper_features(col)
    for feature in features:             # the paper's rows, each shown whether run or missing
        add(feature, plain.get(feature.lower()), feature)
    for run in baselines:
        if run.system not in shown and not run.spec.speaker_norm:
            add(_feature_label(run), run, None)
    deep_models = sorted({r.spec.model for r in col.runs.values()
                          if r.spec.kind == "deep" and r.spec.model and r.spec.segments is not None},
                         key=lambda m: (m != "cnn-sru", m))
    add(f"CNN+SRU (N={cascade.spec.segments})" if cascade else "CNN+SRU (best N)", cascade, "Ours")
    for spk in (False, True):            # the paper's protocol first, then per-speaker normalization
        if spk:
            for run in baselines:
                if run.system not in shown:
                    add(_feature_label(run), run, None)
        for model in deep_models:
            run = best_run(deep_runs(col, model, spk).values())
            if run is not None and run.system not in shown:
                norm = ", speaker norm" if spk else ""
                add(f"{model_label(model, run)} (N={run.spec.segments}{norm})", run, None)
    systems_models = set(system_models())
    for run in sorted(col.runs.values(), key=lambda r: r.system):   # systems no table claims
        s = run.spec
        if s.kind == "variant" or s.kind == "baseline" or (s.kind == "deep" and s.segments is not None) \
                or s.model in systems_models or (s.kind == "deep" and s.table == "systems"):
            continue
        add(run.system, run, None)
    variants = sorted((r for r in col.runs.values() if r.spec.kind == "variant"), key=lambda r: r.system)
    for run in variants:                 # runs whose settings differ from the file's: never a paper row
        add(run.system, run, None)
    ref, stood_in = stand_in(cascade, [run for _label, run, _row in entries])
    rows = [[_ref_label(label, run, ref), *marked_cells(run, ref), _paper(col, "V", paper_row, "wa"),
             _paper(col, "V", paper_row, "ua")] for label, run, paper_row in entries]
    notes = [stand_in_note("CNN+SRU", ref) if stood_in else
             f"{REF} = CNN+SRU at the N with the best pooled UA on the test folds, as the paper's \"Ours\" row "
             "(optimistic: N is picked on test speakers); other deep rows likewise show their best N.",
             '"speaker norm" rows z-score each speaker with its own statistics: another protocol than the '
             "paper's, so no paper value."]
    if variants:
        notes.append(f'"name [setting=value, ...]" rows: runs stored under a name whose settings differ from what '
                     f"{col.experiment_label} declares for it: variants, not the paper's systems.")
    notes += identity_notes(col, [r for r in col.runs.values() if r.system in shown],
                            [f"{f}-{DEFAULT_CLASSIFIER}" for f in features] + ["cnn-sru-N" + str(n)
                                                                               for n in paper_segments(col)])
    return _table("table5", f"Table V — feature sets (SVM) and deep systems, {corpus}", rows,
                  ["Feature / model", WA, UA, PAPER_WA, PAPER_UA], notes,
                  _common(col, common_paper(col), common_tests(col)), feature_table(col), [WA, UA, PAPER_WA, PAPER_UA])


def _feature_rank(feature: str | None, features: tuple[str, ...] = ()) -> int:
    lower = [f.lower() for f in features]
    return lower.index(feature.lower()) if feature and feature.lower() in lower else len(lower)


# ---------------------------------------------------------------- systems

def _systems_paper(col: Collection, model: str | None, run: RunResult | None) -> str:
    """What a system's own paper reports for UA: this corpus' figure, else each figure with its corpus."""
    corpus = col.corpus
    if model == "cnn-sru":
        n = run.spec.segments if run is not None else None
        return _paper(col, "I", "CNN+SRU N=1", "ua") if n == 1 else _paper(col, "II", f"N={n}", "ua")
    if run is not None and run.spec.kind == "baseline":
        return _paper(col, "V", run.spec.feature, "ua") if run.spec.classifier == DEFAULT_CLASSIFIER \
            else NOT_APPLICABLE
    reports = systems_reported(col).get(model or "", [])
    same = [r for r in reports if r["corpus"] == corpus.lower()]
    if same:
        return "; ".join("/" if r["ua"] is None else f"{r['ua']:.1f}" for r in same)
    if not reports:
        return "/"
    return "; ".join(("/" if r["ua"] is None else f"{r['ua']:.1f}") + f" ({r['corpus'] or 'corpus not stated'})"
                     for r in reports)


def paper_systems(col: Collection) -> Table:
    """The seed papers' systems next to CNN+SRU (the reference) and the best SVM baseline."""
    corpus = col.corpus
    cascade, why = reference_run(col)
    entries: list[tuple[str, RunResult | None, str | None]] = [
        (f"CNN+SRU (N={cascade.spec.segments})" if cascade else "CNN+SRU", cascade, "cnn-sru")]
    present = system_runs(col)
    models = system_models()
    for model in models:          # the papers' order; a system without a run is a 'missing' row
        for run in runs_of(present, model) or [None]:
            entries.append((run.system if run else model, run, model))
    for run in present:
        if all(run is not r for _label, r, _model in entries):
            entries.append((run.system, run, run.spec.model))
    svm = best_baseline(col)
    entries.append((f"best SVM: {_feature_label(svm)}" if svm else "best SVM", svm, None))
    ref, stood_in = stand_in(cascade, [run for _label, run, _model in entries])
    rows = [[_ref_label(label, run, ref), *marked_cells(run, ref), _systems_paper(col, model, run)]
            for label, run, model in entries]
    notes = [stand_in_note("CNN+SRU", ref)] if stood_in else [f"{REF} = {why}."]
    notes += ["paper UA = what each system's own paper reports, for this corpus when it has one, else with the "
              "corpus it was measured on: context, not a target. best SVM = the SVM without speaker norm with "
              "the highest pooled UA (picked on test results)."]
    notes += identity_notes(col, [cascade, *present, svm], models)
    return _table("systems", f"Systems — the seed papers' models against CNN+SRU, {corpus}", rows,
                  ["System", WA, UA, PAPER_UA], notes, _common(col, common_tests(col)), systems_table(col), [WA, UA])


def paper_tables(col: Collection) -> list[Table]:
    """Tables I-V and the systems table in the paper's shape, then the two all-tests tables (details only)."""
    tables = [paper_table1(col), paper_table2(col), paper_table3(col), paper_table4(col), paper_table5(col),
              paper_systems(col)]
    for detail in (feature_significance(col), systems_significance(col)):
        detail.detail_only = True
        tables.append(detail)
    return tables


__all__ = ["paper_tables", "paper_table1", "paper_table2", "paper_table3", "paper_table4", "paper_table5",
           "paper_systems", "stars", "marked_cells"]
