import re

import pandas as pd
import pytest
from click.testing import CliRunner

from serbench.cli import cli
from serbench.reports import EmptyStoreError, tables_for
from serbench.reports.collect import collect
from serbench.reports.render import read_csv
from serbench.reports.tables import (
    MISSING,
    NO_NORM,
    SPK_NORM,
    feature_significance,
    feature_table,
    paper_best_segments,
    table2,
    table3,
    table4,
)
from serbench.systems.experiment import load_experiment

# The paper's figures, as the experiment file the tables follow by default gives them.
PAPER_REPORTED = load_experiment("jiang2019").reported

NUMBER = re.compile(r"^-?\d+(\.\d+)?")


def _row(frame: pd.DataFrame, column: str, value: str) -> pd.Series:
    rows = frame[frame[column] == value]
    assert len(rows) == 1, f"expected one row with {column}={value!r}, got {len(rows)}"
    return rows.iloc[0]


def test_table5_shows_recomputed_value_not_run_json(store):
    # run.json claims 99.0% but the predictions give 37.5% (0.375 per speaker).
    store.add("IS10-svm-linear", acc=0.4, metrics={"wa": 0.99, "ua": 0.99, "wa_mean": 0.99, "ua_mean": 0.99})
    frame = feature_table(collect("casia", store.root)).frame
    row = _row(frame, "Feature / model", "IS10")
    assert row[f"WA % — {NO_NORM}"] == "40.0" and row[f"UA % — {NO_NORM}"] == "40.0"
    assert "99.0" not in frame.to_string()


def test_missing_system_is_missing_not_a_number(store):
    store.add("IS10-svm-linear", acc=0.5)
    frame = feature_table(collect("casia", store.root)).frame
    for feature in ("PLP", "MFCC", "HuWSF", "IS09"):
        row = _row(frame, "Feature / model", feature)
        ours = [c for c in frame.columns if "paper" not in c and c not in ("Feature / model", "System")]
        assert all(row[c] == MISSING for c in ours), row.to_dict()
    # Every cell is either a formatted number, "missing", "n/a", "not reported" or a label/run id.
    assert (frame.map(type) == str).all().all()


def test_spknorm_never_in_no_norm_column(store):
    # Only the normalized variant exists: the paper-protocol column must stay "missing".
    store.add("IS10-svm-linear-spknorm", acc=0.7)
    frame = feature_table(collect("casia", store.root)).frame
    row = _row(frame, "Feature / model", "IS10")
    assert row[f"UA % — {NO_NORM}"] == MISSING
    assert row[f"UA % — {SPK_NORM}"] == "70.0"
    values = feature_table(collect("casia", store.root)).values
    v = values[(values["row"] == "IS10")].set_index("variant")
    assert v.loc[SPK_NORM, "system"] == "IS10-svm-linear-spknorm" and pd.isna(v.loc[NO_NORM, "system"])
    # Both headers say which protocol they are.
    assert any("no speaker norm (paper protocol)" in c for c in frame.columns)
    assert any("per-speaker z-norm" in c for c in frame.columns)


def test_spknorm_from_config_even_without_suffix(store):
    store.add("IS10-svm-linear", acc=0.7, config={"feature": "IS10", "classifier": "svm-linear", "speaker_norm": True})
    frame = feature_table(collect("casia", store.root)).frame
    row = _row(frame, "Feature / model", "IS10")
    assert row[f"UA % — {NO_NORM}"] == MISSING and row[f"UA % — {SPK_NORM}"] == "70.0"


def test_table5_paper_column_and_other_systems(store):
    store.add("IS09-svm-linear", acc=0.5)
    store.add("eGeMAPS-svm-rbf", acc=0.5)
    store.add("cnn-sru-N3", acc=0.5)
    store.add("cnn-sru-N5", acc=0.6)
    frame = feature_table(collect("casia", store.root)).frame
    assert list(frame["Feature / model"][:5]) == ["PLP", "MFCC", "HuWSF", "IS09", "IS10"]
    is09 = _row(frame, "Feature / model", "IS09")
    assert is09["WA % — paper"] == f"{PAPER_REPORTED[('casia', 'V', 'IS09')]['wa']:.1f}"
    assert _row(frame, "Feature / model", "PLP")["UA % — paper"] == "not reported"
    assert _row(frame, "System", "eGeMAPS-svm-rbf")["WA % — paper"] == "n/a"
    deep = _row(frame, "System", "cnn-sru-N5")  # the best N by UA
    assert deep[f"UA % — {NO_NORM}"] == "60.0"
    assert deep["UA % — paper"] == f"{PAPER_REPORTED[('casia', 'V', 'Ours')]['ua']:.1f}"
    assert deep["Feature / model"] == "CNN+SRU (best N=5)"


