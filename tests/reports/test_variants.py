"""Runs under one stored name with different settings never share a row: the experiment file's declaration
decides which run is the paper's row, every other identity is a variant row that names what differs."""
import json

import pandas as pd
from click.testing import CliRunner

from serbench.cli import cli
from serbench.reports import tables_for
from serbench.reports.collect import collect
from serbench.reports.html import build_report
from serbench.reports.paper import UA, paper_table2, paper_table3, paper_table4, paper_table5
from serbench.reports.tables import table2
from serbench.systems import registry
from serbench.systems.experiment import load_experiment, recipes_dir
from serbench.systems.identity import settings_identity

FUSED = "CNN+SRU fused with its CNN (0.75, not the paper's)"


def record_config(system: str, *, profile: str | None = "fast", protocol: str = "loso", seed: int = 0,
                  identity: bool = True, **overrides) -> dict:
    """The config a run of ``system`` records (serbench.systems.run.prepare); ``identity=False``: as written
    before identities existed (settings, no identity, no protocol)."""
    sysobj = registry.get(system)
    s = sysobj.settings(profile if sysobj.kind == "deep" else None, overrides)
    ident = settings_identity(sysobj.name, s, protocol=protocol, emotions=None, seed=seed)
    config = {"system_type": sysobj.name, "kind": sysobj.kind, "settings": s.as_dict(), "profile": s.profile,
              "protocol": protocol, "emotions": None, "seed": seed, "speaker_norm": s.speaker_norm,
              "identity": {"hash": ident.hash, "fields": ident.fields}}
    if not identity:
        for key in ("identity", "protocol"):
            config.pop(key)
    return config


def cascade(n: int, **kw) -> dict:
    return record_config("cnn-sru", segments=n, sru_fuse=0.0, **kw)


def _row(table, label: str) -> pd.Series:
    first = table.frame.columns[0]
    rows = table.frame[table.frame[first] == label]
    assert len(rows) == 1, f"{label!r}: {table.frame[first].tolist()}"
    return rows.iloc[0]


def _labels(table) -> list[str]:
    return table.frame[table.frame.columns[0]].tolist()


def test_a_tiny_run_is_a_variant_not_the_papers_row(store):
    store.add("cnn-sru-N3", acc=0.7, kind="deep", config=cascade(3, profile="tiny"))
    col = collect("casia", store.root)        # jiang2019 declares the cascade with the fast profile
    assert "cnn-sru-N3" not in col.runs
    variant = col.variants["cnn-sru-N3"][0]
    assert variant.startswith("cnn-sru-N3 [profile=tiny")
    assert col.runs[variant].spec.kind == "variant" and col.runs[variant].system == variant
    t2 = paper_table2(col)
    assert _row(t2, "3")[UA] == "missing"     # never silently the tiny run
    assert any("cnn-sru-N3: no stored run matches" in n and variant in n for n in t2.notes)
    assert "cnn-sru-N3" not in table2(col).values["system"].dropna().tolist()
    t5 = paper_table5(col)
    assert _row(t5, f"{variant} (ref)")[UA] == "70.0"       # the only run: the marks' stand-in reference
    assert any(n.startswith("CNN+SRU, this table's reference, has no run") for n in t5.notes)
    assert _row(t5, "CNN+SRU (best N)")[UA] == "missing"   # Table V's "Ours" is the paper's cascade only
    named = [n for n in t5.notes if n.startswith(f"{variant}: not the row of cnn-sru-N3")]
    assert len(named) == 1 and "image_size=" in named[0] and "(declared 96)" in named[0]


def test_two_runs_of_one_name_differing_in_one_setting(store):
    store.add("cnn-sru-N3", "run-declared", acc=0.6, kind="deep", config=cascade(3),
              finished="2026-01-01T00:00:00+00:00")
    store.add("cnn-sru-N3", "run-lr", acc=0.8, kind="deep", config=cascade(3, cnn_lr=0.01),
              finished="2026-02-01T00:00:00+00:00")   # newer: the latest run must not win the row
    store.add("IS10-svm-linear", "seed0", acc=0.5, config=record_config("svm-linear", feature="IS10"))
    store.add("IS10-svm-linear", "seed1", acc=0.4, config=record_config("svm-linear", feature="IS10", seed=1))
    col = collect("casia", store.root)
    assert col.get("cnn-sru-N3").run_id == "run-declared"
    assert col.variants == {"cnn-sru-N3": ["cnn-sru-N3 [cnn_lr=0.01]"],
                            "IS10-svm-linear": ["IS10-svm-linear [seed=1]"]}
    assert col.older == {}                    # different settings are not "older runs"
    t2 = paper_table2(col)
    assert _row(t2, "3 (ref)")[UA] == "60.0"
    t5 = paper_table5(col)
    assert _row(t5, "cnn-sru-N3 [cnn_lr=0.01]")[UA].startswith("80.0")
    assert _row(t5, "IS10")[UA].startswith("50.0")
    assert _row(t5, "IS10-svm-linear [seed=1]")[UA].startswith("40.0")
    notes = "\n".join(t5.notes)
    assert "cnn-sru-N3 [cnn_lr=0.01]: not the row of cnn-sru-N3" in notes and "cnn_lr=0.01 (declared " in notes
    assert "seed=1 (declared 0)" in notes


