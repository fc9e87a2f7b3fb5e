"""The paper's Tables I, II, III and V, rebuilt from the results store.

Every measured number comes from :func:`serbench.experiments.metrics.summarize` on stored
predictions (via :mod:`serbench.reports.collect`). The only literal numbers in this module
are the paper's own results, kept in :data:`PAPER_REPORTED` and always labelled "paper".
"""
from __future__ import annotations

import math
from typing import Iterable

import pandas as pd

from serbench.reports.collect import Collection, RunResult, SystemSpec
from serbench.reports.render import Table
from serbench.reports.significance import SCIPY_FUNCTIONS, T_TEST, WILCOXON, PairedTest, compare

# Jiang et al., "Speech emotion recognition using deep convolutional neural network and
# simple recurrent unit" (../shared/papers/cnn-sru-jiang.txt). Key: (corpus, table, row).
# "wa"/"ua" in percent as printed; None where the paper prints "/" (not reported).
# The paper's EMO-DB numbers are on the full corpus (535 utterances, 7 classes).
PAPER_REPORTED: dict[tuple[str, str, str], dict[str, object]] = {
    # Table I: CNN+SRU on non-segmented input (N = 1).
    ("emodb", "I", "CNN+SRU N=1"): {"wa": 78.9, "ua": 76.1},
    ("casia", "I", "CNN+SRU N=1"): {"wa": 41.0, "ua": 41.0},
    # Table II: CNN+SRU with N segments.
    ("emodb", "II", "N=2"): {"wa": 78.2, "ua": 76.3},
    ("emodb", "II", "N=3"): {"wa": 82.5, "ua": 80.6},
    ("emodb", "II", "N=4"): {"wa": 77.5, "ua": 77.5},
    ("emodb", "II", "N=5"): {"wa": 76.8, "ua": 73.3},
    ("casia", "II", "N=2"): {"wa": 41.0, "ua": 41.0},
    ("casia", "II", "N=3"): {"wa": 45.5, "ua": 45.3},
    ("casia", "II", "N=4"): {"wa": 45.3, "ua": 45.2},
    ("casia", "II", "N=5"): {"wa": 51.3, "ua": 51.3},
    # Table III: single models vs the cascade (the paper does not state N for CNN and SRU).
    ("emodb", "III", "CNN"): {"wa": 72.1, "ua": 70.1},
    ("emodb", "III", "SRU"): {"wa": 64.2, "ua": 61.5},
    ("emodb", "III", "CNN+SRU"): {"wa": 82.5, "ua": 80.6},
    ("casia", "III", "CNN"): {"wa": 33.1, "ua": 33.1},
    ("casia", "III", "SRU"): {"wa": 42.4, "ua": 42.4},
    ("casia", "III", "CNN+SRU"): {"wa": 51.3, "ua": 51.3},
    # Table IV: t-test p-values (the paper gives neither n, t nor the per-fold values).
    ("emodb", "IV", "(CNN+SRU,CNN)"): {"p": "< 0.0001"},
    ("emodb", "IV", "(CNN+SRU,SRU)"): {"p": "< 0.0001"},
    ("casia", "IV", "(CNN+SRU,CNN)"): {"p": "< 0.0001"},
    ("casia", "IV", "(CNN+SRU,SRU)"): {"p": "< 0.0001"},
    # Table V: SVM on feature sets vs "Ours" (CNN+SRU at its best N).
    ("emodb", "V", "PLP"): {"wa": 73.3, "ua": None},
    ("emodb", "V", "MFCC"): {"wa": 57.6, "ua": None},
    ("emodb", "V", "HuWSF"): {"wa": 74.1, "ua": None},
    ("emodb", "V", "IS09"): {"wa": 75.5, "ua": 74.0},
    ("emodb", "V", "IS10"): {"wa": 78.1, "ua": 76.7},
    ("emodb", "V", "Ours"): {"wa": 82.5, "ua": 80.6},
    ("casia", "V", "PLP"): {"wa": 45.0, "ua": None},
    ("casia", "V", "MFCC"): {"wa": 36.1, "ua": None},
    ("casia", "V", "HuWSF"): {"wa": 42.5, "ua": None},
    ("casia", "V", "IS09"): {"wa": 37.7, "ua": 37.7},
    ("casia", "V", "IS10"): {"wa": 47.6, "ua": 47.6},
    ("casia", "V", "Ours"): {"wa": 51.3, "ua": 51.3},
}