def test_table5_deep_label_names_each_columns_best_n(store):
    store.add("cnn-sru-N5", acc=0.6)
    store.add("cnn-sru-N3-spknorm", acc=0.7, config={"model": "cnn-sru", "segments": 3, "speaker_norm": True})
    store.add("cnn-sru-N5-spknorm", acc=0.5, config={"model": "cnn-sru", "segments": 5, "speaker_norm": True})
    deep = _row(feature_table(collect("casia", store.root)).frame, "System", "cnn-sru-N5")
    assert deep["Feature / model"] == "CNN+SRU (best N=5; with speaker norm N=3)"
    assert deep[f"UA % — {SPK_NORM}"] == "70.0"


def test_mean_sd_over_folds(store):
    store.add("IS10-svm-linear", acc={"s1": 0.2, "s2": 0.4, "s3": 0.6, "s4": 0.8})
    row = _row(feature_table(collect("casia", store.root)).frame, "Feature / model", "IS10")
    sd = pd.Series([20.0, 40.0, 60.0, 80.0]).std(ddof=1)
    assert row[f"UA mean ± sd — {NO_NORM}"] == f"50.0 ± {sd:.1f}"


def test_table2_rows_for_n_1_to_5(store):
    store.add("cnn-sru-N2", acc=0.5)
    frame = table2(collect("casia", store.root)).frame
    assert list(frame["N"]) == ["1", "2", "3", "4", "5"]
    assert _row(frame, "N", "2")["UA %"] == "50.0"
    assert _row(frame, "N", "4")["UA %"] == MISSING
    assert _row(frame, "N", "1")["paper source"].startswith("Table I")


def test_table3_at_best_n_and_table4_pairs(store):
    assert paper_best_segments(collect("casia", store.root)) == 5
    assert paper_best_segments(collect("emodb", store.root)) == 3
    store.add("cnn-sru-N5", acc={"s1": 0.8, "s2": 0.6, "s3": 0.7, "s4": 0.6})
    store.add("cnn-N5", acc=0.5)
    col = collect("casia", store.root)
    t3 = table3(col).frame
    # jiang2019 declares fast's fused decision at N = 5 too: its own row beside the cascade, missing until run.
    assert list(t3["System"]) == ["cnn-N5", "sru-N5", "cnn-sru-N5", "cnn-sru-fuse75-N5"]
    assert _row(t3, "System", "cnn-sru-fuse75-N5")["Model"] == "CNN+SRU fused with its CNN (0.75, not the paper's)"
    assert _row(t3, "System", "sru-N5")["UA %"] == MISSING
    t4 = table4(col).frame
    ttest = t4[(t4["B"] == "cnn-N5") & (t4["test"] == "paired t-test")].iloc[0]
    assert ttest["n"] == "4" and ttest["df"] == "3" and NUMBER.match(ttest["p"])
    assert "s1: 80.0" in ttest["per-fold UA % A"]
    wil = t4[(t4["B"] == "cnn-N5") & (t4["test"] == "Wilcoxon signed-rank")].iloc[0]
    assert wil["p"] == "n/a" and "n too small" in wil["note"]
    missing = t4[t4["B"] == "sru-N5"].iloc[0]
    assert missing["p"] == MISSING and "sru-N5" in missing["note"]


def test_feature_significance_pairs(store):
    store.add("IS10-svm-linear", acc=0.6)
    store.add("IS09-svm-linear", acc=0.4)
    store.add("cnn-sru-N5", acc=0.7)
    frame = feature_significance(collect("casia", store.root)).frame
    pairs = set(zip(frame["A"], frame["B"]))
    assert ("cnn-sru-N5", "IS10-svm-linear") in pairs
    assert ("IS10-svm-linear", "IS09-svm-linear") in pairs
    mc = frame[(frame["A"] == "IS10-svm-linear") & (frame["level"] == "utterance")].iloc[0]
    assert mc["test"] == "McNemar exact" and mc["n"] == "160"


