"""Choose deep training settings without the test speaker: nested speaker-grouped recipe experiments.

For every outer leave-one-speaker-out fold, ``round(0.2 x training speakers)`` (at least 1) of
the fold's TRAINING speakers form an inner validation group (CASIA: 1 of 3, EMO-DB: 2 of 9),
drawn from a hash of corpus and fold, so every recipe sees the same split. The system trains on
the remaining training speakers with its real fold code (``System.fit``) and predicts the inner
validation speakers (``val``: what a setting is chosen on) and the outer test speaker (``test``:
reported, never used for a choice). For ``cnn-sru`` the CNN ablation of the same CNN(s) is
scored too (mean of segment softmaxes, averaged over the fold's CNNs: ensemble members, cross-fitted
groups).

    python -m benchmarks.recipe_levers run --name opt --system cnn-sru --corpus emodb \\
        --root ../shared/corpora/emodb-2s --segments 3 [--set cnn_mixup=0.2 ...] [--max-folds 5]
    python -m benchmarks.recipe_levers table                  # the lever table (UA %, pooled)
    python -m benchmarks.recipe_levers combine --corpus emodb s0 s1 s2 --fuse 0.5

``--head LABEL:KEY=VALUE[,KEY=VALUE...]`` (cnn-sru, repeatable) also trains stage 2 afresh under those
settings on the very CNNs of each fold (only stage-2 settings, e.g. ``--head res:sru_residual=true``) and
scores it as system ``cnn-sru[LABEL]``: a stage-2 lever costs one SRU training, not a CNN.

``combine`` scores what a setting would give without training it again: the mean of several runs'
probabilities (an ensemble of their seeds) and, with ``--fuse w``, ``w x CNN+SRU + (1 - w) x CNN``
(the cascade's decision fused with its own CNN's mean of segment softmaxes), on the folds every run has.

``--keep-models`` stores each fold's fitted model as a bundle folder (``<name>/models/<corpus>-<fold>/``:
safetensors and model.json, checked and loaded as ``serbench predict`` loads bundles). ``--models-from RUN``
then skips training: each fold's model is restored from RUN (whose recipe, seed and N must be the ones given)
and scored again with its ``--head`` variants, so a stage-2 lever costs one SRU training per fold even after
the run.

``--outer-only`` skips the inner split: the system trains on the whole training fold, exactly as
``serbench deep`` does, and only the test speaker is scored; for ``cnn-sru`` this gives the full
protocol's CNN+SRU and CNN from one training of each fold's CNN(s), for a recipe that was chosen.
``store NAME --corpus C --segments N --runs DIR [--sru-fuse w]`` writes them into a results store as
``serbench deep`` runs, so ``serbench tables --runs DIR`` prints Tables III-IV (with an SRU run there).

Results: ``<out>/<name>/<corpus>.parquet`` (predictions with ``system`` and ``role``) and
``<name>/<corpus>-folds.jsonl`` (settings, timings, curves). A killed run resumes at the next
fold it has not stored. ``--folds 03,08`` runs only those outer folds. Default ``--out``:
``recipe-results/``.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_OUT = Path("recipe-results")
VAL, TEST = "val", "test"


def inner_split(train: np.ndarray, speakers: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(inner_train, inner_val)`` rows: ``max(1, round(0.2 k))`` of the fold's ``k`` training speakers,
    drawn with a seed from ``key`` only, are the inner validation group."""
    train = np.asarray(train)
    names = sorted(set(speakers[train].astype(str).tolist()))
    k = max(1, int(round(0.2 * len(names))))
    if k >= len(names):
        raise SystemExit(f"fold {key}: {len(names)} training speaker(s) cannot be split into inner train and val")
    seed = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "little")
    held = set(np.random.default_rng(seed).choice(names, size=k, replace=False).tolist())
    is_val = np.isin(speakers[train].astype(str), list(held))
    return train[~is_val], train[is_val]


def pick_folds(folds: list, most: int | None, names: list[str] | None = None) -> list:
    """The folds called ``names`` (all when None), then ``most`` of them spread evenly over the list (all when
    None or >= len)."""
    if names:
        unknown = sorted(set(names) - {f.name for f in folds})
        if unknown:
            raise SystemExit(f"--folds: no fold {', '.join(unknown)}; the folds are "
                             f"{', '.join(f.name for f in folds)}")
        folds = [f for f in folds if f.name in set(names)]
    if not most or most >= len(folds):
        return list(folds)
    idx = np.unique(np.round(np.linspace(0, len(folds) - 1, most)).astype(int))
    return [folds[i] for i in idx]