from serbench.features.registry import PAPER_SETS as PAPER_FEATURES  # noqa: E402  (the paper's Table V rows)

from serbench.systems.builtin.cnn_sru import PAPER_SEGMENTS  # noqa: E402

DEFAULT_CLASSIFIER = "svm-linear"
# Our model names for the paper's: the cascade and the two ablations of Table III.
PAPER_MODELS = {"cnn-sru": "CNN+SRU", "cnn": "CNN", "sru": "SRU"}

NO_NORM = "no speaker norm (paper protocol)"
SPK_NORM = "per-speaker z-norm"
MISSING = "missing"
NOT_APPLICABLE = "n/a"
NOT_REPORTED = "not reported"

LEGEND_MISSING = f'"{MISSING}" = no complete run of that system in the store (never a number).'
LEGEND_PAPER = ('"paper" columns are the numbers printed in Jiang et al. (CNN+SRU paper), not ours; '
                f'"{NOT_REPORTED}" = the paper prints "/".')
LEGEND_METRICS = ("WA = accuracy, UA = mean per-class recall, in percent; pooled over all test "
                  "predictions, and mean ± sd over the protocol's folds (speakers; sessions under "
                  "loso-session; sd with ddof=1). "
                  "Recomputed from predictions.parquet.")


# ---------------------------------------------------------------- formatting helpers

def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal; NaN/None -> "n/a"."""
    return NOT_APPLICABLE if x is None or math.isnan(x) else f"{100 * x:.1f}"


def mean_sd(mean: float, sd: float) -> str:
    """``"45.2 ± 3.1"`` from fractions; sd is "n/a" with a single fold."""
    return f"{pct(mean)} ± {pct(sd)}"


def paper_value(corpus: str, table: str, row: str, metric: str) -> str:
    """The paper's number for a cell as text, or "not reported"/"n/a" (no such row for the corpus)."""
    entry = PAPER_REPORTED.get((corpus.lower(), table, row))
    if entry is None:
        return NOT_APPLICABLE
    value = entry.get(metric)
    if value is None:
        return NOT_REPORTED
    return value if isinstance(value, str) else f"{value:.1f}"


def paper_best_segments(corpus: str) -> int | None:
    """The N of the paper's best CNN+SRU on ``corpus`` (argmax UA over Tables I-II), None if not a paper corpus."""
    best: tuple[float, int] | None = None
    for (c, table, row), entry in PAPER_REPORTED.items():
        if c != corpus.lower() or table not in ("I", "II"):
            continue
        n = 1 if table == "I" else int(row.split("=")[1])
        if best is None or float(entry["ua"]) > best[0]:
            best = (float(entry["ua"]), n)
    return best[1] if best else None


def _metric_cells(run: RunResult | None, absent: str = MISSING) -> list[str]:
    """WA, UA, WA mean ± sd, UA mean ± sd, run id; ``absent`` in every cell when no run."""
    if run is None:
        return [absent] * 5
    m = run.metrics
    return [pct(m["wa"]), pct(m["ua"]), mean_sd(m["wa_mean"], m["wa_sd"]),
            mean_sd(m["ua_mean"], m["ua_sd"]), run.run_id]


