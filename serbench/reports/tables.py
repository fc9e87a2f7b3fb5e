"""The paper's Tables I, II, III and V, rebuilt from the results store.

Every measured number comes from :func:`serbench.experiments.metrics.summarize` on stored
predictions (via :mod:`serbench.reports.collect`). The paper's own figures, its feature sets
and its range of N come from the experiment file the collection follows (``recipes/jiang2019.toml``
by default: ``col.experiment``), never from this module; they are always labelled "paper".
"""
from __future__ import annotations

import math
from typing import Iterable

import pandas as pd

from serbench.reports.collect import Collection, RunResult, SystemSpec, mixing_warnings
from serbench.reports.render import Table
from serbench.reports.significance import SCIPY_FUNCTIONS, T_TEST, WILCOXON, PairedTest, compare
from serbench.systems.identity import describe_differences

DEFAULT_CLASSIFIER = "svm-linear"
# Our model names for the paper's: the cascade and the two ablations of Table III.
PAPER_MODELS = {"cnn-sru": "CNN+SRU", "cnn": "CNN", "sru": "SRU"}
#: The cascade's setting that mixes in its own CNN's decision (`fast`'s fused decision when > 0: not the paper's).
FUSE_KEY = "sru_fuse"

NO_NORM = "no speaker norm (paper protocol)"
SPK_NORM = "per-speaker z-norm"
MISSING = "missing"
NOT_APPLICABLE = "n/a"
NOT_REPORTED = "not reported"

LEGEND_MISSING = f'"{MISSING}" = no complete run of that system in the store (never a number).'
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


# ---------------------------------------------------------------- the experiment's facts

def reported(col: Collection) -> dict:
    """(corpus, table, row) -> {"wa", "ua", "p"}: the figures the experiment file reports (its [reported])."""
    return dict(col.experiment.reported) if col.experiment is not None else {}


def paper_features(col: Collection) -> tuple[str, ...]:
    """The feature sets of the experiment's SVM rows (Table V), in the file's order."""
    return tuple(str(f) for f in col.experiment.values(DEFAULT_CLASSIFIER, "feature")) if col.experiment else ()


def paper_segments(col: Collection) -> tuple[int, ...]:
    """The N the experiment declares for CNN+SRU (Tables I-II), in order."""
    return tuple(sorted(int(n) for n in col.experiment.values("cnn-sru", "segments"))) if col.experiment else ()


def paper_name(col: Collection) -> str:
    """Whose figures the "paper" columns hold: the experiment's ``paper`` (its first words), else its title."""
    exp = col.experiment
    if exp is None:
        return "the paper"
    return (exp.paper.split(",")[0] if exp.paper else exp.title) or exp.name


def legend_paper(col: Collection) -> str:
    if not reported(col):
        return (f'"paper" columns: {col.experiment_label} reports no figures, so they are "{NOT_APPLICABLE}".')
    return (f'"paper" columns are the figures printed in {paper_name(col)} (from {col.experiment_label}), not ours; '
            f'"{NOT_REPORTED}" = the paper prints "/".')


def paper_value(col: Collection, table: str, row: str, metric: str) -> str:
    """The paper's number for a cell as text, or "not reported"/"n/a" (no such row for the corpus)."""
    entry = reported(col).get((col.corpus.lower(), table, row))
    if entry is None:
        return NOT_APPLICABLE
    value = entry.get(metric)
    if value is None:
        return NOT_REPORTED
    return value if isinstance(value, str) else f"{value:.1f}"


def paper_best_segments(col: Collection) -> int | None:
    """The N of the paper's best CNN+SRU on the corpus (argmax UA over Tables I-II), None if it reports none."""
    best: tuple[float, int] | None = None
    for (c, table, row), entry in reported(col).items():
        if c != col.corpus.lower() or table not in ("I", "II") or entry.get("ua") is None:
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
    """Runs of deep ``model`` keyed by number of segments (a name's row only: never a variant)."""
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
    if paper_best_segments(col) is not None:
        ns.add(paper_best_segments(col))
    return sorted(ns) or [1]


