"""Settings removed from CNN+SRU and its ablations (CascadeSettings.RETIRED): bundles and run records written
before the removal hold them. At the value every profile had they are read as if absent (the bundle loads and
predicts as before, the run keeps its identity); at any other value the bundle or run is refused in one line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from serbench.bundles import BundleError, load_model
from serbench.bundles.format import MODEL_JSON, settings_from_record
from serbench.errors import SerbenchError
from serbench.systems import registry
from serbench.systems.builtin.cnn_sru_settings import CascadeSettings
from serbench.systems.identity import identity_of, make_identity
from serbench.systems.settings import SettingsError

#: What every profile had before the removal (commit 4188263).
NEUTRAL = {"cnn_gain": 0.0, "cnn_envelope": 0.0, "cnn_adversary": 0.0, "sru_fc7_views": 0, "sru_joint": False,
           "sru_pool": "last"}
#: Values some research runs used.
OTHER = {"cnn_gain": 0.4, "cnn_envelope": 0.25, "cnn_adversary": 0.5, "sru_fc7_views": 2, "sru_joint": True,
         "sru_pool": "mean"}


def add_settings(bundle: Path, values: dict) -> None:
    """Write ``values`` into model.json's settings, as a bundle of the earlier version has them. The files'
    SHA-256 entries cover the weights only, so model.json needs no other change."""
    rec = json.loads((bundle / MODEL_JSON).read_text())
    rec["system"]["settings"].update(values)
    (bundle / MODEL_JSON).write_text(json.dumps(rec))


def test_the_table_of_retired_settings_is_the_neutral_one_and_no_setting_of_today():
    assert dict(CascadeSettings.RETIRED) == NEUTRAL
    for name in ("cnn-sru", "cnn", "sru"):
        cls = registry.get(name).settings_class
        assert dict(cls.RETIRED) == NEUTRAL and not set(NEUTRAL) & set(cls.fields())


@pytest.mark.slow   # trains the session's tiny cnn-sru bundle (about 10 s on 2 cores) unless a test did
def test_a_cnn_sru_bundle_with_the_retired_settings_at_neutral_loads_and_predicts_as_before(
        trained, bundle_copy, corpus_files):
    model = trained("cnn-sru")
    b = bundle_copy("cnn-sru")
    add_settings(b, NEUTRAL)
    old = load_model(b)
    assert old.settings == model.settings and old.name == model.name
    files = corpus_files[:4]
    a, c = model.predict(files), old.predict(files)
    cols = [k for k in a.columns if k.startswith(("prob_", "score_"))]
    assert cols
    np.testing.assert_array_equal(c[cols].to_numpy(), a[cols].to_numpy())
    assert list(c["emotion"]) == list(a["emotion"])


@pytest.mark.slow   # trains the session's tiny cnn-sru bundle (about 10 s on 2 cores) unless a test did
def test_a_bundle_with_a_retired_setting_at_another_value_is_refused_in_one_line(bundle_copy):
    b = bundle_copy("cnn-sru")
    for key, value in OTHER.items():
        add_settings(b, {**NEUTRAL, key: value})
        with pytest.raises(BundleError) as info:
            load_model(b)
        msg = str(info.value)
        assert "\n" not in msg and issubclass(info.type, SerbenchError)
        assert str(b) in msg and f"setting {key}=" in msg and "no longer has" in msg, msg


@pytest.mark.parametrize("name", ["cnn-sru", "cnn", "sru"])
def test_settings_from_model_json_of_each_cascade_system(tmp_path, name):
    system = registry.get(name)
    s = system.settings("tiny", {"segments": 2})
    saved = json.loads(json.dumps({**s.as_dict(), **NEUTRAL}))
    assert settings_from_record(system, saved, tmp_path) == s
    with pytest.raises(BundleError, match="sru_pool=mean: this version of serbench no longer has sru_pool"):
        settings_from_record(system, {**saved, "sru_pool": "mean"}, tmp_path)
    # A setting this version never had is still refused as before.
    with pytest.raises(BundleError, match="not settings of"):
        settings_from_record(system, {**saved, "warp_drive": 9}, tmp_path)


def test_drop_retired_compares_values_with_their_types():
    assert CascadeSettings.drop_retired({"segments": 2, **NEUTRAL}, where="x") == {"segments": 2}
    assert CascadeSettings.drop_retired({"cnn_gain": 0, "sru_fc7_views": 0.0}, where="x") == {}
    for key, value in (("sru_joint", 0), ("cnn_gain", False), ("sru_fc7_views", "0")):
        with pytest.raises(SettingsError, match=f"x: setting {key}="):
            CascadeSettings.drop_retired({key: value}, where="x")


def _config(settings: dict, *, with_identity: bool) -> dict:
    """A run record's config of cnn-sru N2 (tiny) holding ``settings``; with its stored identity or without."""
    config = {"system_type": "cnn-sru", "settings": settings, "protocol": "loso", "emotions": None, "seed": 0,
              "inputs": {"feature_key": "k"}}
    if with_identity:
        ident = make_identity("cnn-sru", settings, feature="melseg", feature_key="k", protocol="loso", emotions=None,
                              seed=0)
        config["identity"] = {"hash": ident.hash, "fields": ident.fields}
    return config


