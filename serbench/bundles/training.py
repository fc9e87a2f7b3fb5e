"""Fit a registered system on every speaker of a corpus and save it as a model bundle.

>>> from serbench.bundles import train
>>> model = train("svm-linear", "casia", "/data/casia", "models/casia-is10",
...               overrides={"feature": "IS10"})                            # doctest: +SKIP
>>> model.predict(["new.wav"])                                              # doctest: +SKIP

The data and settings are built by :func:`serbench.systems.run.prepare`, exactly as the
benchmark builds them (same feature cache, profile, ``--set`` overrides, per-speaker
normalization, emotions); then the system's own ``fit`` runs once on all utterances, so
everything a benchmark fold fits on its training speakers (scalers, the SVM's
hyper-parameters by the speaker-grouped inner CV, the CNN's input normalization, early
stopping on held-out training utterances) is fitted the same way on all speakers.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from serbench import __version__
from serbench.bundles.format import FORMAT, FORMAT_VERSION, BundleError, feature_record, prepare_folder, write_bundle
from serbench.bundles.model import Model

Log = Callable[[str], None]

def speaker_norm_note() -> str:
    from serbench.bundles.speaker_norm import MIN_SPEAKER_INPUTS

    return ("each speaker's inputs are z-scored with that speaker's own statistics (label-free) before the model's "
            f"own normalization; predicting needs the speaker of every input and at least {MIN_SPEAKER_INPUTS} "
            "inputs per speaker, and a prediction depends on the other inputs of its speaker")


#: Training files decoded to measure the training audio's bandwidth (evenly spread over the manifest).
AUDIO_SAMPLE_FILES = 24


def training_audio(manifest, utterance_ids) -> dict:
    """What the bandwidth check of ``predict`` compares inputs with (model.json ``training.audio``).

    ``{"sample_rates": {"16000": 1200}, "high_band_share": median share of energy above 4 kHz
    over :data:`AUDIO_SAMPLE_FILES` files, "high_band_files": how many were read}``; files that
    cannot be read are left out of the median.
    """
    from serbench.audio import load_audio
    from serbench.bundles.sources import HIGH_BAND_HZ, high_band_share

    used = manifest[manifest["utterance_id"].astype(str).isin(set(map(str, utterance_ids)))]
    rates = used["sample_rate"].dropna().astype(int).value_counts().sort_index()
    paths = used["path"].astype(str).tolist()
    pick = sorted({int(round(i)) for i in np.linspace(0, len(paths) - 1, min(AUDIO_SAMPLE_FILES, len(paths)))})
    shares = []
    for i in pick:
        try:
            shares.append(high_band_share(load_audio(paths[i]).signal))
        except Exception:  # an unreadable file is no measure of the others
            continue
    return {"sample_rates": {str(k): int(v) for k, v in rates.items()},
            "high_band_hz": HIGH_BAND_HZ,
            "high_band_share": float(np.median(shares)) if shares else None, "high_band_files": len(shares)}


def manifest_hash(utterance_ids: Sequence[str], speakers: Sequence[str], emotions: Sequence[str]) -> str:
    """SHA-256 over the (utterance_id, speaker, emotion) rows a model was trained on, in order."""
    h = hashlib.sha256()
    for row in zip(utterance_ids, speakers, emotions):
        h.update(("\t".join(map(str, row)) + "\n").encode("utf-8"))
    return h.hexdigest()


def find_benchmark_run(runs: str | Path | None, corpus: str, name: str, settings: dict,
                       fingerprint: str) -> dict | None:
    """The latest complete run in the results store of system ``name`` with these settings on the same data.

    Only run.json files are read. Returns ``{"run_id", "path", "wa", "ua", "protocol", "finished"}`` or None.
    """
    from serbench.experiments.store import RUN_JSON, RunStore, StoreError

    try:
        base = RunStore(runs).system_dir(corpus, name)
    except StoreError:
        return None
    if not base.is_dir():
        return None
    want = json.loads(json.dumps(settings, default=str))
    for path in sorted(base.iterdir(), reverse=True):     # run ids sort by time
        try:
            rec = json.loads((path / RUN_JSON).read_text("utf-8"))
        except (OSError, ValueError):
            continue
        cfg = rec.get("config") or {}
        if (rec.get("status") == "complete" and cfg.get("settings") == want
                and rec.get("data_fingerprint") == fingerprint):
            m = rec.get("metrics") or {}
            return {"run_id": rec.get("run_id"), "path": str(path), "wa": m.get("wa"), "ua": m.get("ua"),
                    "protocol": cfg.get("protocol"), "finished": rec.get("finished")}
    return None


def run_recipe(corpus: str, which: str = "best", runs: str | Path | None = None) -> dict:
    """The system and settings of a complete benchmark run of ``corpus``, to train the same thing on all speakers.

    ``which``: ``"best"`` (highest pooled UA, recomputed from the predictions, among the
    complete runs of systems that can be saved; ties go to the first system name), a run id,
    or a run folder. Returns ``{"system", "profile", "overrides", "emotions", "seed", "run_id",
    "ua", "name", "speaker_norm", "without_speaker_norm"}`` for :func:`train`; with ``best`` and
    a per-speaker normalized winner, ``without_speaker_norm`` is ``{"run_id", "name", "ua"}`` of
    the best run that needs no speakers at prediction time (None when there is none).
    """
    import math

    from serbench.experiments.store import RunStore
    from serbench.systems import registry

    store = RunStore(runs)
    listed = store.list_runs(corpus)
    listed = listed[listed["status"] == "complete"]
    if which == "best":
        def usable(path: str) -> bool:
            typ = (_run_json(Path(path)).get("config") or {}).get("system_type")
            return typ in registry.names() and registry.get(typ).exportable

        listed = listed[[usable(p) and not math.isnan(ua) for p, ua in zip(listed["path"], listed["ua"])]]
        listed = listed.sort_values(["ua", "system"], ascending=[False, True], kind="stable")
        if listed.empty:
            raise BundleError(f"--from-run best: no complete run of a system that can be saved for corpus {corpus} "
                              f"under {store.root}; run a benchmark first (serbench baseline / deep / grid) or give "
                              "--system")
        row = listed.iloc[0]
    else:
        match = listed[(listed["run_id"] == which) | (listed["path"] == str(Path(which).expanduser()))]
        if match.empty:
            raise BundleError(f"--from-run {which}: no complete run with that id or folder for corpus {corpus} under "
                              f"{store.root} (see `serbench runs --corpus {corpus}`)")
        row = match.iloc[0]
    rec = _run_json(Path(row["path"]))
    cfg = rec.get("config") or {}
    settings = dict(cfg.get("settings") or {})
    if not cfg.get("system_type") or not settings:
        raise BundleError(f"--from-run {which}: run {row['run_id']} records no system settings (written by an older "
                          "serbench); give --system and its options instead")
    profile = settings.pop("profile", None)
    spk = bool(settings.get("speaker_norm"))
    other = None
    if spk and which == "best":
        for _, alt in listed.iterrows():
            alt_settings = (_run_json(Path(alt["path"])).get("config") or {}).get("settings") or {}
            if alt_settings and not alt_settings.get("speaker_norm"):
                other = {"run_id": str(alt["run_id"]), "name": str(alt["system"]), "ua": float(alt["ua"])}
                break
    return {"system": cfg["system_type"], "profile": profile, "overrides": settings,
            "emotions": cfg.get("emotions"), "seed": int(cfg.get("seed") or 0), "run_id": str(row["run_id"]),
            "ua": float(row["ua"]), "name": str(row["system"]), "speaker_norm": spk, "without_speaker_norm": other}


def _run_json(path: Path) -> dict:
    from serbench.experiments.store import RUN_JSON

    try:
        return json.loads((path / RUN_JSON).read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def train(system: str, corpus: str, root: str | Path, out: str | Path, *, profile: str | None = "fast",
          overrides: Mapping[str, Any] | None = None, emotions: Sequence[str] | None = None, seed: int = 0,
          protocol: str | None = None, cache: str | Path | None = None, jobs: int = 1, device: str = "auto",
          threads: int | None = None, runs: str | Path | None = None, overwrite: bool = False,
          command: str | None = None, log: Log | None = None) -> Model:
    """Fit ``system`` on all speakers of ``corpus`` and write the bundle folder ``out``; return the model.

    ``profile`` / ``overrides`` (``--set`` values and options such as ``feature``,
    ``segments``, ``speaker_norm``, ``class_weight``, ``pretrained``) are those of the
    benchmark commands; ``runs`` is the results store searched for the benchmark run of the
    same system, settings and data. ``out`` must be new, empty or (``overwrite``) a bundle;
    it is checked before training. The returned :class:`~serbench.bundles.model.Model` holds
    the fitted model itself (not reloaded from disk).
    """
    from serbench.experiments.harness import FoldContext
    from serbench.experiments.store import git_commit, jsonable, utc_now, versions
    from serbench.features.handle import CorpusHandle
    from serbench.systems import registry
    from serbench.systems.deep_runtime import resolve_device
    from serbench.systems.run import default_command, prepare

    say = log or (lambda _m: None)
    sysobj = registry.get(system)
    if not sysobj.exportable:
        raise BundleError(f"--system {system}: this system cannot be saved as a model bundle (it implements no "
                          "export/restore)")
    out = prepare_folder(out, overwrite)
    handle = CorpusHandle.of(corpus, root, cache=cache, jobs=jobs, emotions=emotions)
    plan = prepare(system, handle, profile=profile, overrides=overrides, protocol=protocol, seed=seed,
                   cache=cache, jobs=jobs, emotions=emotions, device=device, threads=threads,
                   command=command, log=say)
    data, s = plan.data, plan.payload
    dev = str(resolve_device(device)) if sysobj.kind == "deep" else "cpu"
    say(f"training {plan.system} on all {len(data)} utterances of {corpus} "
        f"({len(np.unique(data.speakers))} speakers, {data.n_classes} classes)")
    ctx = FoldContext(run_id="bundle", system=plan.system, fold="all", seed=int(seed), checkpoint_dir=None,
                      device=dev, threads=threads, log=say)
    t0 = time.perf_counter()
    fitted = sysobj.fit(data, np.arange(len(data)), s, ctx)
    calibrate = getattr(sysobj, "calibrate", None)
    if calibrate is not None:
        # SVMs: probabilities from a slope fitted on out-of-fold decision values of speaker-grouped splits.
        say("calibrating probabilities on speaker-grouped out-of-fold decision values")
        fitted = calibrate(fitted, data, np.arange(len(data)), s, ctx)
    fit_s = time.perf_counter() - t0
    parts = sysobj.export(fitted, s)
    settings = jsonable(s.as_dict())
    emotions_used = data.true_labels(np.arange(len(data)))
    counts = {lab: int(c) for lab, c in zip(data.labels, np.bincount(data.y, minlength=data.n_classes))}
    record = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "serbench_version": __version__,
        "git_commit": git_commit(), "created": utc_now(), "command": command or default_command(),
        "system": {"type": sysobj.name, "name": plan.system, "kind": sysobj.kind, "inputs": sysobj.inputs,
                   "profile": s.profile, "settings": settings},
        "labels": list(data.labels),
        "scores": parts.score_kind,
        "scores_note": (("probabilities: softmax of the SVM's one-vs-rest decision values with a slope fitted out "
                         "of fold on the training speakers (model.calibration); predict --scores decision gives the "
                         "raw decision values") if parts.meta.get("calibration") else
                        "softmax probabilities" if parts.score_kind == "probability" else
                        "SVM one-vs-rest decision scores (larger = more likely; not probabilities)"),
        "feature_set": feature_record(sysobj.feature_set(s)),
        "normalization": {"speaker_norm": bool(s.speaker_norm),
                          "speaker_norm_note": speaker_norm_note() if s.speaker_norm else None,
                          "model": jsonable(parts.normalization)},
        "training": {
            "corpus": corpus, "root": str(root), "emotions": list(emotions) if emotions else None,
            "seed": int(seed), "device": dev, "n_utterances": int(len(data)),
            "n_speakers": int(len(np.unique(data.speakers))), "speakers": sorted(map(str, np.unique(data.speakers))),
            "class_counts": counts, "excluded": plan.extra.get("excluded", {}).get("n", 0),
            "manifest_sha256": manifest_hash(data.utterance_ids, data.speakers, emotions_used),
            "data_fingerprint": data.fingerprint, "inputs": jsonable(plan.config.get("inputs")),
            "fit_s": fit_s, "details": jsonable(sysobj.fold_info(fitted)),
            "audio": training_audio(handle.manifest, data.utterance_ids),
        },
        "benchmark_run": find_benchmark_run(runs, corpus, plan.system, settings, data.fingerprint),
        "model": jsonable(parts.meta),
        "versions": versions(),
    }
    full = write_bundle(out, parts, record, overwrite=overwrite)
    run = full["benchmark_run"]
    say(f"model bundle written to {out}" + (f"; benchmark run {run['run_id']}: UA {100 * run['ua']:.1f}%"
                                              if run and run.get("ua") is not None else
                                              "; no benchmark run of these settings on this data in the store"))
    return Model(system=sysobj, settings=s, labels=list(data.labels), fitted=fitted, record=full,
                 score_kind=parts.score_kind, device=dev, path=Path(out))


__all__ = ["train", "run_recipe", "find_benchmark_run", "manifest_hash"]
