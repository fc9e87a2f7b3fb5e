"""The tables and the report open with the answer (every system run, ranked, tested against the best),
missing runs are commands that work as printed, and the significance figure marks what the t-test says."""
import html
import shlex
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from serbench.cli import cli
from serbench.reports import tables_for
from serbench.reports.collect import collect
from serbench.reports.html import build_report
from serbench.reports.plots import significance_grid, significance_plot
from serbench.reports.summary import summary_table

# Per-speaker accuracy of four SVMs: IS10 wins; IS09 and MFCC are clearly below it, PLP close to it.
SVMS = {
    "IS10-svm-linear": {"s1": 0.9, "s2": 0.8, "s3": 0.9, "s4": 0.7},
    "IS09-svm-linear": {"s1": 0.5, "s2": 0.5, "s3": 0.4, "s4": 0.4},
    "MFCC-svm-linear": {"s1": 0.4, "s2": 0.3, "s3": 0.5, "s4": 0.3},
    "PLP-svm-linear": {"s1": 0.9, "s2": 0.7, "s3": 0.8, "s4": 0.8},
}


def _svm_store(store, tmp_path: Path) -> tuple[Path, Path]:
    """SVM runs only, recorded (as `serbench run` records them) with their corpus folder and feature cache."""
    root, cache = tmp_path / "corpus", tmp_path / "feature cache"      # a space: the commands must quote it
    for system, acc in SVMS.items():
        feature = system.split("-")[0]
        store.add(system, acc=acc, config={"system_type": "svm-linear", "settings": {"feature": feature},
                                           "root": str(root), "cache": str(cache)})
    return root, cache