def fuse_weight(run: RunResult | None) -> float:
    """The run's ``sru_fuse`` (0 for the paper's cascade and for runs of other systems)."""
    if run is None or run.spec is None or run.spec.system != "cnn-sru":
        return 0.0
    return float(run.spec.setting(FUSE_KEY, 0.0) or 0.0)


def fused_label(weight: float | None) -> str:
    w = f"{weight:g}" if weight else "?"
    return f"CNN+SRU fused with its CNN ({w}, not the paper's)"


def fused_run(col: Collection, n: int) -> tuple[RunResult | None, float] | None:
    """CNN+SRU's fused decision at ``n`` segments: the run the experiment declares (``sru_fuse`` > 0, no speaker
    norm), whether stored under its own name (``cnn-sru-fuse75-N3``) or as a variant of ``cnn-sru-N3``; else
    such a run the store holds under its own name. ``(run or None, weight)``; None when neither exists."""
    for p in col.planned:
        s = p.identity.settings
        if (p.system == "cnn-sru" and float(s.get(FUSE_KEY) or 0) > 0 and s.get("segments") == n
                and not s.get("speaker_norm") and p.seed == 0):
            return col.find(p.identity), float(s[FUSE_KEY])
    present = [r for r in col.runs.values() if r.spec.kind == "deep" and fuse_weight(r) > 0
               and r.spec.segments == n and not r.spec.speaker_norm]
    best = best_run(present)
    return (best, fuse_weight(best)) if best is not None else None


def model_label(model: str | None, run: RunResult | None = None) -> str:
    """A deep model's row label: the paper's name (CNN+SRU, CNN, SRU), the fused decision's, or the model."""
    if run is not None and fuse_weight(run) > 0:
        return fused_label(fuse_weight(run))
    return PAPER_MODELS.get(model or "", model or "")


# ---------------------------------------------------------------- what differs from the experiment file

def identity_notes(col: Collection, runs: Iterable[RunResult | None], names: Iterable[str] = ()) -> list[str]:
    """What a table's reader must know about its rows against the experiment file: every setting in which a
    shown row differs from the file's declaration, rows whose settings were not recorded or that the file
    does not declare, declared rows missing while variants are stored, and rows of different label sets or
    protocols."""
    shown = list({id(r): r for r in runs if r is not None}.values())   # each run once (runs are not hashable)
    names = list(dict.fromkeys(names))
    label = col.experiment_label
    notes: list[str] = []
    explained = shown + [col.runs[v] for n in names if n in col.absent for v in col.variants.get(n, [])
                         if all(col.runs[v] is not r for r in shown)]
    for run in explained:
        spec = run.spec
        if spec.check == "variant":
            diff = {k: (v, r) for k, v, r in spec.differs}
            what = describe_differences(diff) if diff else "its identity differs from the declaration"
            also = (f"; {label} declares it as a run of its own" if spec.planned else "")
            notes.append(f"{spec.name}: not the row of {spec.stored} ({label} declares other settings); differs in "
                         f"{len(diff)} setting(s): {what}{also}.")
        elif spec.check == "unrecorded":
            notes.append(f"{spec.name} (run {run.run_id}): its run.json records no settings (written before serbench "
                         f"recorded them), so whether it follows {label} cannot be checked; shown as {spec.stored}.")
        elif spec.check == "profile" and spec.kind != "baseline":
            exp = col.experiment
            notes.append(f"{spec.name}: not declared in {label}; its settings are the "
                         f"{exp.profile if exp else 'default'} profile's with what its name encodes.")
    notes += [col.absent[name] for name in names if name in col.absent]
    notes += mixing_warnings(shown)
    return notes


# ---------------------------------------------------------------- Table V