def _values_row(table: str, row: str, variant: str, run: RunResult | None) -> dict:
    base = {"table": table, "row": row, "variant": variant}
    if run is None:
        return {**base, "system": None, "run_id": None, "n_folds": 0, "wa": float("nan"),
                "ua": float("nan"), "wa_mean": float("nan"), "wa_sd": float("nan"),
                "ua_mean": float("nan"), "ua_sd": float("nan")}
    m = run.metrics
    return {**base, "system": run.system, "run_id": run.run_id, "n_folds": len(m["folds"]),
            **{k: 100 * m[k] for k in ("wa", "ua", "wa_mean", "wa_sd", "ua_mean", "ua_sd")}}


def _metric_columns(suffix: str = "") -> list[str]:
    s = f" — {suffix}" if suffix else ""
    return [f"WA %{s}", f"UA %{s}", f"WA mean ± sd{s}", f"UA mean ± sd{s}", f"run{s}"]


# ---------------------------------------------------------------- selection helpers

def deep_runs(col: Collection, model: str, speaker_norm: bool = False) -> dict[int, RunResult]:
    """Runs of deep ``model`` keyed by number of segments."""
    return {r.spec.segments: r for r in col.runs.values()
            if r.spec.kind == "deep" and r.spec.model == model and r.spec.segments is not None
            and r.spec.speaker_norm == speaker_norm}


def decision_notes(col: Collection) -> list[str]:
    """One note per deep run whose test decision departs from its paper's (its record's ``decision``), so a
    row named after the paper's model is not read as that model's decision."""
    return [f"{r.system}: decision = {r.record['config']['decision']}." for r in sorted(col.runs.values(),
            key=lambda r: r.system) if r.spec.kind == "deep" and (r.record.get("config") or {}).get("decision")]


def best_run(runs: Iterable[RunResult]) -> RunResult | None:
    """The run with the highest pooled UA (ties: higher WA, then name), or None."""
    runs = list(runs)
    return max(runs, key=lambda r: (r.metrics["ua"], r.metrics["wa"], r.system)) if runs else None


def baseline_run(col: Collection, feature: str, classifier: str, speaker_norm: bool) -> RunResult | None:
    """The run of ``feature`` (case-insensitive) with ``classifier`` and that normalization, if any."""
    for r in col.runs.values():
        s = r.spec
        if (s.kind == "baseline" and (s.feature or "").lower() == feature.lower()
                and s.classifier == classifier and s.speaker_norm == speaker_norm):
            return r
    return None


def segments_for_ablation(col: Collection) -> list[int]:
    """The N of Tables III and IV: every N with a cnn or sru run, our best N of CNN+SRU (by pooled
    UA) and the paper's best N for this corpus; 1 when none of these exists.

    Not every N: the ablations are asked for where the cascade is compared.
    """
    ns = {n for m in ("cnn", "sru") for n in deep_runs(col, m)}
    best = best_run(deep_runs(col, "cnn-sru").values())
    if best is not None:
        ns.add(best.spec.segments)
    if paper_best_segments(col.corpus) is not None:
        ns.add(paper_best_segments(col.corpus))
    return sorted(ns) or [1]


# ---------------------------------------------------------------- Table V