def _frame(data, rows: np.ndarray, out, fold: str, system: str, n_val: int) -> pd.DataFrame:
    from serbench.experiments.dataset import predictions_frame

    return predictions_frame(data, fold, rows, out).assign(
        system=system, role=np.where(np.arange(len(rows)) < n_val, VAL, TEST))


def run(name: str, system: str, corpus: str, root: str, *, segments: int | None, sets: dict, out: Path,
        profile: str = "fast", seed: int = 0, max_folds: int | None = None, folds: list[str] | None = None,
        threads: int = 1, cache: str | None = None, outer_only: bool = False, heads: dict | None = None,
        keep_models: bool = False, models_from: str | None = None, log=print) -> Path:
    import torch

    from serbench.experiments.harness import FoldContext
    from serbench.systems import registry
    from serbench.systems.run import prepare

    torch.set_num_threads(threads)
    overrides = dict(sets)
    if segments is not None:
        overrides["segments"] = segments
    plan = prepare(system, corpus, root, profile=profile, overrides=overrides, seed=seed, cache=cache,
                   device="cpu", threads=threads, log=log, kind="deep")
    sysobj, s, data = registry.get(system), plan.payload, plan.data
    variants = _head_settings(sysobj, profile, overrides, heads or {})
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    config = {"system": system, "profile": profile, "settings": s.as_dict() if hasattr(s, "as_dict") else vars(s),
              "sets": sets, "seed": seed, "segments": segments, "outer_only": outer_only, "heads": heads or {}}
    cfg_path = folder / "config.json"
    # A setting added to serbench after a run was stored reads as its default there, so old runs resume.
    defaults = {f.name: f.default for f in dataclasses.fields(s) if f.default is not dataclasses.MISSING}

    def recipe(settings: dict) -> dict:           # one recipe may run on several corpora, each at its own N
        return {k: v for k, v in {**defaults, **settings}.items() if k != "segments"}

    if cfg_path.is_file():
        held = json.loads(cfg_path.read_text())
        if (recipe(held.get("settings") or {}) != recipe(config["settings"])
                or bool(held.get("outer_only")) != outer_only or (held.get("heads") or {}) != (heads or {})):
            raise SystemExit(f"{folder}: holds a recipe with other settings or splits; use another --name")
    source = out / models_from / "models" if models_from else None
    if source is not None:
        if not source.is_dir():
            raise SystemExit(f"--models-from {models_from}: {source} holds no models; run it with --keep-models")
        held = json.loads((source.parent / "config.json").read_text())
        # N and seed are checked per stored model: one run folder may hold several corpora, each at its own N.
        if (recipe(held.get("settings") or {}) != recipe(config["settings"])
                or bool(held.get("outer_only")) != outer_only):
            raise SystemExit(f"--models-from {models_from}: its models were trained with another recipe or split; "
                             "give the same --set and --outer-only")
    cfg_path.write_text(json.dumps(config, indent=1, default=str))
    preds_path, folds_path = folder / f"{corpus}.parquet", folder / f"{corpus}-folds.jsonl"
    done = set(pd.read_parquet(preds_path)["fold"]) if preds_path.is_file() else set()
    for fold in pick_folds(plan.folds, max_folds, folds):
        if fold.name in done:
            continue
        t0 = time.perf_counter()
        inner_train, inner_val = ((np.asarray(fold.train), np.array([], dtype=np.int64)) if outer_only else
                                  inner_split(np.asarray(fold.train), data.speakers, f"{corpus}/{fold.name}"))
        rows = np.concatenate([inner_val, np.asarray(fold.test)])
        ctx = FoldContext(run_id=name, system=plan.system, fold=fold.name, seed=seed, device="cpu",
                          threads=threads, log=lambda m: None)
        if source is not None:
            model = load_model(sysobj, source, corpus, fold.name, s, data.labels, seed=seed)
        else:
            model = sysobj.fit(data, inner_train, s, ctx)
            if keep_models:
                save_model(sysobj, model, s, folder / "models", corpus, fold.name, data.labels, seed=seed)
        frames = [_frame(data, rows, sysobj.predict(model, data, rows, s, ctx), fold.name, system,
                         len(inner_val))]
        if system == "cnn-sru":
            from serbench.experiments.dataset import FoldOutput

            cnn = registry.get("cnn")       # its prediction averages over all CNNs of the fold
            probs = cnn.predict(type(model)(cnns=model.cnns), data, rows, s, ctx).scores
            frames.append(_frame(data, rows, FoldOutput(probs), fold.name, "cnn", len(inner_val)))
        for label, hs in variants.items():
            refit = sysobj.refit_heads(model, data, inner_train, hs, ctx)
            frames.append(_frame(data, rows, sysobj.predict(refit, data, rows, hs, ctx), fold.name,
                                 f"{system}[{label}]", len(inner_val)))
        new = pd.concat(frames, ignore_index=True)
        old = pd.read_parquet(preds_path) if preds_path.is_file() else None
        (pd.concat([old, new], ignore_index=True) if old is not None else new).to_parquet(preds_path)
        with folds_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"fold": fold.name, "seconds": time.perf_counter() - t0,
                                "info": sysobj.fold_info(model)}, default=str) + "\n")
        summary = summarize(new).set_index(["system", "role"])["ua"]
        log(f"{name} {corpus} fold {fold.name}: " + ", ".join(f"{sys_}/{role} {100 * v:.1f}"
                                                             for (sys_, role), v in summary.items())
            + f" ({time.perf_counter() - t0:.0f} s)")
    return folder