def test_files_written_and_parseable(store, tmp_path):
    store.add("IS10-svm-linear", acc=0.5)
    store.add("IS09-svm-linear", acc=0.4)
    store.add("cnn-sru-N5", acc=0.6)
    out = tmp_path / "out"
    report = tables_for("casia", runs=store.root, out=out)
    assert set(report.tables) == {"table1", "table2", "table3", "table4", "table5", "significance-features",
                                  "systems", "significance-systems"}
    assert [t.key for t in report.shown] == ["table1", "table2", "table3", "table4", "table5", "systems"]
    for key, table in report.tables.items():
        csv = out / f"{key}.csv"
        assert csv in report.files
        pd.testing.assert_frame_equal(read_csv(csv), table.frame)
        if table.detail_only:
            assert not (out / f"{key}.tex").exists()
            continue
        pd.testing.assert_frame_equal(read_csv(out / f"{key}-details.csv"), table.details)
        ncol = len(table.frame.columns)
        text = (out / f"{key}.tex").read_text(encoding="utf-8")
        assert text.count(r"\begin{tabular}") == 1 and text.count(r"\end{tabular}") == 1
        body = text.split(r"\begin{tabular}")[1].split(r"\end{tabular}")[0]
        rows = [ln for ln in body.splitlines() if ln.endswith(r"\\")]
        assert len(rows) == len(table.frame) + 1
        assert all(len(re.findall(r"(?<!\\)&", ln)) == ncol - 1 for ln in rows)
        assert not re.search(r"(?<!\\)[%_#]", body)  # specials are escaped
    md = (out / "tables.md").read_text(encoding="utf-8")
    assert md.index(report.summary.title) < md.index("Table V")      # the summary opens the document
    assert set(report.folded) == {"table1", "table4"}                # no run at all: one line each, no table
    for key, line in report.folded.items():
        assert line in md and report.tables[key].title not in md
    for table in [report.summary, *report.shown]:
        if table.key in report.folded:
            continue
        assert table.title in md
        md_rows = [ln for ln in md.split(table.title)[1].split("\n\n")[1].splitlines() if ln.startswith("| ")]
        assert len(md_rows) == len(table.frame) + 1
        assert all(len(re.findall(r"(?<!\\)\|", ln)) == len(table.frame.columns) + 1 for ln in md_rows)
    assert report.files[-1].suffix == ".png" and len(report.figures) == 3


def test_default_out_is_under_runs(store):
    store.add("IS10-svm-linear", acc=0.5)
    report = tables_for("casia", runs=store.root)
    assert report.out_dir == store.root / "casia" / "tables"
    assert (report.out_dir / "table5.csv").is_file()
    # A second rendering does not mistake the tables folder for a system.
    again = tables_for("casia", runs=store.root)
    assert list(again.collection.runs) == ["IS10-svm-linear"]


def test_empty_store_says_what_to_run(store):
    store.add("IS10-svm-linear", partial=True)
    with pytest.raises(EmptyStoreError) as exc:
        tables_for("casia", runs=store.root)
    msg = str(exc.value)
    assert "no complete runs" in msg and "1 partial run folder(s) ignored" in msg
    # One `serbench run` of the experiment file per declared run, naming the store.
    assert f"serbench run jiang2019 --corpus casia --root ROOT --only IS10-svm-linear --runs {store.root}" in msg
    assert "--only IS10-svm-linear-spknorm " in msg and "--only cnn-sru-N3 " in msg
    assert "--only cnn-sru-fuse75-N5 " in msg and "serbench baseline" not in msg


def test_cli_prints_tables_and_files(store, tmp_path):
    store.add("IS10-svm-linear", acc=0.5)
    store.add("IS10-svm-linear", "later-but-partial", partial=True)
    out = tmp_path / "cli-out"
    res = CliRunner().invoke(cli, ["tables", "--corpus", "casia", "--runs", str(store.root), "--out", str(out)],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "Table V" in res.output and "Systems" in res.output
    assert "1 partial run folder(s) ignored" in res.output
    assert str(out / "tables.md") in res.output.replace("\n", "")
    assert "serbench run jiang2019 --corpus casia" in res.output


def test_cli_empty_store_exits_2_with_message(tmp_path):
    res = CliRunner().invoke(cli, ["tables", "--corpus", "emodb", "--runs", str(tmp_path)])
    assert res.exit_code == 2
    assert "no complete runs" in res.output and "serbench run jiang2019 --corpus emodb" in res.output


def test_rich_view_keeps_brackets_literal_and_hides_columns():
    from rich.console import Console

    from serbench.reports.render import Table, to_rich

    table = Table("t", "title [x]", pd.DataFrame({"a [per-speaker z-norm]": ["[bold]1"], "run — x": ["r1"]}),
                  ["note [red]"])
    console = Console(width=120, record=True)
    console.print(to_rich(table, hide_prefix=("run",)))
    text = console.export_text()
    assert "[bold]1" in text and "a [per-speaker z-norm]" in text and "note [red]" in text
    assert "r1" not in text and "Not shown here" in text


def test_unusual_systems_get_their_own_rows(store):
    store.add("crnn-N1", acc=0.5)
    store.add("wav2vec-probe", acc=0.6, kind="deep", config={"model": "wav2vec-probe"})
    store.add("mystery", acc=0.4, kind="other")
    frame = feature_table(collect("casia", store.root)).frame
    assert _row(frame, "System", "crnn-N1")[f"UA % — {NO_NORM}"] == "50.0"
    assert _row(frame, "System", "wav2vec-probe")[f"UA % — {NO_NORM}"] == "60.0"
    assert _row(frame, "System", "mystery")[f"UA % — {NO_NORM}"] == "40.0"
    assert _row(frame, "System", "cnn-sru-N*")[f"UA % — {NO_NORM}"] == MISSING
