"""The system registry: names, stored names that parse back, settings checked in one place."""
from __future__ import annotations

import dataclasses
import math

import pytest

from serbench.systems import registry
from serbench.systems.settings import SettingsError


def test_every_builtin_system_is_registered_in_the_papers_order():
    assert registry.names(kind="baseline")[:2] == ["svm-linear", "svm-rbf"]
    assert registry.names(kind="deep") == ["cnn-sru", "cnn", "sru", "crnn", "crnn-ctc", "crnn-mk", "dcnn-blstm-att",
                                             "ssl-probe"]
    assert registry.names(table="cnn-sru") == ["cnn-sru", "cnn", "sru"]
    assert registry.names(table="systems") == ["crnn", "crnn-ctc", "crnn-mk", "dcnn-blstm-att", "ssl-probe"]


def test_importing_the_registry_loads_no_heavy_library():
    import subprocess
    import sys

    code = ("import sys; from serbench.systems import registry; registry.names(); "
            "print(sorted(m for m in ('numpy', 'pandas', 'torch', 'sklearn', 'librosa') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name, overrides, stored", [
    ("svm-linear", {"feature": "is10"}, "IS10-svm-linear"),
    ("svm-rbf", {"feature": "IS09", "speaker_norm": True, "class_weight": "balanced"}, "IS09-svm-rbf-spknorm-balanced"),
    ("cnn-sru", {"segments": 5, "sru_fuse": 0}, "cnn-sru-N5"),                  # the paper's decision
    ("cnn-sru", {"segments": 5}, "cnn-sru-fuse75-N5"),                          # fast's fused decision
    ("cnn-sru", {"segments": 3, "sru_crossfit": 3, "speaker_norm": True, "sru_fuse": 0}, "cnn-sru-xfit3-N3-spknorm"),
    ("cnn-sru", {"segments": 3, "sru_crossfit": 3}, "cnn-sru-xfit3-fuse75-N3"),
    ("cnn-sru", {"segments": 5, "sru_crossfit": 2, "sru_fuse": 0.125}, "cnn-sru-xfit2-fuse12.5-N5"),
    ("cnn", {"segments": 1}, "cnn-N1"),
    ("sru", {"segments": 2, "speaker_norm": True}, "sru-N2-spknorm"),
    ("crnn", {}, "crnn"),
    ("crnn-ctc", {"speaker_norm": True}, "crnn-ctc-spknorm"),
    ("crnn-mk", {"mk_multi_kernel": False, "summary": "mean"}, "crnn-mk-nomk-mean"),
    ("crnn-mk", {"mk_enhanced_features": False, "mk_effective_training": False}, "crnn-mk-noenh-nols"),
    ("dcnn-blstm-att", {}, "dcnn-blstm-att"),
])
def test_stored_names_are_formatted_and_parsed_by_the_same_declaration(name, overrides, stored):
    system = registry.get(name)
    s = system.settings("fast", overrides)
    assert system.stored_name(s) == stored
    found = registry.identify(stored)
    assert found.system is system
    for key, value in found.settings.items():
        assert getattr(s, key) == value, key


def test_a_record_wins_over_the_name_and_unknown_names_are_other():
    rec = {"config": {"system_type": "cnn", "settings": {"segments": 4, "speaker_norm": True}}}
    assert registry.identify("renamed-by-hand", rec).settings["segments"] == 4
    assert registry.identify("nonsense-xyz").system is None
    # an older record (no system_type) is parsed by name, its config fields filling in
    old = registry.identify("IS10-svm-linear", {"config": {"speaker_norm": True}})
    assert old.system.name == "svm-linear" and old.speaker_norm is True


@pytest.mark.parametrize("name, key, value, message", [
    ("cnn-sru", "cnn_lr", "nan", "--set cnn_lr=nan: must be a finite number"),
    ("cnn-sru", "cnn_lr", "inf", "--set cnn_lr=inf: must be a finite number"),
    ("cnn-sru", "cnn_lr", "0", "--set cnn_lr=0.0: must be a finite number > 0"),
    ("cnn-sru", "cnn_momentum", "-1", "--set cnn_momentum=-1.0: must be a finite number in [0, 1)"),
    ("cnn-sru", "cnn_weight_decay", "-0.1", "--set cnn_weight_decay=-0.1: must be a finite number >= 0"),
    ("cnn-sru", "dropout", "1", "--set dropout=1.0: must be a finite number in [0, 1)"),
    ("cnn-sru", "cnn_optimizer", "rmsprop", "--set cnn_optimizer=rmsprop: must be one of sgd, adam"),
    ("cnn-sru", "cnn_epochs", "2.5", "--set cnn_epochs=2.5: expected an int"),
    ("cnn-sru", "segments", "0", "--segments 0: must be in [1, 20]"),
    ("cnn-sru", "sru_crossfit", "1", "--set sru_crossfit=1: 0 (off, the paper) or K >= 2"),
    ("crnn", "lr", "nan", "--set lr=nan: must be a finite number"),
    ("crnn", "grad_clip", "-1", "--set grad_clip=-1.0: must be a finite number >= 0"),
    ("crnn", "channels", "8,0", "--set channels=8,0: give one positive channel count"),
    ("crnn-mk", "mk_kernel_widths", "3,4", "--set mk_kernel_widths=3,4: must be a comma-separated list of odd"),
    ("crnn-mk", "mk_label_smoothing", "1.5", "mk_label_smoothing=1.5: must be a finite number in [0, 1)"),
    ("svm-linear", "class_weight", "heavy", "--class-weight heavy: must be one of none, balanced"),
])
def test_bad_settings_are_one_line_errors_naming_the_option(name, key, value, message):
    overrides = {"feature": "IS10"} if name.startswith("svm") else {"segments": 3}
    overrides = {k: v for k, v in overrides.items() if k in registry.get(name).settings_class.fields()}
    with pytest.raises(SettingsError) as info:
        registry.get(name).settings("fast", {**overrides, key: value})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_setting_and_profile_name_the_choices():
    with pytest.raises(SettingsError, match="--set nonsense: not a setting of cnn-sru; its settings: amp, cnn_batch, cnn_batchnorm"):
        registry.get("cnn-sru").settings("fast", {"nonsense": 1})
    with pytest.raises(SettingsError, match="--profile 'huge'.*paper, fast, tiny"):
        registry.get("crnn").settings("huge")


@pytest.mark.parametrize("name", registry.names())
def test_every_profile_of_every_system_is_valid(name):
    system = registry.get(name)
    extra = {"feature": "wavlm-base-plus" if name == "ssl-probe" else "IS10", "segments": 3}   # the probe reads SSL sets
    for profile in system.settings_class.PROFILES:
        s = system.settings(profile, {k: v for k, v in extra.items() if k in system.settings_class.fields()})
        for f in dataclasses.fields(s):
            v = getattr(s, f.name)
            assert not (isinstance(v, float) and not math.isfinite(v))
