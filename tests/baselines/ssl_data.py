"""Shared by the SSL layer tests: the leakage tests' data named as a tiny WavLM's layer blocks, and its model folder."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("leakage_helpers", Path(__file__).with_name("test_leakage.py"))
_leak = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_leak)
loader = _leak.loader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "features"))
from ssl_models import save_tiny  # noqa: E402

N_STATES, WIDTH = 3, 32            # the tiny WavLM: 2 layers + input, mean and std of 16 each


def make_data(**kw):
    """The leakage tests' data with a self-supervised set's column names (layer blocks, means then stds)."""
    from serbench.features.ssl import layer_columns

    X, m = _leak.make_data(**kw)
    X.columns = [c for k in range(N_STATES) for c in layer_columns(k, WIDTH // 2)]
    return X, m


@pytest.fixture
def wavlm(tmp_path, monkeypatch):
    """A tiny random WavLM saved as wavlm-base-plus in a models root of its own, on the CPU."""
    monkeypatch.setenv("SERBENCH_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("SERBENCH_SSL_DEVICE", "cpu")
    save_tiny(tmp_path / "models", "wavlm-base-plus")
