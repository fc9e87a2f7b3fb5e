"""The HTML report: one self-contained page, every system in it, figures drawn from the store."""
import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from serbench.cli import cli
from serbench.reports import EmptyStoreError, ReportError
from serbench.reports.collect import collect
from serbench.reports.html import REPORT_FILE, build_report, default_out
from serbench.reports.leaderboard import leaderboard
from serbench.reports.plots import (
    confusion_plot,
    curves_data,
    curves_plot,
    fold_dots_plot,
    segments_plot,
    significance_plot,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SYSTEMS = ["IS10-svm-linear", "IS09-svm-linear-spknorm", "cnn-sru-N3", "cnn-sru-N5", "cnn-N5", "sru-N5", "crnn"]


def _deep(model: str, segments: int | None = None) -> dict:
    return {"system_type": model, "kind": "deep", "model": model,
            "settings": {"segments": segments} if segments is not None else {}, "speaker_norm": False}


def _with_curves(folder: Path, stage: str) -> None:
    """Add per-fold training curves to a fake run record, as deep runs write them."""
    record = json.loads((folder / "run.json").read_text())
    record["folds"] = [{"fold": spk, "curves": {stage: [{"epoch": e, "loss": 2.0 / e + i / 10, "val_loss": 2.2 / e}
                                                        for e in (1, 2, 3)]}}
                       for i, spk in enumerate(("s1", "s2", "s3", "s4"))]
    record["timings"] = {"executor": "in-process", "fold_wall_s_mean": 1.5,
                         "folds": {"s1": {"device": "cpu", "torch_threads": 1}}}
    (folder / "run.json").write_text(json.dumps(record))


def _fill(store, corpus: str = "casia") -> None:
    add = (lambda *a, **k: store.add(*a, corpus=corpus, **k))
    add("IS10-svm-linear", acc={"s1": 0.6, "s2": 0.7, "s3": 0.5, "s4": 0.8},
        config={"feature": "IS10", "classifier": "svm-linear"})
    add("IS09-svm-linear-spknorm", acc=0.6, config={"feature": "IS09", "classifier": "svm-linear", "speaker_norm": True})
    add("cnn-sru-N3", acc={"s1": 0.4, "s2": 0.6, "s3": 0.5, "s4": 0.5}, kind="deep", config=_deep("cnn-sru", 3))
    _with_curves(add("cnn-sru-N5", acc={"s1": 0.7, "s2": 0.6, "s3": 0.5, "s4": 0.9}, kind="deep",
                     config=_deep("cnn-sru", 5)), "cnn")
    add("cnn-N5", acc=0.4, kind="deep", config=_deep("cnn", 5))
    add("sru-N5", acc=0.3, kind="deep", config=_deep("sru", 5))
    _with_curves(add("crnn", acc=0.5, kind="deep", config=_deep("crnn")), "crnn")


class _Page(HTMLParser):
    """Every tag, attribute and text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            self.attrs.append((tag, k, v or ""))
            if k == "id":
                assert v not in self.ids, f"duplicate id {v!r}"
                self.ids.add(v)
        if tag not in ("meta", "img", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    assert page.open == [], f"unclosed tags: {page.open}"
    return page


def test_page_is_self_contained_and_names_every_system(store, tmp_path):
    _fill(store)
    report = build_report(["casia"], runs=store.root, out=tmp_path / "out", command="serbench report --corpus casia")
    assert report.path == tmp_path / "out" / REPORT_FILE
    text = report.path.read_text(encoding="utf-8")
    assert report.size == len(text.encode("utf-8"))
    page = _parse(text)
    assert not {"script", "link", "iframe", "object", "embed", "base"} & set(page.tags)
    for tag, key, value in page.attrs:
        if key == "src":
            assert value.startswith("data:image/png;base64,"), (tag, value[:40])
            assert base64.b64decode(value.split(",", 1)[1])[:8] == PNG_MAGIC
        if key == "href":
            assert value.startswith("#") and value[1:] in page.ids, value
    lowered = text.lower()
    assert "http:" not in lowered and "https:" not in lowered and "url(" not in lowered and "@import" not in lowered
    words = " ".join(page.text)
    for system in SYSTEMS:
        assert system in words, system
    for heading in ("Table I ", "Table II ", "Table III ", "Table IV ", "Table V ", "Systems ",
                    "Per-fold UA by speaker", "Significance between systems", "Confusion matrices", "Training curves",
                    "Runs used and their provenance", "Provenance of this page"):
        assert heading in words, heading
    assert "serbench report --corpus casia" in words and "serbench fake crnn" in words   # the exact commands
    assert "Leaderboard" not in words                                                        # one corpus only
    # A figure per table plot, per-fold plot, significance, one confusion per system, curves of 2 deep runs.
    assert sum(1 for t, k, _ in page.attrs if k == "src") == 1 + 1 + 1 + len(SYSTEMS) + 2


def test_new_registered_system_appears(store, tmp_path, toy_systems):
    _fill(store)
    store.add("IS10-toy-mean", acc=0.45, config={"system_type": "toy-mean", "settings": {"feature": "IS10"}})
    report = build_report(["casia"], runs=store.root, out=tmp_path)
    page = _parse(report.path.read_text(encoding="utf-8"))
    words = " ".join(page.text)
    assert words.count("IS10-toy-mean") >= 4   # Table V, per-fold numbers, confusion counts, provenance
    alts = [v for t, k, v in page.attrs if k == "alt"]
    assert "confusion matrix of IS10-toy-mean" in alts


def _flip(store, system: str, fold: str, n: int, corpus: str = "casia") -> None:
    """Make ``n`` right predictions of ``fold`` wrong in the stored predictions of ``system``."""
    folder = next((store.root / corpus / system).iterdir())
    preds = pd.read_parquet(folder / "predictions.parquet")
    right = preds.index[(preds["fold"] == fold) & (preds["true"] == preds["predicted"])][:n]
    labels = sorted(preds["true"].unique())
    preds.loc[right, "predicted"] = [labels[(labels.index(t) + 1) % len(labels)] for t in preds.loc[right, "true"]]
    preds.to_parquet(folder / "predictions.parquet", index=False)


def _line_y(plot, label: str) -> np.ndarray:
    ax = plot.figure.axes[0]
    return next(np.asarray(line.get_ydata()) for line in ax.get_lines() if line.get_label() == label)


def _scatter_x(plot) -> np.ndarray:
    return np.concatenate([np.asarray(c.get_offsets())[:, 0] for c in plot.figure.axes[0].collections])


def _image(plot) -> np.ndarray:
    return np.ma.filled(plot.figure.axes[0].images[0].get_array().astype(float), np.nan)


FIGURES = {
    # name: (draw from a collection, what the figure shows, flip which system)
    "segments": (segments_plot, lambda p: _line_y(p, "CNN+SRU"), "cnn-sru-N5"),
    "folds": (fold_dots_plot, _scatter_x, "IS10-svm-linear"),
    "significance": (significance_plot, _image, "IS10-svm-linear"),
    "confusion": (lambda col: confusion_plot(col.get("IS10-svm-linear")), _image, "IS10-svm-linear"),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_each_figure_is_drawn_from_the_store(store, name):
    _fill(store)
    draw, shown, system = FIGURES[name]
    before_plot = draw(collect("casia", store.root))
    before = shown(before_plot)
    _flip(store, system, "s1", 3)
    after_plot = draw(collect("casia", store.root))
    after = shown(after_plot)
    assert before.shape == after.shape
    assert not np.allclose(np.nan_to_num(before), np.nan_to_num(after)), "the figure did not change"
    assert not before_plot.data.equals(after_plot.data)


@pytest.mark.slow
def test_changed_prediction_changes_the_page_numbers(store, tmp_path):
    _fill(store)
    col = collect("casia", store.root)
    old = 100 * col.get("IS10-svm-linear").fold_series("ua")["s1"]
    first = build_report(["casia"], runs=store.root, out=tmp_path / "a").path.read_text(encoding="utf-8")
    _flip(store, "IS10-svm-linear", "s1", 4)
    new = 100 * collect("casia", store.root).get("IS10-svm-linear").fold_series("ua")["s1"]
    assert (old, new) == (60.0, 50.0)
    second = build_report(["casia"], runs=store.root, out=tmp_path / "b").path.read_text(encoding="utf-8")
    dots_old = _fold_row(first, "IS10-svm-linear")
    dots_new = _fold_row(second, "IS10-svm-linear")
    assert (dots_old["s1"], dots_new["s1"]) == ("60.0", "50.0")
    assert {k: v for k, v in dots_old.items() if k != "s1"} == {k: v for k, v in dots_new.items() if k != "s1"}


def _fold_row(text: str, system: str) -> dict[str, str]:
    """Fold -> UA cell of ``system`` in the numbers under the per-fold figure."""
    section = text.split("id='corpus-casia-fig-folds'")[1].split("</figure>")[0]
    header = [c.split("</th>")[0] for c in section.split("<thead>")[1].split("</thead>")[0].split("<th>")[1:]]
    row = section.split(f"<td>{system}</td>")[1].split("</tr>")[0]
    return dict(zip(header[1:], (c.split("</td>")[0] for c in row.split("<td>")[1:])))


def test_curves_from_the_run_record(store):
    _fill(store)
    run = collect("casia", store.root).get("crnn")
    data = curves_data(run)
    assert set(data["metric"]) == {"loss", "val_loss"} and set(data["fold"]) == {"s1", "s2", "s3", "s4"}
    plot = curves_plot(run)
    lines = plot.figure.axes[0].get_lines()
    assert len(lines) == 8                                        # loss and validation loss per fold
    assert np.allclose(lines[0].get_ydata(), [2.0, 1.0, 2.0 / 3])
    assert curves_plot(collect("casia", store.root).get("cnn-N5")) is None   # no curves recorded


def test_ensemble_members_share_their_stages_panel(store):
    _fill(store)
    run = collect("casia", store.root).get("crnn")
    record = json.loads((run.path / "run.json").read_text())
    for fold in record["folds"]:
        fold["curves"]["crnn-m1"] = [dict(pt, loss=pt["loss"] + 1) for pt in fold["curves"]["crnn"]]
    (run.path / "run.json").write_text(json.dumps(record))
    run = collect("casia", store.root).get("crnn")
    assert set(curves_data(run)["stage"]) == {"crnn", "crnn-m1"}
    plot = curves_plot(run)
    assert len(plot.figure.axes) == 1                           # one loss panel for both members
    ax = plot.figure.axes[0]
    assert len(ax.get_lines()) == 16 and "2 ensemble members" in ax.get_title()
    assert len(ax.get_legend_handles_labels()[1]) == 4          # one legend entry per fold


def test_a_speaker_adversarys_ua_is_a_dotted_line_in_the_ua_panel(store):
    _fill(store)
    run = collect("casia", store.root).get("crnn")
    record = json.loads((run.path / "run.json").read_text())
    for fold in record["folds"]:
        for pt in fold["curves"]["crnn"]:
            pt["ua"], pt["group_ua"] = 0.25 * pt["epoch"], 0.5
    (run.path / "run.json").write_text(json.dumps(record))
    plot = curves_plot(collect("casia", store.root).get("crnn"))
    ua_panel = plot.figure.axes[1]
    styles = [line.get_linestyle() for line in ua_panel.get_lines()]
    assert styles.count(":") == 4 and styles.count("-") == 4               # per fold: training and adversary
    dotted = [line for line in ua_panel.get_lines() if line.get_linestyle() == ":"]
    assert all(np.allclose(line.get_ydata(), 50.0) for line in dotted)
    assert "dotted = the speaker adversary" in plot.caption
    assert len(plot.figure.axes[0].get_legend_handles_labels()[1]) == 4   # the legend still names folds only


def test_training_curves_written_beside_the_run_and_linked_from_the_tables(store, tmp_path):
    from serbench.reports import tables_for
    from serbench.reports.plots import CURVES_FILE, write_curves

    _fill(store)
    run = collect("casia", store.root).get("crnn")
    record = json.loads((run.path / "run.json").read_text())
    for fold in record["folds"]:                              # training UA as the trainers record it
        for pt in fold["curves"]["crnn"]:
            pt["ua"] = 0.25 * pt["epoch"]
    (run.path / "run.json").write_text(json.dumps(record))
    run = collect("casia", store.root).get("crnn")
    assert set(curves_data(run)["metric"]) == {"loss", "val_loss", "ua"}
    assert len(curves_plot(run).figure.axes) == 2            # loss panel and UA panel
    beside = write_curves(run)
    assert beside == run.path / CURVES_FILE and beside.read_bytes()[:4] == b"\x89PNG"
    assert write_curves(collect("casia", store.root).get("cnn-N5")) is None
    report = tables_for("casia", runs=store.root, out=tmp_path / "t")
    assert set(report.curves) == {"crnn", "cnn-sru-N5"}
    md = (tmp_path / "t" / "tables.md").read_text(encoding="utf-8")
    assert "[crnn](curves-crnn.png)" in md and (tmp_path / "t" / "curves-crnn.png").is_file()


def test_leaderboard_ranks_and_mean_rank(store):
    store.add("A", acc=0.8, kind="other")
    store.add("B", acc=0.6, kind="other")
    store.add("C", acc=0.6, kind="other")
    store.add("A", acc=0.5, kind="other", corpus="emodb")
    store.add("B", acc=0.7, kind="other", corpus="emodb")
    board = leaderboard({c: collect(c, store.root) for c in ("casia", "emodb")})
    assert board["system"].tolist() == ["A", "B", "C"]
    assert board["casia rank"].tolist() == [1, 2, 2] and board["emodb rank"].tolist()[:2] == [2, 1]
    assert pd.isna(board["emodb rank"].iloc[2])
    assert board["mean rank"].tolist() == [1.5, 1.5, 2.0] and board["corpora"].tolist() == [2, 2, 1]


@pytest.mark.slow
def test_several_corpora_open_with_the_leaderboard(store, tmp_path):
    _fill(store)
    _fill(store, corpus="emodb")
    report = build_report(["casia", "emodb"], runs=store.root, out=tmp_path)
    text = report.path.read_text(encoding="utf-8")
    page = _parse(text)
    words = " ".join(page.text)
    assert words.index("Leaderboard") < words.index("Table I ")
    assert {"leaderboard", "corpus-casia", "corpus-emodb"} <= page.ids
    assert report.systems == {"casia": sorted(SYSTEMS), "emodb": sorted(SYSTEMS)}


def test_errors_name_the_corpus(store, tmp_path):
    _fill(store)
    with pytest.raises(EmptyStoreError, match="no complete runs for corpus 'emodb'"):
        build_report(["casia", "emodb"], runs=store.root, out=tmp_path)
    with pytest.raises(ReportError, match="named more than once"):
        build_report(["casia", "casia"], runs=store.root, out=tmp_path)
    assert not (tmp_path / REPORT_FILE).exists()


def test_default_out(store):
    assert default_out(["casia"], store.root) == store.root / "casia" / "report"
    assert default_out(["casia", "emodb"], store.root) == store.root / "report"


def test_cli_writes_and_prints_the_path(store, tmp_path):
    _fill(store)
    out = tmp_path / "cli"
    res = CliRunner().invoke(cli, ["report", "--corpus", "casia", "--runs", str(store.root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert str(out / REPORT_FILE) in res.output and (out / REPORT_FILE).is_file()
    res = CliRunner().invoke(cli, ["report", "--corpus", "ravdess", "--runs", str(store.root)])
    assert res.exit_code == 2 and "no complete runs for corpus 'ravdess'" in res.output
    res = CliRunner().invoke(cli, ["report", "--corpus", "../casia", "--runs", str(store.root)])
    assert res.exit_code == 2 and "--corpus" in res.output


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed")
@pytest.mark.parametrize("width", [1400, 1000])
def test_chromium_renders_the_page(store, tmp_path, width):
    _fill(store)
    _fill(store, corpus="emodb")
    report = build_report(["casia", "emodb"], runs=store.root, out=tmp_path / "out")
    pixels = _screenshot(report.path, tmp_path, width, 3000)
    assert pixels.shape[:2] == (3000, width)
    # Not a blank page: text and figures leave many non-white pixels.
    assert (pixels[..., :3].mean(axis=2) < 0.5).mean() > 0.005


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed")
@pytest.mark.parametrize("width", [1400, 1000])
def test_chromium_first_screen_of_an_svm_only_report(store, tmp_path, width):
    """The issue's case (SVMs only): the first screen holds the summary, whose winner row is highlighted."""
    for system, acc in (("IS10-svm-linear", 0.8), ("IS09-svm-linear", 0.6), ("IS10-svm-linear-spknorm", 0.7)):
        store.add(system, acc=acc)
    report = build_report(["casia"], runs=store.root, out=tmp_path / "out")
    pixels = _screenshot(report.path, tmp_path, width, 1000)[..., :3]
    assert pixels.shape[:2] == (1000, width)
    # The winner row's green (#e6f4ea) is on the first screen.
    green = np.all(np.abs(pixels - np.array([0xe6, 0xf4, 0xea]) / 255) < 0.02, axis=2)
    assert green.sum() > 2000


def _screenshot(page: Path, tmp_path: Path, width: int, height: int) -> np.ndarray:
    shot = tmp_path / f"report-{width}.png"
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           f"--user-data-dir={tmp_path / f'profile-{width}'}", f"--screenshot={shot}",
           f"--window-size={width},{height}", page.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    from matplotlib.image import imread

    return imread(shot)


def test_the_upstream_weights_a_run_read_are_in_its_provenance(store, tmp_path):
    upstream = {"upstream": "wavlm-base-plus", "hub_id": "microsoft/wavlm-base-plus", "revision": "main",
                "licence": "MIT", "weights_sha256": "ab" * 32, "folder": "/m/wavlm-base-plus"}
    store.add("IS10-svm-linear", acc=0.6, config={"system_type": "svm-linear", "settings": {"feature": "IS10"}})
    store.add("wavlm-base-plus-svm-linear", acc=0.7,
              config={"system_type": "svm-linear", "settings": {"feature": "wavlm-base-plus"}, "upstream": upstream})
    report = build_report(["casia"], runs=store.root, out=tmp_path / "out")
    words = " ".join(_parse(report.path.read_text(encoding="utf-8")).text)
    assert "Self-supervised upstreams the runs read" in words
    assert "microsoft/wavlm-base-plus" in words and "abababababababab" in words
    plain = tmp_path / "plain"
    store_plain = type(store)(tmp_path / "runs2")
    store_plain.add("IS10-svm-linear", acc=0.6, config={"system_type": "svm-linear", "settings": {"feature": "IS10"}})
    text = build_report(["casia"], runs=store_plain.root, out=plain).path.read_text(encoding="utf-8")
    assert "Self-supervised upstreams" not in text