def feature_table(col: Collection) -> Table:
    """Table V: SVM on each feature set (and every other system present) in both normalization variants."""
    corpus = col.corpus
    rows: list[list[str]] = []
    values: list[dict] = []

    def add(label: str, system: str, paper_row: str | None, no_norm: RunResult | None,
            spk: RunResult | None, spk_absent: str) -> None:
        paper = ([paper_value(corpus, "V", paper_row, "wa"), paper_value(corpus, "V", paper_row, "ua")]
                 if paper_row else [NOT_APPLICABLE, NOT_APPLICABLE])
        rows.append([label, system, *_metric_cells(no_norm), *_metric_cells(spk, spk_absent), *paper])
        values.append(_values_row("V", label, NO_NORM, no_norm))
        values.append(_values_row("V", label, SPK_NORM, spk))

    baselines = [s for s in col.specs() if s.kind == "baseline"]
    paper_lower = {f.lower(): f for f in PAPER_FEATURES}
    for feature in PAPER_FEATURES:
        classifiers = sorted({s.classifier or "" for s in baselines if (s.feature or "").lower() == feature.lower()},
                             key=lambda c: (c != DEFAULT_CLASSIFIER, c)) or [DEFAULT_CLASSIFIER]
        for clf in classifiers:
            add(feature, f"{feature}-{clf}", feature, baseline_run(col, feature, clf, False),
                baseline_run(col, feature, clf, True), MISSING)
    others = sorted({(s.feature or s.name, s.classifier or "") for s in baselines
                     if (s.feature or "").lower() not in paper_lower})
    for feature, clf in others:
        add(feature, f"{feature}-{clf}", None, baseline_run(col, feature, clf, False),
            baseline_run(col, feature, clf, True), MISSING)
    # Deep models: the best N of each (by pooled UA on the test folds, as the paper picks "Ours").
    deep_models = sorted({s.model for s in col.specs() if s.kind == "deep" and s.model and s.segments is not None},
                         key=lambda m: (m != "cnn-sru", m))
    for model in deep_models:
        plain = best_run(deep_runs(col, model, False).values())
        normed = best_run(deep_runs(col, model, True).values())
        chosen = plain or normed
        label = f"{PAPER_MODELS.get(model, model)} (best N={chosen.spec.segments}"
        if plain is not None and normed is not None and normed.spec.segments != plain.spec.segments:
            label += f"; with speaker norm N={normed.spec.segments}"   # each column picks its own best N
        label += ")"
        add(label, chosen.system, "Ours" if model == "cnn-sru" else None, plain, normed,
            MISSING if normed is None and plain is None else NOT_APPLICABLE)
    if "cnn-sru" not in deep_models:
        add("CNN+SRU (best N)", "cnn-sru-N*", "Ours", None, None, NOT_APPLICABLE)
    # Anything else (unknown kinds, deep runs without a segment count) gets a row of its own.
    leftovers = (s for s in col.specs() if s.kind != "baseline" and not (s.kind == "deep" and s.model in deep_models
                                                                          and s.segments is not None))
    for spec in sorted(leftovers, key=lambda s: s.name):
        run = col.runs[spec.name]
        add(spec.name, spec.name, None, None if spec.speaker_norm else run,
            run if spec.speaker_norm else None, NOT_APPLICABLE)

    columns = (["Feature / model", "System"] + _metric_columns(NO_NORM) + _metric_columns(SPK_NORM)
               + ["WA % — paper", "UA % — paper"])
    frame = pd.DataFrame(rows, columns=columns, dtype=str)
    notes = [
        f'Columns marked "{NO_NORM}" follow the paper (no per-speaker normalization); columns marked '
        f'"{SPK_NORM}" z-score each speaker\'s features with that speaker\'s own statistics. '
        "They are different protocols: compare the paper only with the first.",
        LEGEND_METRICS, LEGEND_MISSING,
        f'"{NOT_APPLICABLE}" = not applicable (a deep system run only in one normalization variant: '
        "`--speaker-norm` trains the other; no paper value for that row or corpus).",
        "Deep rows show the N with the best pooled UA on the test folds, as the paper's \"Ours\" row "
        "does (an optimistic choice: N is selected on test speakers).",
        LEGEND_PAPER,
    ]
    notes += _corpus_notes(corpus)
    return Table("table5", f"Table V — feature comparison on {corpus} (SVM per feature set, and deep systems)",
                 frame, notes, pd.DataFrame(values))


def _corpus_notes(corpus: str) -> list[str]:
    if corpus.lower() == "emodb":
        return ["The paper's EMO-DB numbers are on the full corpus; a shortened copy (e.g. cut to 2 s) "
                "is expected to score lower."]
    if not any(c == corpus.lower() for c, _, _ in PAPER_REPORTED):
        return [f"The paper reports no results on {corpus}: paper columns are n/a."]
    return []