def save_model(sysobj, model, s, folder: Path, corpus: str, fold: str, labels: list[str], *, seed: int) -> Path:
    """The fold's fitted model as a bundle folder (``folder/<corpus>-<fold>/``: its tensors and model.json)."""
    from serbench.bundles.format import write_bundle

    parts = sysobj.export(model, s)
    out = folder / f"{corpus}-{fold}"
    write_bundle(out, parts, {"model": parts.meta, "labels": list(labels), "seed": seed, "segments": s.segments},
                 overwrite=True)
    return out


def load_model(sysobj, folder: Path, corpus: str, fold: str, s, labels: list[str], *, seed: int):
    """The model :func:`save_model` stored for this fold, restored with the run's settings ``s``."""
    from serbench.bundles.format import read_files, read_record

    path = folder / f"{corpus}-{fold}"
    if not path.is_dir():
        raise SystemExit(f"{path}: no stored model for fold {fold}; run that fold with --keep-models first")
    path, held = read_record(path)
    if held.get("labels") != list(labels):
        raise SystemExit(f"{path}: trained on classes {held.get('labels')}, the corpus has {list(labels)}")
    if (held.get("seed"), held.get("segments")) != (seed, s.segments):
        raise SystemExit(f"{path}: trained with seed {held.get('seed')} at N = {held.get('segments')}; give "
                         f"--seed {held.get('seed')} --segments {held.get('segments')}")
    return sysobj.restore(read_files(path, held, sysobj), s, labels)


def _head_settings(sysobj, profile: str, overrides: dict, heads: dict[str, dict]) -> dict:
    """``{label: settings}`` of each stage-2 variant: the run's settings with the head's stage-2 overrides."""
    from serbench.errors import SerbenchError

    if heads and not hasattr(sysobj, "refit_heads"):
        raise SystemExit(f"--head: only cnn-sru has a stage 2 on CNN features, not {sysobj.name}")
    out = {}
    for label, hs in heads.items():
        other = sorted(set(hs) - set(sysobj.STAGE2_ONLY))
        if other:
            raise SystemExit(f"--head {label}: {', '.join(other)} change(s) more than stage 2; a head may set "
                             f"{', '.join(sysobj.STAGE2_ONLY)}")
        try:
            out[label] = sysobj.settings(profile, {**overrides, **hs})
        except SerbenchError as exc:
            raise SystemExit(f"--head {label}: {exc}") from None
    return out


def parse_heads(items: list[str]) -> dict[str, dict]:
    """``["res:sru_residual=true,sru_epochs=10"]`` -> ``{"res": {"sru_residual": "true", "sru_epochs": "10"}}``."""
    heads: dict[str, dict] = {}
    for item in items:
        label, sep, rest = item.partition(":")
        pairs = [p.partition("=") for p in rest.split(",") if p.strip()]
        if not sep or not label.strip() or not pairs or any(not eq for _, eq, _ in pairs):
            raise SystemExit(f"--head {item!r}: expected LABEL:KEY=VALUE[,KEY=VALUE...]")
        if label.strip() in heads:
            raise SystemExit(f"--head {label.strip()}: given twice; give each head its own label")
        heads[label.strip()] = {k.strip(): v.strip() for k, _, v in pairs}
    return heads