def feature_table(col: Collection) -> Table:
    """Table V: SVM on each feature set (and every other system present) in both normalization variants."""
    corpus = col.corpus
    rows: list[list[str]] = []
    values: list[dict] = []

    def add(label: str, system: str, paper_row: str | None, no_norm: RunResult | None,
            spk: RunResult | None, spk_absent: str) -> None:
        paper = ([paper_value(col, "V", paper_row, "wa"), paper_value(col, "V", paper_row, "ua")]
                 if paper_row else [NOT_APPLICABLE, NOT_APPLICABLE])
        rows.append([label, system, *_metric_cells(no_norm), *_metric_cells(spk, spk_absent), *paper])
        values.append(_values_row("V", label, NO_NORM, no_norm))
        values.append(_values_row("V", label, SPK_NORM, spk))

    baselines = [s for s in col.specs() if s.kind == "baseline"]
    features = paper_features(col)
    paper_lower = {f.lower(): f for f in features}
    for feature in features:
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
        label = f"{model_label(model, chosen)} (best N={chosen.spec.segments}"
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
        legend_paper(col),
    ]
    notes += _corpus_notes(col)
    notes += identity_notes(col, col.runs.values(), [f"{f}-{DEFAULT_CLASSIFIER}" + sfx for f in features
                                                      for sfx in ("", "-spknorm")])
    return Table("table5", f"Table V — feature comparison on {corpus} (SVM per feature set, and deep systems)",
                 frame, notes, pd.DataFrame(values))


def _corpus_notes(col: Collection) -> list[str]:
    corpus = col.corpus
    if not any(c == corpus.lower() for c, _, _ in reported(col)):
        return [f"{col.experiment_label} reports no figures on {corpus}: paper columns are n/a."]
    if corpus.lower() == "emodb":
        return ["The paper's EMO-DB numbers are on the full corpus; a shortened copy (e.g. cut to 2 s) "
                "is expected to score lower."]
    return []


# ---------------------------------------------------------------- Tables I-III

_DEEP_COLUMNS = ["Model", "N", "System"] + _metric_columns() + ["WA % — paper", "UA % — paper", "paper source"]


def _deep_row(col: Collection, model: str, n: int, run: RunResult | None,
              paper: tuple[str, str] | None, label: str | None = None, system: str | None = None) -> list[str]:
    if paper is None:
        p_wa = p_ua = src = NOT_APPLICABLE
    else:
        p_wa, p_ua = paper_value(col, paper[0], paper[1], "wa"), paper_value(col, paper[0], paper[1], "ua")
        src = f"Table {paper[0]}, {paper[1]}" if p_wa != NOT_APPLICABLE else NOT_APPLICABLE
    return [label or model_label(model), str(n), system or (run.system if run is not None else f"{model}-N{n}"),
            *_metric_cells(run), p_wa, p_ua, src]


def _deep_notes(col: Collection) -> list[str]:
    return [LEGEND_METRICS, LEGEND_MISSING, legend_paper(col),
            f'"{NOT_APPLICABLE}" in paper columns = the paper has no such row for this corpus.',
            *decision_notes(col), *_corpus_notes(col)]


def table1(col: Collection) -> Table:
    """Table I: CNN+SRU on the non-segmented utterance (N = 1)."""
    run = deep_runs(col, "cnn-sru").get(1)
    frame = pd.DataFrame([_deep_row(col, "cnn-sru", 1, run, ("I", "CNN+SRU N=1"))],
                         columns=_DEEP_COLUMNS, dtype=str)
    return Table("table1", f"Table I — CNN+SRU, non-segmented (N = 1), {col.corpus}", frame,
                 _deep_notes(col) + identity_notes(col, [run], ["cnn-sru-N1"]),
                 pd.DataFrame([_values_row("I", "cnn-sru-N1", NO_NORM, run)]))


def table2(col: Collection) -> Table:
    """Table II: CNN+SRU for N = 1..5 (and any other N present)."""
    runs = deep_runs(col, "cnn-sru")
    ns = sorted(set(paper_segments(col)) | set(runs))
    rows, values = [], []
    for n in ns:
        paper = ("I", "CNN+SRU N=1") if n == 1 else ("II", f"N={n}")
        rows.append(_deep_row(col, "cnn-sru", n, runs.get(n), paper))
        values.append(_values_row("II", f"cnn-sru-N{n}", NO_NORM, runs.get(n)))
    return Table("table2", f"Table II — CNN+SRU by number of segments N, {col.corpus}",
                 pd.DataFrame(rows, columns=_DEEP_COLUMNS, dtype=str),
                 _deep_notes(col) + ["The paper's N = 1 value is its Table I."]
                 + identity_notes(col, runs.values(), [f"cnn-sru-N{n}" for n in ns]), pd.DataFrame(values))