# ---------------------------------------------------------------- Tables I-III

_DEEP_COLUMNS = ["Model", "N", "System"] + _metric_columns() + ["WA % — paper", "UA % — paper", "paper source"]


def _deep_row(corpus: str, model: str, n: int, run: RunResult | None,
              paper: tuple[str, str] | None) -> list[str]:
    label = PAPER_MODELS.get(model, model)
    if paper is None:
        p_wa = p_ua = src = NOT_APPLICABLE
    else:
        p_wa, p_ua = paper_value(corpus, paper[0], paper[1], "wa"), paper_value(corpus, paper[0], paper[1], "ua")
        src = f"Table {paper[0]}, {paper[1]}" if p_wa != NOT_APPLICABLE else NOT_APPLICABLE
    return [label, str(n), f"{model}-N{n}", *_metric_cells(run), p_wa, p_ua, src]


def _deep_notes(col: Collection) -> list[str]:
    return [LEGEND_METRICS, LEGEND_MISSING, LEGEND_PAPER,
            f'"{NOT_APPLICABLE}" in paper columns = the paper has no such row for this corpus.',
            *decision_notes(col), *_corpus_notes(col.corpus)]


def table1(col: Collection) -> Table:
    """Table I: CNN+SRU on the non-segmented utterance (N = 1)."""
    run = deep_runs(col, "cnn-sru").get(1)
    frame = pd.DataFrame([_deep_row(col.corpus, "cnn-sru", 1, run, ("I", "CNN+SRU N=1"))],
                         columns=_DEEP_COLUMNS, dtype=str)
    return Table("table1", f"Table I — CNN+SRU, non-segmented (N = 1), {col.corpus}", frame,
                 _deep_notes(col), pd.DataFrame([_values_row("I", "cnn-sru-N1", NO_NORM, run)]))


def table2(col: Collection) -> Table:
    """Table II: CNN+SRU for N = 1..5 (and any other N present)."""
    runs = deep_runs(col, "cnn-sru")
    ns = sorted(set(PAPER_SEGMENTS) | set(runs))
    rows, values = [], []
    for n in ns:
        paper = ("I", "CNN+SRU N=1") if n == 1 else ("II", f"N={n}")
        rows.append(_deep_row(col.corpus, "cnn-sru", n, runs.get(n), paper))
        values.append(_values_row("II", f"cnn-sru-N{n}", NO_NORM, runs.get(n)))
    return Table("table2", f"Table II — CNN+SRU by number of segments N, {col.corpus}",
                 pd.DataFrame(rows, columns=_DEEP_COLUMNS, dtype=str),
                 _deep_notes(col) + ["The paper's N = 1 value is its Table I."], pd.DataFrame(values))


def table3(col: Collection) -> Table:
    """Table III: CNN alone, SRU alone and CNN+SRU at every N present (else the paper's best N)."""
    best_n = paper_best_segments(col.corpus)
    rows, values = [], []
    for n in segments_for_ablation(col):
        for model, paper_name in _ablation_order():
            run = deep_runs(col, model).get(n)
            rows.append(_deep_row(col.corpus, model, n, run, ("III", paper_name) if n == best_n else None))
            values.append(_values_row("III", f"{model}-N{n}", NO_NORM, run))
    notes = _deep_notes(col)
    if best_n is not None:
        notes.append(f"The paper does not state N for CNN and SRU alone; its Table III values are shown at "
                     f"N = {best_n}, the N of its best CNN+SRU on {col.corpus}.")
    return Table("table3", f"Table III — CNN, SRU and CNN+SRU, {col.corpus}",
                 pd.DataFrame(rows, columns=_DEEP_COLUMNS, dtype=str), notes, pd.DataFrame(values))