def top_share(preds: pd.DataFrame) -> float:
    """Mean over held-out speakers (per fold) of the share of a speaker's predictions on its most-predicted class.

    A model that has learned where each training speaker sits rather than what an emotion sounds like
    puts most of an unseen speaker on one class: this is near the largest class's share when it has
    not, and near 1 when it has.
    """
    # Per fold: a training speaker is an inner validation speaker of several folds, each time another model.
    keys = ["fold", "speaker"] if "fold" in preds else ["speaker"]
    return float(np.mean([g["predicted"].value_counts(normalize=True).iloc[0]
                          for _, g in preds.groupby(keys, sort=False)]))


MEASURES = ("ua", "top")


def summarize(preds: pd.DataFrame) -> pd.DataFrame:
    """UA and :func:`top_share` per (system, role), pooled over folds (fractions)."""
    from serbench.experiments.metrics import unweighted_accuracy

    rows = [{"system": system, "role": role, "folds": g["fold"].nunique(),
             "ua": unweighted_accuracy(g["true"], g["predicted"]), "top": top_share(g)}
            for (system, role), g in preds.groupby(["system", "role"], sort=True)]
    return pd.DataFrame(rows)


def lever_table(out: Path, measure: str = "ua") -> pd.DataFrame:
    """One row per (recipe, corpus): each system's pooled UA % (``measure="ua"``) or :func:`top_share` %
    (``"top"``) on val and test, folds, minutes per fold."""
    if measure not in MEASURES:
        raise SystemExit(f"--measure {measure!r}: choose one of {', '.join(MEASURES)}")
    rows = []
    for folder in sorted(p for p in out.iterdir() if (p / "config.json").is_file()):
        for path in sorted(folder.glob("*.parquet")):
            corpus = path.stem
            preds = pd.read_parquet(path)
            row = {"recipe": folder.name, "corpus": corpus, "folds": preds["fold"].nunique()}
            for r in summarize(preds).itertuples():
                row[f"{r.system}:{r.role}"] = round(100 * getattr(r, measure), 1)
            folds = [json.loads(line) for line in (folder / f"{corpus}-folds.jsonl").read_text().splitlines()
                     if line.strip()]
            row["min/fold"] = round(np.mean([f["seconds"] for f in folds]) / 60, 1) if folds else None
            rows.append(row)
    return pd.DataFrame(rows)


def fused_probs(cascade: np.ndarray, cnn: np.ndarray, *, sru_fuse: float) -> np.ndarray:
    """CNN+SRU's decision as ``--set sru_fuse=w`` makes it from stored probabilities: ``(1 - w)`` x the
    cascade's + ``w`` x its CNNs'."""
    return (1 - sru_fuse) * cascade + sru_fuse * cnn


def combine(out: Path, corpus: str, names: list[str], fuse: list[float] = ()) -> pd.DataFrame:
    """Pooled UA % (val, test) of each system averaged over the runs ``names`` (their probabilities), on the
    folds and systems all of them hold; ``fuse`` adds ``fuse <w>`` rows: ``w`` x cnn-sru + ``(1 - w)`` x cnn."""
    from serbench.experiments.metrics import unweighted_accuracy

    if any(not 0 <= w <= 1 for w in fuse):
        raise SystemExit("--fuse: a weight from 0 (the CNN alone) to 1 (CNN+SRU alone)")
    frames = {}
    for n in names:
        path = out / n / f"{corpus}.parquet"
        if not path.is_file():
            raise SystemExit(f"{path}: no such run; run it first or check --out and --corpus")
        frames[n] = pd.read_parquet(path)
    folds = set.intersection(*(set(f["fold"]) for f in frames.values()))
    if not folds:
        raise SystemExit(f"{', '.join(names)}: no fold in common on {corpus}")
    # Runs with other --head variants still share cnn-sru and cnn: average what all of them hold.
    systems = set.intersection(*(set(f["system"]) for f in frames.values()))
    key = ["system", "role", "fold", "utterance_id"]
    tables = [f[f["fold"].isin(folds) & f["system"].isin(systems)].sort_values(key).reset_index(drop=True)
              for f in frames.values()]
    first = tables[0]
    if any(len(t) != len(first) or not t[key].equals(first[key]) for t in tables[1:]):
        raise SystemExit(f"{', '.join(names)}: the runs scored different utterances; combine runs of one "
                         "corpus, split and N")
    scores = [c for c in first.columns if c.startswith("score_")]
    classes = np.array([c[len("score_"):] for c in scores])
    probs = np.mean([t[scores].to_numpy() for t in tables], axis=0)
    rows_of = {name: first[first["system"] == name] for name in sorted(set(first["system"]))}
    decisions = {name: (part, probs[part.index.to_numpy()]) for name, part in rows_of.items()}
    for w in fuse:
        if not {"cnn-sru", "cnn"} <= set(rows_of):
            raise SystemExit("--fuse needs cnn-sru runs (they score its CNN too)")
        (cascade, a), (cnn, b) = decisions["cnn-sru"], decisions["cnn"]
        if not cascade[key[1:]].reset_index(drop=True).equals(cnn[key[1:]].reset_index(drop=True)):
            raise SystemExit("--fuse: the runs' cnn-sru and cnn rows score different utterances")
        decisions[f"fuse {w:g}"] = (cascade, fused_probs(a, b, sru_fuse=1 - w))
    rows = []
    for name, (part, p) in decisions.items():
        row = {"system": name, "runs": len(names), "folds": len(folds)}
        for role in (VAL, TEST):
            m = (part["role"] == role).to_numpy()
            if m.any():
                ua = unweighted_accuracy(part["true"].to_numpy()[m], classes[p[m].argmax(1)])
                row[role] = round(100 * ua, 1)
        rows.append(row)
    return pd.DataFrame(rows)