def table3(col: Collection) -> Table:
    """Table III: CNN alone, SRU alone and CNN+SRU at every N present (else the paper's best N)."""
    best_n = paper_best_segments(col)
    rows, values, shown, names = [], [], [], []
    for n in segments_for_ablation(col):
        for model, paper_name in _ablation_order():
            run = deep_runs(col, model).get(n)
            rows.append(_deep_row(col, model, n, run, ("III", paper_name) if n == best_n else None))
            values.append(_values_row("III", f"{model}-N{n}", NO_NORM, run))
            shown.append(run)
            names.append(f"{model}-N{n}")
        fused = fused_run(col, n)
        if fused is not None:
            run, weight = fused
            rows.append(_deep_row(col, "cnn-sru", n, run, None, label=fused_label(weight),
                                  system=run.system if run is not None else fused_name(weight, n)))
            values.append(_values_row("III", fused_name(weight, n), NO_NORM, run))
            shown.append(run)
    notes = _deep_notes(col) + identity_notes(col, shown, names)
    if any(fused_run(col, n) for n in segments_for_ablation(col)):
        notes.append(FUSED_NOTE)
    if best_n is not None:
        notes.append(f"The paper does not state N for CNN and SRU alone; its Table III values are shown at "
                     f"N = {best_n}, the N of its best CNN+SRU on {col.corpus}.")
    return Table("table3", f"Table III — CNN, SRU and CNN+SRU, {col.corpus}",
                 pd.DataFrame(rows, columns=_DEEP_COLUMNS, dtype=str), notes, pd.DataFrame(values))


FUSED_NOTE = ("CNN+SRU fused with its CNN = the `fast` profile's own decision (sru_fuse > 0: that share of its own "
              "CNN's segment softmax mixed into the cascade's probabilities): not the paper's system, shown beside "
              "the cascade; the CNN+SRU row is the paper's cascade (the SRU decides).")


def fused_name(weight: float, n: int) -> str:
    """The stored name of the fused decision at ``n`` (``cnn-sru-fuse75-N3``), from the registry's naming."""
    from serbench.systems import registry

    system = registry.get("cnn-sru")
    try:
        return system.stored_name(system.settings(None, {FUSE_KEY: weight, "segments": n}))
    except Exception:   # a weight this version refuses: name it plainly
        return f"cnn-sru (sru_fuse={weight:g})-N{n}"


def _ablation_order() -> list[tuple[str, str]]:
    # The paper's row order: the two single models, then the cascade.
    return [("cnn", "CNN"), ("sru", "SRU"), ("cnn-sru", "CNN+SRU")]


def expected_systems(col: Collection) -> list[SystemSpec]:
    """The systems the experiment file declares on this corpus (one per stored name), in the file's order."""
    from serbench.reports.collect import parse_system

    out = []
    for name, p in col.declared.items():
        spec = parse_system(name, {"config": {"system_type": p.system, "settings": p.identity.settings}})
        out.append(spec)
    return out


def missing_systems(col: Collection) -> list[SystemSpec]:
    """Declared systems whose row has no run (a variant under the name does not count)."""
    return [spec for spec in expected_systems(col) if spec.name not in col.runs]


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
    best_n = paper_best_segments(col)
    rows = []
    for n in segments_for_ablation(col):
        for other, paper_row in (("cnn", "(CNN+SRU,CNN)"), ("sru", "(CNN+SRU,SRU)")):
            paper_p = paper_value(col, "IV", paper_row, "p") if n == best_n else NOT_APPLICABLE
            for row in _sig_rows(f"cnn-sru-N{n}", f"{other}-N{n}", deep_runs(col, "cnn-sru").get(n),
                                 deep_runs(col, other).get(n)):
                rows.append(row + [paper_p])
        fused = fused_run(col, n)
        if fused is not None:
            run, weight = fused
            for other in ("cnn", "sru"):
                for row in _sig_rows(run.system if run is not None else fused_name(weight, n), f"{other}-N{n}", run,
                                     deep_runs(col, other).get(n)):
                    rows.append(row + [NOT_APPLICABLE])
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
