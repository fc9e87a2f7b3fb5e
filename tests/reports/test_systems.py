"""The systems table: the seed papers' systems next to CNN+SRU and the best SVM, tests vs CNN+SRU."""
import pytest

from serbench.reports import tables_for
from serbench.reports.collect import collect
from serbench.reports.systems import reference_run, system_models, systems_significance, systems_table


def _deep(model: str, segments: int | None = None, **extra) -> dict:
    """The config of a deep run as run_deep records it (system, settings)."""
    settings = {"segments": segments} if segments is not None else {}
    return {"system_type": model, "kind": "deep", "model": model, "settings": settings, "speaker_norm": False,
            **extra}


def _row(frame, system: str):
    rows = frame[frame["System"] == system]
    assert len(rows) == 1, f"{system}: {len(rows)} rows"
    return rows.iloc[0]


def test_every_system_has_a_row_missing_until_run(store):
    store.add("cnn-sru-N5", acc=0.5, kind="deep", config=_deep("cnn-sru", 5))
    frame = systems_table(collect("casia", store.root)).frame
    for model in system_models():
        row = _row(frame, model)
        assert row["WA %"] == "missing" and row["UA − ref (points)"] == "missing"
    assert _row(frame, "cnn-sru-N5")["UA − ref (points)"] == "reference"


def test_measured_values_difference_and_tests_come_from_predictions(store):
    store.add("cnn-sru-N5", acc=0.5, kind="deep", config=_deep("cnn-sru", 5))
    store.add("crnn", acc=0.7, kind="deep", config=_deep("crnn"),
              metrics={"wa": 0.99, "ua": 0.99})          # a stale record number must not be shown
    store.add("IS10-svm-linear", acc=0.4, config={"feature": "IS10", "classifier": "svm-linear"})
    frame = systems_table(collect("casia", store.root)).frame
    crnn = _row(frame, "crnn")
    assert crnn["WA %"] == "70.0" and crnn["UA %"] == "70.0"
    assert crnn["UA − ref (points)"] == "+20.0"
    # 80 utterances right vs 40 more wrong for the reference: McNemar is decisive, the t-test on
    # 4 identical fold differences has zero variance.
    assert float(crnn["McNemar p vs ref"]) < 1e-4
    svm = _row(frame, "IS10-svm-linear")
    assert svm["UA − ref (points)"] == "-10.0" and svm["WA % — paper"] == "47.6"


def test_paper_figures_labelled_with_their_corpus(store):
    store.add("cnn-sru-N3", acc=0.5, kind="deep", config=_deep("cnn-sru", 3))
    frame = systems_table(collect("casia", store.root)).frame
    dcnn = _row(frame, "dcnn-blstm-att")
    assert dcnn["paper corpus"] == "emodb; iemocap" and dcnn["UA % — paper"] == "87.86; 68.5"
    emodb = FakeEmodb(store)
    emodb.add("cnn-sru-N3", acc=0.5, kind="deep", config=_deep("cnn-sru", 3))
    frame = systems_table(collect("emodb", store.root)).frame
    dcnn = _row(frame, "dcnn-blstm-att")
    assert dcnn["paper corpus"] == "emodb" and dcnn["UA % — paper"] == "87.86"
    assert _row(frame, "crnn")["UA % — paper"] == "not reported"


class FakeEmodb:
    def __init__(self, store):
        self.store = store

    def add(self, *a, **k):
        return self.store.add(*a, corpus="emodb", **k)


@pytest.mark.parametrize("present, expected", [((3, 5), "cnn-sru-N5"), ((2, 3), "cnn-sru-N3")])
def test_reference_is_papers_best_n_else_our_best(store, present, expected):
    accs = {2: 0.3, 3: 0.6, 5: 0.4}
    for n in present:
        store.add(f"cnn-sru-N{n}", acc=accs[n], kind="deep", config=_deep("cnn-sru", n))
    ref, why = reference_run(collect("casia", store.root))
    assert ref.system == expected
    assert ("paper's best" in why) == (expected == "cnn-sru-N5")


def test_significance_rows_per_present_system(store):
    store.add("cnn-sru-N5", acc={"s1": 0.5, "s2": 0.6, "s3": 0.4, "s4": 0.5}, kind="deep",
              config=_deep("cnn-sru", 5))
    store.add("crnn-mk", acc={"s1": 0.7, "s2": 0.7, "s3": 0.6, "s4": 0.8}, kind="deep", config=_deep("crnn-mk"))
    frame = systems_significance(collect("casia", store.root)).frame
    tested = frame[frame["A"] == "crnn-mk"]
    assert set(tested["test"]) == {"paired t-test", "Wilcoxon signed-rank", "McNemar exact"}
    assert tested[tested["test"] == "paired t-test"]["p"].iloc[0] not in ("n/a", "missing")
    assert (tested["B"] == "cnn-sru-N5").all()
    assert frame[frame["A"] == "crnn"]["note"].str.contains("no complete run of crnn").all()


def test_tables_for_writes_systems_files(store, tmp_path):
    store.add("cnn-sru-N5", acc=0.5, kind="deep", config=_deep("cnn-sru", 5))
    store.add("crnn-ctc", acc=0.6, kind="deep", config=_deep("crnn-ctc"))
    report = tables_for("casia", runs=store.root, out=tmp_path / "out")
    names = {p.name for p in report.files}
    assert {"tables.md", "systems.tex", "systems.csv", "systems-details.csv", "significance-systems.csv"} <= names


def test_rows_keep_the_papers_order_whether_run_or_missing(store):
    store.add("cnn-sru-N5", acc=0.5, kind="deep", config=_deep("cnn-sru", 5))
    store.add("crnn-mk", acc=0.6, kind="deep", config=_deep("crnn-mk"))
    store.add("crnn", acc=0.6, kind="deep", config=_deep("crnn"))
    frame = systems_table(collect("casia", store.root)).frame
    assert frame["System"].tolist()[1:5] == ["crnn", "crnn-ctc", "crnn-mk", "dcnn-blstm-att"]


def test_a_system_stored_under_its_input_fills_its_own_row_once(store):
    # ssl-probe runs are stored as <feature>-ssl-probe: the ssl-probe row holds them, never a 'missing' row beside
    from serbench.reports.paper import paper_systems, paper_table5

    store.add("cnn-sru-N5", acc=0.5, kind="deep", config=_deep("cnn-sru", 5))
    store.add("wavlm-base-plus-ssl-probe", acc=0.7, kind="deep",
              config=_deep("ssl-probe", None, settings={"feature": "wavlm-base-plus"}))
    store.add("wavlm-base-plus-svm-linear", acc=0.6,
              config={"system_type": "svm-linear", "settings": {"feature": "wavlm-base-plus", "layer": "auto"}})
    store.add("wavlm-base-plus-svm-linear-L3", acc=0.55,
              config={"system_type": "svm-linear", "settings": {"feature": "wavlm-base-plus", "layer": "3"}})
    col = collect("casia", store.root)
    frame = systems_table(col).frame
    assert "ssl-probe" not in frame["System"].tolist()
    assert _row(frame, "wavlm-base-plus-ssl-probe")["UA %"] == "70.0"
    names = paper_systems(col).frame["System"].tolist()
    assert names.count("wavlm-base-plus-ssl-probe") == 1 and "ssl-probe" not in names
    labels = paper_table5(col).frame.iloc[:, 0].tolist()
    assert "wavlm-base-plus (layer per fold)" in labels and "wavlm-base-plus layer 3" in labels