def _ablation_order() -> list[tuple[str, str]]:
    # The paper's row order: the two single models, then the cascade.
    return [("cnn", "CNN"), ("sru", "SRU"), ("cnn-sru", "CNN+SRU")]


def expected_systems(col: Collection) -> list[SystemSpec]:
    """The systems the tables need: the baseline grid in both variants and the deep grid."""
    out = [SystemSpec(name=f"{f}-{DEFAULT_CLASSIFIER}" + ("-spknorm" if spk else ""), kind="baseline",
                      feature=f, classifier=DEFAULT_CLASSIFIER, speaker_norm=spk)
           for f in PAPER_FEATURES for spk in (False, True)]
    out += [SystemSpec(name=f"cnn-sru-N{n}", kind="deep", model="cnn-sru", segments=n) for n in PAPER_SEGMENTS]
    for n in segments_for_ablation(col):
        out += [SystemSpec(name=f"{m}-N{n}", kind="deep", model=m, segments=n) for m in ("cnn", "sru")]
    return out


def missing_systems(col: Collection) -> list[SystemSpec]:
    """Expected systems with no complete run in the store."""
    out = []
    for spec in expected_systems(col):
        if spec.kind == "baseline":
            found = baseline_run(col, spec.feature or "", spec.classifier or "", spec.speaker_norm)
        else:
            found = deep_runs(col, spec.model or "").get(spec.segments or 0)
        if found is None:
            out.append(spec)
    return out


# ---------------------------------------------------------------- significance (Table IV and features)

_SIG_COLUMNS = ["A", "B", "level", "test", "n", "mean diff A−B (points)", "statistic", "df", "p",
                "per-fold UA % A", "per-fold UA % B", "note"]

SIGNIFICANCE_NOTES = [
    "Fold level: paired tests on per-fold UA over the SAME LOSO folds (speakers). With n folds the "
    "paired t-test has n−1 degrees of freedom: with 4 folds (CASIA) only 3, so it has little power "
    "and the normality of the differences cannot be checked. The Wilcoxon signed-rank test is run "
    "only where n ≥ 6 (below that even a perfect split cannot reach p < 0.05).",
    "Utterance level: McNemar's exact test (binomial test on the discordant utterances) on the pooled "
    "predictions of the same utterances. More power with few speakers, but it compares accuracy (WA), "
    "not UA, and treats utterances as independent although they cluster by speaker.",
    "mean diff = A minus B in percentage points (UA per fold for fold-level tests, WA for McNemar); "
    "p is two-sided. Computed with " + "; ".join(f"{k}: {v}" for k, v in SCIPY_FUNCTIONS.items()) + ".",
]


def _p(p: float | None) -> str:
    if p is None:
        return NOT_APPLICABLE
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def _stat(t: PairedTest) -> str:
    if t.statistic is None:
        return NOT_APPLICABLE
    if t.test == T_TEST:
        return f"t = {t.statistic:.3f}"
    if t.test == WILCOXON:
        return f"W = {t.statistic:g}"
    return f"A right, B wrong = {t.statistic:g}"


def _folds(values: dict[str, float]) -> str:
    return "; ".join(f"{k}: {v:.1f}" for k, v in values.items()) or NOT_APPLICABLE


def _sig_rows(a_name: str, b_name: str, a: RunResult | None, b: RunResult | None) -> list[list[str]]:
    """Rows for one pair: the three tests, or one row saying which run is missing."""
    if a is None or b is None:
        absent = " and ".join(n for n, r in ((a_name, a), (b_name, b)) if r is None)
        return [[a_name, b_name, NOT_APPLICABLE, MISSING, "0", MISSING, MISSING, MISSING, MISSING,
                 MISSING, MISSING, f"not tested: no complete run of {absent}"]]
    rows = []
    for t in compare(a, b):
        rows.append([a.system, b.system, t.level, t.test, str(t.n),
                     NOT_APPLICABLE if t.mean_diff is None else f"{round(t.mean_diff, 1) + 0.0:+.1f}",
                     _stat(t), NOT_APPLICABLE if t.df is None else str(t.df), _p(t.p),
                     _folds(t.per_fold_a), _folds(t.per_fold_b), t.note])
    return rows


