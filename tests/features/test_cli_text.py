"""Small things a user reads: `cache info` fits 80 columns, the extract summary says what its seconds are, and a
run that finds everything cached shows no empty progress bar."""
from __future__ import annotations

import importlib

from click.testing import CliRunner

from serbench.cli import cli
from serbench.features import extract

extract_mod = importlib.import_module("serbench.features.extract")


def test_cache_info_fits_80_columns_without_cutting_values(corpus, cache_dir, probe):
    extract("demo", corpus, ["Probe"], cache=cache_dir, progress=False)
    res = CliRunner().invoke(cli, ["cache", "info", "--cache", str(cache_dir)], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert all(len(line) <= 80 for line in lines[1:]), res.output     # the first line is the cache's path
    assert "…" not in res.output
    header, row = lines[1].split(), lines[2].split()
    assert header == ["corpus", "set", "key", "rows", "ok", "nan", "failed", "parts", "size"]
    assert row[:2] == ["demo", "Probe"] and row[3:7] == ["8", "8", "0", "0"]


def test_the_widest_cache_info_row_fits_80_columns():
    from serbench.cli.features import _PlainTable

    table = _PlainTable()
    table.add_row("iemocap4", "eGeMAPS", "3e1e8eb41fff*", "10039", "10039", "10039", "10039", "10039", "999.9 MiB")
    assert all(len(line) <= 80 for line in table.lines())


def test_extract_summary_labels_its_seconds(corpus, cache_dir, probe):
    res = CliRunner().invoke(cli, ["extract", "--corpus", "demo", "--root", str(corpus), "--features", "Probe",
                                   "--cache", str(cache_dir), "--no-progress"], env={"COLUMNS": "120"})
    assert res.exit_code == 0, res.output
    assert "s wall" in res.output and "extractor s" in res.output
    assert "summed over" in " ".join(res.output.split())          # the caption wraps under the table


def test_no_progress_bar_when_everything_is_cached(corpus, cache_dir, probe, monkeypatch):
    shown = []
    real = extract_mod._progress

    def spy(enabled):
        shown.append(enabled)
        return real(False)

    monkeypatch.setattr(extract_mod, "_progress", spy)
    extract("demo", corpus, ["Probe"], cache=cache_dir, progress=True)
    extract("demo", corpus, ["Probe"], cache=cache_dir, progress=True)
    assert shown == [True, False]