def to_store(out: Path, corpus: str, name: str, runs: Path, *, segments: int, sru_fuse: float = 0.0) -> list[Path]:
    """Write an ``--outer-only`` cnn-sru run's test predictions into the results store at ``runs`` as the
    runs ``serbench deep`` would have stored (``cnn-sru-N*`` and ``cnn-N*``, same CNNs), so that ``serbench
    tables`` and ``report`` give Tables III-IV with their tests. ``sru_fuse`` > 0 stores CNN+SRU's decision
    as that setting makes it, ``(1 - w)`` x the cascade's + ``w`` x its CNNs' probabilities; the record says so."""
    from serbench.experiments.store import RunStore
    from serbench.systems import registry

    folder = out / name
    path, cfg_path = folder / f"{corpus}.parquet", folder / "config.json"
    if not path.is_file() or not cfg_path.is_file():
        raise SystemExit(f"{path}: no such run; run it first or check --out and --corpus")
    held = json.loads(cfg_path.read_text())
    if held.get("system") != "cnn-sru" or not held.get("outer_only") or held.get("heads"):
        raise SystemExit(f"{folder}: only a cnn-sru run with --outer-only and no --head is the full protocol")
    if not 0 <= sru_fuse <= 1:
        raise SystemExit("--sru-fuse: a weight from 0 (the cascade alone) to 1 (its CNNs alone)")
    for line in (folder / f"{corpus}-folds.jsonl").read_text().splitlines():
        t = json.loads(line)["info"]["timings"]
        if t.get("cnn_segments") and t["cnn_segments"] != t["n_fit"] * t["cnn_epochs"] * segments:
            raise SystemExit(f"--segments {segments}: {name} trained on {corpus} at another N")
    preds = pd.read_parquet(path)
    key = ["fold", "utterance_id"]
    parts = {m: g.drop(columns=["system", "role"]).sort_values(key).reset_index(drop=True)
             for m, g in preds.groupby("system")}
    scores = [c for c in preds.columns if c.startswith("score_")]
    classes = np.array([c[len("score_"):] for c in scores])
    if set(parts) != {"cnn-sru", "cnn"} or not parts["cnn-sru"][key].equals(parts["cnn"][key]):
        raise SystemExit(f"{path}: expected the cnn-sru and cnn rows of one run on the same utterances")
    cascade, cnn = parts["cnn-sru"], parts["cnn"]
    fused = cascade.copy()
    fused[scores] = fused_probs(cascade[scores].to_numpy(), cnn[scores].to_numpy(), sru_fuse=sru_fuse)
    fused["predicted"] = classes[fused[scores].to_numpy().argmax(1)]
    store, stored = RunStore(runs), []
    for model, frame in (("cnn-sru", fused), ("cnn", cnn)):
        sets = {**held.get("sets", {}), "segments": segments, **({"sru_fuse": sru_fuse} if model == "cnn-sru" else {})}
        sysobj = registry.get(model)
        s = sysobj.settings(held.get("profile"), sets)
        config = {"system_type": model, "kind": "deep", "settings": s.as_dict(), "profile": s.profile,
                  "corpus": corpus, "seed": held.get("seed", 0), "speaker_norm": False, "protocol": "loso",
                  **sysobj.describe(s), "from_recipe_run": str(folder)}
        command = (f"python -m benchmarks.recipe_levers store --out {out} --corpus {corpus} --segments {segments} "
                   f"--sru-fuse {sru_fuse:g} --runs {runs} {name}")
        writer = store.start_run(corpus, sysobj.stored_name(s), config, list(classes), command, kind="deep",
                                 seed=held.get("seed", 0))
        for fold, g in frame.groupby("fold"):
            writer.write_fold(str(fold), g)
        stored.append(writer.finish())
    return stored


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--name", required=True)
    r.add_argument("--system", default="cnn-sru")
    r.add_argument("--corpus", required=True)
    r.add_argument("--root", required=True)
    r.add_argument("--segments", type=int)
    r.add_argument("--set", action="append", default=[], dest="sets", help="KEY=VALUE setting override")
    r.add_argument("--profile", default="fast")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--max-folds", type=int)
    r.add_argument("--folds", help="comma-separated outer fold names (default: all); two processes with "
                                   "different --name and --folds split one recipe's folds")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--cache")
    r.add_argument("--outer-only", action="store_true",
                   help="no inner split: train on the whole training fold, score the test speaker only")
    r.add_argument("--out", type=Path, default=DEFAULT_OUT)
    r.add_argument("--head", action="append", default=[], dest="heads",
                   help="LABEL:KEY=VALUE[,...]: stage 2 trained again on the same CNNs with these stage-2 "
                        "settings, scored as cnn-sru[LABEL]")
    r.add_argument("--keep-models", action="store_true",
                   help="store each fold's fitted model under <out>/<name>/models/ for --models-from")
    r.add_argument("--models-from", metavar="RUN",
                   help="restore each fold's model from RUN (stored with --keep-models) instead of training it")
    t = sub.add_parser("table")
    t.add_argument("--out", type=Path, default=DEFAULT_OUT)
    t.add_argument("--measure", choices=MEASURES, default="ua",
                   help="ua: pooled UA %%; top: mean share %% of a held-out speaker's predictions on its "
                        "most-predicted class (collapse onto one class per speaker)")
    c = sub.add_parser("combine", help="UA of the mean of several runs' probabilities; --fuse w: w x CNN+SRU "
                                       "+ (1 - w) x CNN")
    c.add_argument("names", nargs="+")
    c.add_argument("--corpus", required=True)
    c.add_argument("--fuse", type=float, action="append", default=[])
    c.add_argument("--out", type=Path, default=DEFAULT_OUT)
    st = sub.add_parser("store", help="an --outer-only cnn-sru run's test predictions as serbench runs "
                                      "(cnn-sru-N*, cnn-N*) in a results store, for serbench tables")
    st.add_argument("name")
    st.add_argument("--corpus", required=True)
    st.add_argument("--segments", type=int, required=True)
    st.add_argument("--runs", type=Path, required=True)
    st.add_argument("--sru-fuse", type=float, default=0.0,
                    help="CNN+SRU's decision as --set sru_fuse=w makes it (default 0: the cascade alone)")
    st.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = p.parse_args(argv)
    if a.cmd == "store":
        for path in to_store(a.out, a.corpus, a.name, a.runs, segments=a.segments, sru_fuse=a.sru_fuse):
            print(path)
        return
    if a.cmd == "combine":
        print(combine(a.out, a.corpus, a.names, a.fuse).to_string(index=False))
        return
    if a.cmd == "table":
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(lever_table(a.out, a.measure).to_string(index=False))
        return
    sets = {}
    for item in a.sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        sets[key.strip()] = value.strip()
    folds = [f.strip() for f in a.folds.split(",") if f.strip()] if a.folds else None
    run(a.name, a.system, a.corpus, a.root, segments=a.segments, sets=sets, out=a.out, profile=a.profile,
        seed=a.seed, max_folds=a.max_folds, folds=folds, threads=a.threads, cache=a.cache, outer_only=a.outer_only,
        heads=parse_heads(a.heads), keep_models=a.keep_models, models_from=a.models_from,
        log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    sys.exit(main())