class _Tables(HTMLParser):
    """The tables of a page in order: id and rows of cell texts (thead and tbody)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self.codes: list[str] = []
        self._cell: list[str] | None = None
        self._code: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"id": dict(attrs).get("id"), "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "code":
            self._code = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.tables:
            self.tables[-1]["rows"][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "code" and self._code is not None:
            self.codes.append("".join(self._code))
            self._code = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._code is not None:
            self._code.append(data)


def test_an_svm_only_report_opens_with_the_summary_and_the_winner(store, tmp_path):
    _svm_store(store, tmp_path)
    report = build_report(["casia"], runs=store.root, out=tmp_path / "out")
    page = _Tables()
    page.feed(report.path.read_text(encoding="utf-8"))
    first = page.tables[0]
    assert first["id"] == "corpus-casia-summary"
    header, *rows = first["rows"]
    assert header[:3] == ["Rank", "System", "UA %"]
    col = dict(zip(header, zip(*rows)))
    assert col["System"][0] == "IS10-svm-linear" and col["Note"][0] == "best" and col["Rank"][0] == "1"
    assert col["System"][1] == "PLP-svm-linear"                       # then by pooled UA
    by_system = {r[1]: dict(zip(header, r)) for r in rows}
    assert by_system["IS09-svm-linear"]["UA %"].endswith("**")        # marked against the winner (t-test)
    assert by_system["MFCC-svm-linear"]["UA %"].endswith("**")
    assert not by_system["PLP-svm-linear"]["UA %"].endswith("*")       # close to it: no mark
    assert by_system["IS09-svm-linear"]["p McNemar"] not in ("", "n/a")  # the second test beside it
    # The summary says which test, once; the page's text says who won before any paper table.
    text = html.unescape(report.path.read_text(encoding="utf-8"))
    assert text.index("IS10-svm-linear has the best pooled UA") < text.index("Table I")
    assert text.count("one primary test: a two-sided paired t-test on per-fold UA") == 1
    # Paper tables without any run are folded with the command that fills them; Table V's missing reference is
    # replaced by the best system present, and the table says so.
    assert "<details class='empty'><summary><strong>Table I</strong>" in text   # folded, its command inside
    t5 = next(t for t in page.tables if t["id"] == "corpus-casia-table5")
    labels = [r[0] for r in t5["rows"][1:]]
    assert "IS10 (ref)" in labels
    assert "CNN+SRU, this table's reference, has no run: the marks compare every row with the best system " \
           "present instead, IS10-svm-linear (ref)" in text
    is09 = next(r for r in t5["rows"][1:] if r[0] == "IS09")
    assert is09[2].endswith("**")                                    # UA marked against the stand-in


def test_the_summary_values_and_a_single_system(store, tmp_path):
    _svm_store(store, tmp_path)
    values = summary_table(collect("casia", store.root)).values
    assert values["system"].tolist()[0] == "IS10-svm-linear" and values["best"].tolist() == [True, False, False, False]
    assert np.isnan(values["p_t_test"].iloc[0]) and (values["p_t_test"].iloc[1:] > 0).all()
    assert values.loc[values["system"] == "IS09-svm-linear", "diff_ua"].item() == pytest.approx(-37.5)
    one = type(store)(tmp_path / "one")
    one.add("IS10-svm-linear", acc=0.6)
    table = summary_table(collect("casia", one.root))
    assert table.frame["Note"].tolist() == ["n/a"] and "only system run" in table.notes[0]


def test_tables_md_opens_with_the_summary_and_folds_empty_tables(store, tmp_path):
    _svm_store(store, tmp_path)
    report = tables_for("casia", runs=store.root, out=tmp_path / "t")
    md = (tmp_path / "t" / "tables.md").read_text(encoding="utf-8")
    assert md.index("**Summary — every system run on casia, best first**") < md.index("**Figures**") \
        < md.index("Table I: no run yet — run: serbench run jiang2019")
    assert "| missing |" not in md.split("**Table V")[0]             # no table of "missing" cells before Table V
    assert {"table1", "table2", "table3", "table4"} <= set(report.folded)
    assert (tmp_path / "t" / "summary.csv").is_file() and (tmp_path / "t" / "significance.png").is_file()
    details = pd.read_csv(tmp_path / "t" / "significance-details.csv")
    assert {"p t-test (UA, folds)", "p McNemar (WA, utterances)", "tests disagree"} <= set(details.columns)
    assert len(details) == 6                                           # 4 systems: 6 pairs


def _commands(store, tmp_path: Path) -> list[str]:
    report = tables_for("casia", runs=store.root, out=tmp_path / "t")
    html = build_report(["casia"], runs=store.root, out=tmp_path / "r").path.read_text(encoding="utf-8")
    page = _Tables()
    page.feed(html)
    folded = [line.split(" — run: ", 1)[1] for line in report.folded.values() if " — run: " in line]
    from_page = [c for c in page.codes if c.startswith("serbench run ")]
    assert report.missing and folded and from_page
    return report.missing + folded + from_page


def test_every_missing_run_command_runs_as_printed_with_the_stores_folders(store, tmp_path, monkeypatch):
    root, cache = _svm_store(store, tmp_path)
    commands = _commands(store, tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.chdir(scratch)          # elsewhere than where the store was made: nothing relative may leak in
    monkeypatch.delenv("SERBENCH_RUNS", raising=False)
    monkeypatch.delenv("SERBENCH_CACHE", raising=False)
    for command in dict.fromkeys(commands):
        argv = shlex.split(command)
        assert argv[:2] == ["serbench", "run"], command
        opts = dict(zip(argv[2::1], argv[3::1]))
        assert opts["--cache"] == str(cache) and opts["--runs"] == str(store.root.resolve()), command
        assert opts["--root"] == str(root) and opts["--corpus"] == "casia", command
        res = CliRunner().invoke(cli, argv[1:] + ["--dry-run"])
        assert res.exit_code == 0, (command, res.output)
        listed = [ln.split() for ln in res.output.splitlines()[1:]]
        assert {ln[0] for ln in listed} == set(opts["--only"].split(",")), (command, res.output)
        assert all(ln[2] == "missing" for ln in listed), res.output
    assert not list(scratch.iterdir())   # a dry run writes nothing


def test_the_cache_given_to_tables_is_the_fallback(store, tmp_path, monkeypatch):
    store.add("IS10-svm-linear", acc=0.6, config={"system_type": "svm-linear", "settings": {"feature": "IS10"}})
    monkeypatch.chdir(tmp_path)
    report = tables_for("casia", runs=store.root, out=tmp_path / "t", cache="given-cache")
    assert all(f"--cache {tmp_path / 'given-cache'} " in c for c in report.missing)
    assert all("--cache" not in c for c in tables_for("casia", runs=store.root, out=tmp_path / "u").missing)


def test_new_runs_record_their_feature_cache(make_features, tmp_path):
    from serbench.systems.run import prepare

    X, m = make_features(speaker_offset=4.0)

    def load(corpus, feature, *, root, cache=None, jobs=1, emotions=None, **_):
        return X.copy(), m.copy()

    plan = prepare("svm-linear", "demo", "/corpus", overrides={"feature": "IS10"}, cache=tmp_path / "c" / ".." / "c",
                   load_features=load)
    assert plan.config["cache"] == str((tmp_path / "c").resolve())


# ---------------------------------------------------------------- the significance figure

SPEAKERS6 = ["s1", "s2", "s3", "s4", "s5", "s6"]
# Paired t-test of A against B on per-fold UA: p = 0.0446; one more wrong prediction in A's fold s2 gives 0.0512.
A_ACC = dict(zip(SPEAKERS6, (0.7, 0.6, 0.8, 0.5, 0.8, 0.5)))


def test_one_flipped_prediction_moves_a_mark_across_005(store):
    store.add("IS10-svm-linear", predictions=store.synth(A_ACC, speakers=SPEAKERS6))
    store.add("IS09-svm-linear", predictions=store.synth(0.5, speakers=SPEAKERS6))
    before = significance_grid(collect("casia", store.root))
    assert before.p.loc["IS10-svm-linear", "IS09-svm-linear"] == pytest.approx(0.0446, abs=5e-4)
    # Both tests significant (McNemar: 36 utterances right only by A, none only by B): no disagreement flag.
    assert before.marks.loc["IS10-svm-linear", "IS09-svm-linear"] == "+*"
    assert before.marks.loc["IS09-svm-linear", "IS10-svm-linear"] == "−*"
    folder = next((store.root / "casia" / "IS10-svm-linear").iterdir())
    preds = pd.read_parquet(folder / "predictions.parquet")
    right = preds.index[(preds["fold"] == "s2") & (preds["true"] == preds["predicted"])][0]
    preds.loc[right, "predicted"] = "sad" if preds.loc[right, "true"] != "sad" else "angry"
    preds.to_parquet(folder / "predictions.parquet", index=False)
    col = collect("casia", store.root)
    after = significance_grid(col)
    assert after.p.loc["IS10-svm-linear", "IS09-svm-linear"] == pytest.approx(0.0512, abs=5e-4)
    # No star any more; McNemar (35 against 0 utterances) still says p < 0.05: the pair is flagged †.
    assert after.p_second.loc["IS10-svm-linear", "IS09-svm-linear"] < 0.05
    assert after.marks.loc["IS10-svm-linear", "IS09-svm-linear"] == "+†"
    assert after.marks.loc["IS09-svm-linear", "IS10-svm-linear"] == "−†"
    assert after.disagree.to_numpy().sum() == 2 and not before.disagree.to_numpy().any()
    # The figure draws those marks: the black outline of p < 0.05 is gone, the dashed orange one of † is there.
    plot = significance_plot(col)
    texts = [t.get_text().split("\n")[0] for t in plot.figure.axes[0].texts]
    assert sorted(texts) == ["+†", "−†"]
    edges = [tuple(p.get_edgecolor()[:3]) for p in plot.figure.axes[0].patches]
    assert (0.0, 0.0, 0.0) not in edges and len(edges) == 2
    assert "uncorrected" in plot.caption and "one test: the two-sided paired t-test" in plot.caption
