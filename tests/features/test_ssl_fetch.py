"""``serbench models`` and ``serbench models fetch``, without a network (huggingface_hub is monkeypatched)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

hub = pytest.importorskip("huggingface_hub")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ssl_models import save_tiny  # noqa: E402

from serbench.cli import cli  # noqa: E402

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_info(*_a, **_k):
    names = ["config.json", "preprocessor_config.json", "model.safetensors", "README.md"]
    return SimpleNamespace(sha=COMMIT, siblings=[SimpleNamespace(rfilename=n) for n in names])


def test_fetch_without_a_network_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    def half_then_fail(repo_id, *, revision, local_dir, allow_patterns):
        (Path(local_dir) / "model.safetensors").write_bytes(b"\0" * 1000)   # half-written download
        raise ConnectionError("Failed to resolve 'huggingface.co'")

    monkeypatch.setattr(hub.HfApi, "model_info", lambda self, *a, **k: fake_info())
    monkeypatch.setattr(hub, "snapshot_download", half_then_fail)
    root = tmp_path / "models"
    res = CliRunner().invoke(cli, ["models", "fetch", "wavlm-large", "--to", str(root)])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()       # "downloading ..." then the error, in one line
    assert lines[-1].startswith("error: ") and not any(line.startswith("error") for line in lines[:-1])
    assert "ConnectionError" in lines[-1] and str(root / "wavlm-large") in lines[-1]
    assert list(root.iterdir()) == []                      # neither the target nor the temp folder


def test_fetch_without_any_hub_access_is_one_line(tmp_path, monkeypatch):
    def offline(self, *a, **k):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(hub.HfApi, "model_info", offline)
    res = CliRunner().invoke(cli, ["models", "fetch", "hubert-base", "--to", str(tmp_path / "m")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "put its Hugging Face folder" in res.output and list((tmp_path / "m").iterdir()) == []


def test_fetch_renames_a_complete_download_into_place(tmp_path, monkeypatch):
    seen = {}

    def download(repo_id, *, revision, local_dir, allow_patterns):
        seen.update(repo=repo_id, revision=revision, patterns=allow_patterns)
        tiny = save_tiny(tmp_path / "src", "wavlm-base-plus")
        for p in tiny.iterdir():
            (Path(local_dir) / p.name).write_bytes(p.read_bytes())

    monkeypatch.setattr(hub.HfApi, "model_info", lambda self, *a, **k: fake_info())
    monkeypatch.setattr(hub, "snapshot_download", download)
    root = tmp_path / "models"
    res = CliRunner().invoke(cli, ["models", "fetch", "wavlm-base-plus", "--to", str(root)])
    assert res.exit_code == 0, res.output
    assert seen == {"repo": "microsoft/wavlm-base-plus", "revision": COMMIT,
                    "patterns": ["config.json", "preprocessor_config.json", "model.safetensors"]}
    assert [p.name for p in root.iterdir()] == ["wavlm-base-plus"]
    record = json.loads((root / "wavlm-base-plus" / "serbench-fetch.json").read_text())
    assert record["commit"] == COMMIT and len(record["sha256"]["model.safetensors"]) == 64
    listing = CliRunner().invoke(cli, ["models", "--model-dir", str(root)])
    assert listing.exit_code == 0 and f"found: {root / 'wavlm-base-plus'}" in listing.output
    assert "missing" in listing.output and "microsoft/wavlm-large @ main" in listing.output
