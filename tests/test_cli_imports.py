"""Light imports: listing, keying and reading cached features never load the heavy libraries.

Each check runs in a fresh interpreter, since this test process has long imported them.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("torch", "sklearn", "librosa", "opensmile", "numba")


def _loaded_after(code: str) -> list[str]:
    """Run ``code`` in a new interpreter; the heavy modules it left in sys.modules."""
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import sys as _sys, json as _json
        print(_json.dumps(sorted(m for m in {HEAVY!r} if m in _sys.modules)))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_library_packages_import_light():
    modules = ("serbench.features", "serbench.corpora", "serbench.audio", "serbench.cli.features",
               "serbench.cli.corpora", "serbench.cli")
    assert _loaded_after("import " + ", ".join(modules)) == []


def test_keying_every_feature_set_imports_no_extractor_library():
    code = """
        from serbench.features import list_feature_sets
        from serbench.features.ssl import is_ssl
        # The SSL upstreams' keys need their local weights (tests/features/test_ssl.py keys them).
        keys = [fs.key for fs in list_feature_sets() if not is_ssl(fs.name)]
    """
    assert _loaded_after(code) == []


@pytest.mark.slow
def test_a_fully_cached_extraction_imports_no_extractor_library(tmp_path, tone):
    from serbench.features import extract

    root, cache = tmp_path / "corpus", tmp_path / "cache"
    for speaker in ("spk1", "spk2"):
        for emotion in ("angry", "sad"):
            tone(root / speaker / emotion / "t1.wav", seconds=0.3, freq=180 + 40 * len(speaker + emotion))
    sets = "MFCC,IS09,melseg"
    first = extract("demo", root, sets.split(","), cache=cache, progress=False)
    assert all(r.extracted == 4 for r in first.sets.values())
    code = f"""
        from serbench.cli import cli
        try:
            cli(["extract", "--corpus", "demo", "--root", {str(root)!r}, "--cache", {str(cache)!r},
                 "--features", {sets!r}, "--no-progress"])
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
    """
    assert _loaded_after(code) == []