def test_legacy_records_are_read_and_placed(store):
    # Records written before identities: settings (with their profile) but no identity and no protocol.
    store.add("cnn-sru-N5", acc=0.6, kind="deep", config=cascade(5, identity=False))
    store.add("cnn-N5", acc=0.5, kind="deep", config=record_config("cnn", segments=5, profile="tiny", identity=False))
    col = collect("casia", store.root)
    run = col.get("cnn-sru-N5")
    assert run is not None and run.spec.check == "declared" and run.spec.identity.legacy
    assert "cnn-N5" not in col.runs and col.variants["cnn-N5"][0].startswith("cnn-N5 [profile=tiny")
    t3 = paper_table3(col)
    rows = t3.frame[t3.frame["N"] == "5"]
    assert rows[UA].tolist()[:3] == ["missing", "missing", "60.0"]
    # A record naming no settings at all cannot be checked: it fills its row, and the tables say so.
    store.add("sru-N5", acc=0.4, kind="deep", config={})
    col = collect("casia", store.root)
    assert col.get("sru-N5").spec.check == "unrecorded"
    assert any("sru-N5 (run 20260101T000000): its run.json records no settings" in n for n in paper_table3(col).notes)


def test_different_protocols_in_one_table_are_flagged(store):
    store.add("IS10-svm-linear", acc=0.5, config=record_config("svm-linear", feature="IS10"))
    store.add("IS09-svm-linear", acc=0.5, config=record_config("svm-linear", feature="IS09", protocol="loso-session"))
    col = collect("casia", store.root)
    assert col.variants == {"IS09-svm-linear": ["IS09-svm-linear [protocol=loso-session]"]}
    warning = [w for w in col.warnings if "different protocols" in w]
    assert len(warning) == 1 and "loso-session: IS09-svm-linear [protocol=loso-session]" in warning[0]
    assert any("different protocols" in n for n in paper_table5(col).notes)
    assert not any("different protocols" in n for n in paper_table2(col).notes)


def test_the_fused_decision_stands_beside_the_cascade(store):
    strong = {"s1": 0.8, "s2": 0.7, "s3": 0.8, "s4": 0.7}
    store.add("cnn-sru-N5", acc=0.5, kind="deep", config=cascade(5))
    store.add("cnn-sru-fuse75-N5", acc=strong, kind="deep", config=record_config("cnn-sru", segments=5))
    store.add("cnn-N5", acc=0.4, kind="deep", config=record_config("cnn", segments=5))
    store.add("sru-N5", acc=0.3, kind="deep", config=record_config("sru", segments=5))
    col = collect("casia", store.root)
    t3 = paper_table3(col)
    rows = t3.frame[t3.frame["N"] == "5"]
    assert rows["Model"].tolist() == ["CNN", "SRU", "CNN+SRU (ref)", FUSED]
    assert rows[UA].tolist()[2] == "50.0" and rows[UA].tolist()[3].startswith("75.0")
    paper_cascade = load_experiment("jiang2019").reported[("casia", "III", "CNN+SRU")]["ua"]
    assert rows["paper UA %"].tolist()[3] == "n/a" and rows["paper UA %"].tolist()[2] == f"{paper_cascade:.1f}"
    t4 = paper_table4(col)
    pairs = t4.frame[t4.frame["N"] == "5"]["Pair"].tolist()
    assert pairs == ["(CNN+SRU,CNN)", "(CNN+SRU,SRU)", "(CNN+SRU fused,CNN)", "(CNN+SRU fused,SRU)"]
    fused_cnn = t4.frame[t4.frame["Pair"] == "(CNN+SRU fused,CNN)"].iloc[0]
    assert fused_cnn["ΔUA (points)"] == "+35.0" and fused_cnn["paper p"] == "n/a"
    t5 = paper_table5(col)
    assert _row(t5, "CNN+SRU (N=5) (ref)")[UA] == "50.0"          # "Ours" is the paper's cascade
    assert _row(t5, f"{FUSED} (N=5)")[UA].startswith("75.0")