@pytest.mark.parametrize("with_identity", [True, False])
def test_a_run_record_with_retired_settings_at_neutral_keeps_its_identity(with_identity):
    today = registry.get("cnn-sru").settings("tiny", {"segments": 2}).as_dict()
    plain = identity_of(_config(today, with_identity=with_identity), name="cnn-sru-N2")
    old = identity_of(_config({**today, **NEUTRAL}, with_identity=with_identity), name="cnn-sru-N2")
    assert plain is not None and old is not None
    assert old.hash == plain.hash and old.settings == plain.settings
    with pytest.raises(SettingsError, match="run cnn-sru-N2: setting cnn_adversary=0.5: this version"):
        identity_of(_config({**today, **NEUTRAL, "cnn_adversary": 0.5}, with_identity=with_identity),
                    name="cnn-sru-N2")


@pytest.mark.slow
def test_rerun_and_done_status_of_a_run_recorded_with_retired_settings(corpus, cache, tmp_path):
    """A run of the earlier version: its record holds the six settings. At neutral it is still the run an
    experiment asks for; at another value `serbench rerun` refuses it in one line and it counts for nothing."""
    import torch

    from serbench.systems import run_deep
    from serbench.systems.runner import stored_identities
    from serbench.systems.rerun import rerun

    torch.set_num_threads(1)
    runs = tmp_path / "runs"
    res = run_deep("demo", corpus, segments=1, profile="tiny", device="cpu", seed=0, model="cnn", cache=cache,
                   runs=runs, overrides={"cnn_epochs": "1"}, threads=1)
    planned = res.record["config"]["identity"]["hash"]
    path = res.path / "run.json"
    record = json.loads(path.read_text())

    def write(values: dict) -> None:
        rec = json.loads(json.dumps(record))
        rec["config"]["settings"].update(values)
        f = rec["config"]["identity"]["fields"]
        old = make_identity(f["system"], {**f["settings"], **values}, feature=f["feature"],   # as the earlier
                            feature_key=f["feature_key"], protocol=f["protocol"],           # version hashed it
                            emotions=f["emotions"], seed=f["seed"])
        assert old.hash != planned
        rec["config"]["identity"] = {"hash": old.hash, "fields": old.fields}
        path.write_text(json.dumps(rec))

    write(NEUTRAL)
    assert planned in stored_identities("demo", runs)
    write({**NEUTRAL, "sru_fc7_views": 2})
    assert planned not in stored_identities("demo", runs)
    with pytest.raises(SerbenchError) as info:
        rerun(res.path, cache=cache, threads=1)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and "setting sru_fc7_views=2" in msg and "no longer has" in msg