def table4(col: Collection) -> Table:
    """Table IV: CNN+SRU vs CNN and vs SRU at each N present (else the paper's best N)."""
    best_n = paper_best_segments(col.corpus)
    rows = []
    for n in segments_for_ablation(col):
        for other, paper_row in (("cnn", "(CNN+SRU,CNN)"), ("sru", "(CNN+SRU,SRU)")):
            paper_p = paper_value(col.corpus, "IV", paper_row, "p") if n == best_n else NOT_APPLICABLE
            for row in _sig_rows(f"cnn-sru-N{n}", f"{other}-N{n}", deep_runs(col, "cnn-sru").get(n),
                                 deep_runs(col, other).get(n)):
                rows.append(row + [paper_p])
    notes = SIGNIFICANCE_NOTES + [
        LEGEND_MISSING,
        "p — paper: the paper's Table IV (a t-test; it states neither n, t nor the per-fold values, "
        f"nor N; shown at N = {best_n}, its best CNN+SRU)." if best_n else
        f"The paper reports no Table IV for {col.corpus}.",
    ]
    return Table("table4", f"Table IV — significance of CNN+SRU vs CNN and vs SRU, {col.corpus}",
                 pd.DataFrame(rows, columns=_SIG_COLUMNS + ["p — paper"], dtype=str), notes)


def feature_significance_pairs(col: Collection) -> list[tuple[str, str, RunResult | None, RunResult | None]]:
    """Default feature-level pairs: best deep vs best SVM, IS10 vs IS09, and each spknorm vs no norm."""
    pairs: list[tuple[str, str, RunResult | None, RunResult | None]] = []
    deep = best_run(r for r in col.runs.values() if r.spec.kind == "deep" and not r.spec.speaker_norm)
    svm = best_run(r for r in col.runs.values() if r.spec.kind == "baseline" and not r.spec.speaker_norm)
    pairs.append((deep.system if deep else "best deep system", svm.system if svm else "best SVM baseline",
                  deep, svm))
    variants = sorted({(s.classifier or "", s.speaker_norm) for s in col.specs() if s.kind == "baseline"}
                      ) or [(DEFAULT_CLASSIFIER, False)]
    for clf, spk in variants:
        suffix = "-spknorm" if spk else ""
        pairs.append((f"IS10-{clf}{suffix}", f"IS09-{clf}{suffix}", baseline_run(col, "IS10", clf, spk),
                      baseline_run(col, "IS09", clf, spk)))
    for spec in sorted((s for s in col.specs() if s.kind == "baseline" and s.speaker_norm), key=lambda s: s.name):
        plain = baseline_run(col, spec.feature or "", spec.classifier or "", False)
        if plain is not None:
            pairs.append((spec.name, plain.system, col.runs[spec.name], plain))
    return pairs


def feature_significance(col: Collection) -> Table:
    """Significance between feature systems: best deep vs best SVM, IS10 vs IS09, normalization effect."""
    rows = [row for a_name, b_name, a, b in feature_significance_pairs(col) for row in _sig_rows(a_name, b_name, a, b)]
    notes = SIGNIFICANCE_NOTES + [
        LEGEND_MISSING,
        "Pairs: the best deep system vs the best SVM baseline (both without speaker normalization, best by "
        "pooled UA), IS10 vs IS09 per classifier and variant, and each per-speaker-normalized baseline vs the "
        "same system without normalization.",
    ]
    return Table("significance-features", f"Significance — feature systems, {col.corpus}",
                 pd.DataFrame(rows, columns=_SIG_COLUMNS, dtype=str), notes)