def test_a_fused_run_stored_under_the_cascades_name_is_its_variant(store):
    # Stores written before the fused decision had a name of its own: cnn-sru-N5 with sru_fuse = 0.75.
    store.add("cnn-sru-N5", acc=0.7, kind="deep", config=record_config("cnn-sru", segments=5))
    col = collect("casia", store.root)
    assert "cnn-sru-N5" not in col.runs and col.variants["cnn-sru-N5"] == ["cnn-sru-N5 [sru_fuse=0.75]"]
    rows = paper_table3(col).frame
    rows = rows[rows["N"] == "5"]
    assert rows["Model"].tolist() == ["CNN", "SRU", "CNN+SRU", f"{FUSED} (ref)"]   # the cascade missing: stand-in
    assert rows[UA].tolist() == ["missing", "missing", "missing", "70.0"]
    assert any("jiang2019.toml declares it as a run of its own" in n for n in paper_table5(col).notes)


def test_experiment_option_and_missing_run_commands(store, tmp_path):
    demo = recipes_dir() / "demo.toml"
    tiny = record_config("cnn-sru", profile="tiny", segments=3, sru_fuse=0.0)
    store.add("cnn-sru-N3", acc=0.7, kind="deep", config={**tiny, "root": "/data/my corpus"})
    # The demo file declares the tiny profile: there the run is the CNN+SRU row.
    report = tables_for("casia", runs=store.root, out=tmp_path / "demo", experiment=demo,
                        cache=tmp_path / "cache")
    assert _row(report.tables["table2"], "3 (ref)")[UA] == "70.0"
    assert report.collection.variants == {}
    assert all(t.frame.filter(like="paper").isin(["n/a"]).all().all() for t in report.shown
               if t.key in ("table1", "table2", "table3"))   # demo.toml reports no figures
    cmd = [c for c in report.missing if "--only IS10-svm-linear " in c]
    assert cmd == [f"serbench run demo --corpus casia --root '/data/my corpus' --only IS10-svm-linear "
                   f"--cache {tmp_path / 'cache'} --runs {store.root}"]
    res = CliRunner().invoke(cli, ["tables", "--corpus", "casia", "--runs", str(store.root), "--out",
                                   str(tmp_path / "cli"), "--experiment", str(demo)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "checked against demo.toml" in res.output and "[profile=tiny" not in res.output
    res = CliRunner().invoke(cli, ["tables", "--corpus", "casia", "--runs", str(store.root), "--out",
                                   str(tmp_path / "cli2")], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "cnn-sru-N3 [profile=tiny" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[experiment]\nname = "x"\n[[run]]\nsystem = "nope"\n')
    res = CliRunner().invoke(cli, ["tables", "--corpus", "casia", "--runs", str(store.root), "--experiment", str(bad)])
    assert res.exit_code == 2 and str(bad) in res.output and "nope" in res.output


def test_html_report_shows_variants_and_run_hints(store, tmp_path):
    store.add("cnn-sru-N3", acc=0.7, kind="deep", config=cascade(3, profile="tiny"))
    store.add("IS10-svm-linear", acc=0.5, config=record_config("svm-linear", feature="IS10"))
    page = build_report(["casia"], runs=store.root, out=tmp_path / "r").path.read_text(encoding="utf-8")
    assert "cnn-sru-N3 [profile=tiny" in page and "cnn-sru-N3: no stored run matches" in page
    assert f"serbench run jiang2019 --corpus casia --root ROOT --only cnn-sru-N3 --runs {store.root}" in page
    assert "serbench deep" not in page and "serbench baseline" not in page
    assert load_experiment("jiang2019").declared("casia")["IS10-svm-linear"].identity.hash in page


def test_records_keep_their_stored_name(store):
    store.add("cnn-sru-N3", acc=0.7, kind="deep", config=cascade(3, profile="tiny"))
    col = collect("casia", store.root)
    run = col.runs[col.variants["cnn-sru-N3"][0]]
    assert run.record["system"] == "cnn-sru-N3" and run.spec.stored == "cnn-sru-N3"
    assert json.loads((run.path / "run.json").read_text())["system"] == "cnn-sru-N3"
