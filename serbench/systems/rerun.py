"""Re-run a stored run from its record alone and say whether the predictions came out the same."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from serbench.errors import SerbenchError
from serbench.experiments.store import RUN_JSON, RunResult, RunStore, load_run
from serbench.systems import registry
from serbench.systems.identity import identity_of

Log = Callable[[str], None]


class RerunError(SerbenchError):
    """A run that cannot be run again from its record."""


@dataclass
class RerunReport:
    """The original run, the new one, and how their predictions compare."""

    original: RunResult
    new: RunResult
    identical_labels: bool
    identical_scores: bool
    max_score_diff: float
    n_changed: int
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = f"rerun of {self.original.system}/{self.original.run_id} -> {self.new.path}"
        if self.identical_labels and self.identical_scores:
            verdict = "predictions identical (labels and every score, bit for bit)"
        elif self.identical_labels:
            verdict = f"predicted labels identical; scores differ by at most {self.max_score_diff:.3g}"
        else:
            verdict = (f"{self.n_changed} predicted label(s) differ; scores by at most {self.max_score_diff:.3g} "
                       f"(UA {100 * self.original.ua:.1f} -> {100 * self.new.ua:.1f})")
        return "\n".join([head, f"  {verdict}"] + [f"  note: {n}" for n in self.notes])


def find_run(ref: str | Path, runs: str | Path | None = None) -> Path:
    """A run folder from a path or a run id in the store."""
    p = Path(ref)
    if (p / RUN_JSON).is_file():
        return p
    store = RunStore(runs)
    hits = [d for d in store.run_dirs() if d.name == str(ref)]
    if not hits:
        raise RerunError(f"{ref}: no such run folder, and no run with that id under {store.root}; give a run folder "
                         "or an id from `serbench runs` (with --runs if the store is elsewhere)")
    if len(hits) > 1:
        raise RerunError(f"{ref}: {len(hits)} runs have that id ({', '.join(map(str, hits))}); give the folder")
    return hits[0]


def rerun(ref: str | Path, *, runs: str | Path | None = None, root: str | Path | None = None,
          cache: str | Path | None = None, jobs: int = 1, threads: int | None = None,
          log: Log | None = None) -> RerunReport:
    """Run the stored run ``ref`` again from its record into a new run folder of the same store; compare.

    ``root`` replaces the corpus folder the record names (a moved corpus). The new run gets the
    record's system, settings, protocol, emotions and seed; its identity must equal the original's.
    """
    from serbench.experiments.harness import run_plan
    from serbench.systems.run import prepare

    say = log or (lambda _m: None)
    path = find_run(ref, runs)
    original = load_run(path)
    if original.status != "complete":
        raise RerunError(f"{path}: the run is {original.status}, not complete; finish it first (serbench run/deep "
                         "resume it)")
    cfg = original.config
    typ = cfg.get("system_type")
    if not typ:
        raise RerunError(f"{path / RUN_JSON}: the record names no system_type (written by an old serbench); run it "
                         "again with its command: " + str(original.record.get("command") or "?"))
    system = registry.get(str(typ))
    fields = system.settings_class.fields()
    # Settings removed since the run: dropped at their neutral value, else refused (as for model bundles).
    recorded = system.settings_class.drop_retired(dict(cfg.get("settings") or {}), where=str(path / RUN_JSON))
    notes = []
    dropped = sorted(k for k in recorded if k not in fields)
    if dropped:
        notes.append(f"settings this version no longer has were dropped: {', '.join(dropped)}")
    overrides = {k: v for k, v in recorded.items() if k in fields and k != "profile"}
    corpus_root = root or cfg.get("root")
    if not corpus_root or not Path(str(corpus_root)).is_dir():
        raise RerunError(f"{path / RUN_JSON}: corpus folder {corpus_root!r} not found; give --root DIR")
    store_root = path.parent.parent.parent
    plan = prepare(system.name, original.corpus, corpus_root, profile=recorded.get("profile"), overrides=overrides,
                   protocol=cfg.get("protocol"), seed=int(cfg.get("seed") or 0), cache=cache, jobs=jobs,
                   emotions=cfg.get("emotions"), device=str(cfg.get("device") or "cpu") if system.kind == "deep"
                   else "auto", threads=threads, log=say)
    before = identity_of(cfg, name=original.system)
    after = plan.config["identity"]["hash"]
    if before is not None and before.hash != after:
        notes.append(f"identity {before.hash} -> {after}: this version resolves the record's settings differently")
    plan.extra["rerun_of"] = {"run_id": original.run_id, "path": str(path)}
    new = run_plan(plan, store=RunStore(store_root), resume=False, log=say)
    return compare(original, new, notes)


def compare(a: RunResult, b: RunResult, notes: list[str] | None = None) -> RerunReport:
    """How the predictions of runs ``a`` and ``b`` differ, utterance by utterance."""
    pa = a.predictions.set_index("utterance_id").sort_index()
    pb = b.predictions.set_index("utterance_id").sort_index()
    notes = list(notes or [])
    if not pa.index.equals(pb.index):
        notes.append(f"the runs predicted different utterances ({len(pa)} vs {len(pb)})")
        common = pa.index.intersection(pb.index)
        pa, pb = pa.loc[common], pb.loc[common]
    changed = int((pa["predicted"].astype(str) != pb["predicted"].astype(str)).sum())
    cols = [c for c in pa.columns if c.startswith("score_") and c in pb.columns]
    if cols:
        xa = pa[cols].to_numpy(dtype=float)
        xb = pb[cols].to_numpy(dtype=float)
        same = bool(np.array_equal(xa, xb, equal_nan=True))
        diff = float(np.nanmax(np.abs(xa - xb))) if xa.size else 0.0
    else:
        same, diff = True, 0.0
    return RerunReport(a, b, changed == 0, same and changed == 0, diff, changed, notes)


__all__ = ["rerun", "compare", "find_run", "RerunReport", "RerunError"]
