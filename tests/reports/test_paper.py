"""Paper-shaped tables: one row per system, best in bold, marks against the reference, notes once."""
import re

import pandas as pd

from serbench.reports import tables_for
from serbench.reports.collect import collect
from serbench.reports.paper import (
    COMMON_METRICS,
    PAPER_UA,
    UA,
    WA,
    marked_cells,
    paper_systems,
    paper_table2,
    paper_table3,
    paper_table5,
    stars,
)
from serbench.reports.render import split_marks, to_latex, to_markdown
from serbench.systems.experiment import load_experiment

# The paper's figures, as the experiment file the tables follow by default gives them.
PAPER_REPORTED = load_experiment("jiang2019").reported

REF_ACC = {"s1": 0.5, "s2": 0.5, "s3": 0.5, "s4": 0.5}
# 40, 30, 40 and 30 points above the reference per fold: t = 12.1 with 3 df (p = 0.0012), and
# McNemar on 160 utterances decisive too.
BETTER = {"s1": 0.9, "s2": 0.8, "s3": 0.9, "s4": 0.8}


def _deep(model: str, segments: int | None = None) -> dict:
    return {"system_type": model, "kind": "deep", "model": model,
            "settings": {"segments": segments} if segments is not None else {}, "speaker_norm": False}


def _row(table, label: str) -> tuple[int, pd.Series]:
    first = table.frame.columns[0]
    hits = table.frame.index[table.frame[first] == label].tolist()
    assert len(hits) == 1, f"{label!r}: {table.frame[first].tolist()}"
    return hits[0], table.frame.loc[hits[0]]


def test_stars_thresholds():
    assert [stars(p) for p in (None, 0.2, 0.05, 0.049, 0.01, 0.0099)] == ["", "", "", "*", "*", "**"]


def test_table5_one_row_per_system_with_marks_and_bold(store):
    store.add("cnn-sru-N5", acc=REF_ACC, kind="deep", config=_deep("cnn-sru", 5))
    store.add("IS10-svm-linear", acc=BETTER)
    store.add("IS09-svm-linear", acc=REF_ACC)             # the same as the reference: no mark
    store.add("IS10-svm-linear-spknorm", acc=0.6)
    table = paper_table5(collect("casia", store.root))
    assert list(table.frame.columns) == ["Feature / model", WA, UA, "paper WA %", PAPER_UA]
    i, is10 = _row(table, "IS10")
    assert is10[WA] == "85.0**" and is10[UA] == "85.0**"
    assert is10[PAPER_UA] == f"{PAPER_REPORTED[('casia', 'V', 'IS10')]['ua']:.1f}"
    assert {(i, WA), (i, UA)} <= table.bold                     # the best of both our columns
    _, is09 = _row(table, "IS09")
    assert is09[UA] == "50.0" and split_marks(is09[WA]) == ("50.0", "")
    _, ref = _row(table, "CNN+SRU (N=5) (ref)")
    assert ref[UA] == "50.0"
    _, spk = _row(table, "IS10 (speaker norm)")
    assert spk[PAPER_UA] == "n/a"
    _, plp = _row(table, "PLP")
    assert plp[UA] == "missing" and plp[PAPER_UA] == "/"       # the paper prints "/" for PLP's UA
    # The long form keeps fold mean ± sd and run ids.
    assert "UA mean ± sd — no speaker norm (paper protocol)" in table.details.columns
    assert "20260101T000000" in table.details.to_string()


def test_marks_follow_the_predictions(store):
    store.add("cnn-sru-N5", acc=REF_ACC, kind="deep", config=_deep("cnn-sru", 5))
    store.add("IS10-svm-linear", acc={"s1": 0.6, "s2": 0.5, "s3": 0.5, "s4": 0.5})
    col = collect("casia", store.root)
    wa, ua = marked_cells(col.get("IS10-svm-linear"), col.get("cnn-sru-N5"))
    assert (wa, ua) == ("52.5", "52.5")                          # 4 more right utterances: not significant
    assert marked_cells(None, col.get("cnn-sru-N5")) == ("missing", "missing")


def test_table2_and_3_reference_rows(store):
    store.add("cnn-sru-N5", acc=REF_ACC, kind="deep", config=_deep("cnn-sru", 5))
    store.add("cnn-sru-N3", acc=BETTER, kind="deep", config=_deep("cnn-sru", 3))
    store.add("cnn-N5", acc=0.2, kind="deep", config=_deep("cnn", 5))
    col = collect("casia", store.root)
    t2 = paper_table2(col)
    assert t2.frame["N"].tolist() == ["1", "2", "3", "4", "5 (ref)"]   # the paper's best N on CASIA
    i, n3 = _row(t2, "3")
    assert n3[UA] == "85.0**" and (i, UA) in t2.bold
    paper_best = max(v["ua"] for (c, t, _), v in PAPER_REPORTED.items() if c == "casia" and t == "II")
    j = t2.frame.index[t2.frame["paper UA %"] == f"{paper_best:.1f}"][0]
    assert (j, "paper UA %") in t2.bold
    t3 = paper_table3(col)
    rows = t3.frame[t3.frame["N"] == "5"]
    assert rows["Model"].tolist() == ["CNN", "SRU", "CNN+SRU (ref)", "CNN+SRU fused with its CNN (0.75, not the paper's)"]
    assert rows.iloc[3][UA] == "missing"            # declared by jiang2019 at N = 5, not run here
    assert rows.iloc[0][UA] == "20.0" and rows.iloc[0][WA] == "20.0**"   # equal fold gaps: t undefined
    assert rows.iloc[1][UA] == "missing"


