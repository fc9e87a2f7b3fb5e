"""Editing a bundle on disk as someone who changes it would, and asserting it is refused in one line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from serbench.bundles import BundleError, load_model
from serbench.bundles.format import MODEL_JSON, sha256_bytes
from serbench.errors import SerbenchError


def edit_json(bundle: Path, change) -> None:
    rec = json.loads((bundle / MODEL_JSON).read_text())
    change(rec)
    (bundle / MODEL_JSON).write_text(json.dumps(rec))


def replace_file(bundle: Path, name: str, data: bytes) -> None:
    """Put ``data`` in place of ``name`` AND update model.json, as an attacker who edits both would."""
    (bundle / name).write_bytes(data)

    def fix(rec):
        rec["files"][name].update(bytes=len(data), sha256=sha256_bytes(data))
    edit_json(bundle, fix)


def refused(bundle: Path, *needles: str) -> str:
    """The one-line message ``load_model(bundle)`` refuses it with, holding every needle."""
    with pytest.raises(BundleError) as info:
        load_model(bundle)
    msg = str(info.value)
    assert "\n" not in msg and issubclass(info.type, SerbenchError)
    for n in needles:
        assert n in msg, msg
    return msg