def test_systems_table_every_registered_system(store):
    store.add("cnn-sru-N5", acc=REF_ACC, kind="deep", config=_deep("cnn-sru", 5))
    store.add("crnn-mk", acc=BETTER, kind="deep", config=_deep("crnn-mk"))
    table = paper_systems(collect("casia", store.root))
    systems = table.frame["System"].tolist()
    assert systems[0] == "CNN+SRU (N=5) (ref)" and systems[-1] == "best SVM"
    assert {"crnn", "crnn-ctc", "crnn-mk", "dcnn-blstm-att"} <= set(systems)
    _, mk = _row(table, "crnn-mk")
    assert mk[UA] == "85.0**" and mk[PAPER_UA] == "64.5 (iemocap)"
    assert _row(table, "crnn")[1][UA] == "missing"


def test_new_registered_baseline_gets_a_row(store, toy_systems):
    store.add("IS10-toy-mean", acc=0.7, config={"system_type": "toy-mean", "settings": {"feature": "IS10"}})
    table = paper_table5(collect("casia", store.root))
    assert _row(table, "IS10-toy-mean (ref)")[1][UA] == "70.0"    # no CNN+SRU: the best run present is the reference


def test_formats_draw_bold_and_marks(store):
    store.add("cnn-sru-N5", acc=REF_ACC, kind="deep", config=_deep("cnn-sru", 5))
    store.add("IS10-svm-linear", acc=BETTER)
    store.add("IS09-svm-linear", acc=0.3)
    table = paper_table5(collect("casia", store.root))
    md = to_markdown(table)
    assert "| IS10 | **85.0**\\*\\* |" in md
    tex = to_latex(table)
    assert r"IS10 & \textbf{85.0}$^{**}$ &" in tex


def test_notes_once_per_output(store, tmp_path):
    store.add("cnn-sru-N5", acc=REF_ACC, kind="deep", config=_deep("cnn-sru", 5))
    store.add("IS10-svm-linear", acc=BETTER)
    report = tables_for("casia", runs=store.root, out=tmp_path / "out")
    assert sum(COMMON_METRICS in t.common for t in report.shown) >= 4
    md = (tmp_path / "out" / "tables.md").read_text(encoding="utf-8")
    tex = (tmp_path / "out" / "tables.tex").read_text(encoding="utf-8")
    assert md.count("WA = accuracy, UA = mean per-class recall") == 1
    assert tex.count("WA = accuracy, UA = mean per-class recall") == 1
    assert md.count("Significance marks:") == 1
    # Each per-table .tex has only its own notes.
    assert "WA = accuracy" not in (tmp_path / "out" / "table5.tex").read_text(encoding="utf-8")
    # Every shown table has at most six columns: the paper's shape.
    assert all(len(t.frame.columns) <= 6 for t in report.shown)
    assert re.search(r"Runs used \(latest complete per system and settings, checked against jiang2019.toml\): "
                     r".*IS10-svm-linear/20260101T000000", md)


def test_a_decision_that_departs_from_the_paper_is_printed_under_the_tables(store, tmp_path):
    fused = "0.25 x the cascade's probabilities + 0.75 x the mean of its own CNNs' segment softmax"
    store.add("cnn-sru-N5", acc=REF_ACC, kind="deep", config={**_deep("cnn-sru", 5), "decision": fused})
    store.add("cnn-N5", acc=0.2, kind="deep", config=_deep("cnn", 5))
    col = collect("casia", store.root)
    note = f"cnn-sru-N5: decision = {fused}."
    assert all(note in table.common for table in (paper_table2(col), paper_table3(col), paper_table5(col),
                                                  paper_systems(col)))
    assert not [n for n in paper_table3(col).common if "cnn-N5: decision" in n]
    tables_for("casia", runs=store.root, out=tmp_path / "out")
    assert (tmp_path / "out" / "tables.md").read_text(encoding="utf-8").count(note) == 1
    plain = type(store)(tmp_path / "plain")
    plain.add("cnn-sru-N5", acc=REF_ACC, kind="deep", config=_deep("cnn-sru", 5))
    assert not [n for n in paper_table3(collect("casia", plain.root)).common if "decision =" in n]
