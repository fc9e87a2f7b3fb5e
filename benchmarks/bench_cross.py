"""Cross-corpus matrix: a 3-corpus IS10 SVM matrix from a warm cache, sequential vs ``--workers 2``.

Corpora: CASIA (``SERBENCH_BENCH_CASIA``, default ``../shared/corpora/casia``), EMO-DB cut to 2 s
(``SERBENCH_BENCH_EMODB``, default ``../shared/corpora/emodb-2s``) and the demo corpus
(``SERBENCH_BENCH_DEMO``, else synthesized into a temporary folder with ``serbench demo-corpus``'s
function when eSpeak NG is installed; without it the matrix has two corpora and the result says so).
The features are extracted into the cache first (not timed: "warm cache"); each timed call plans and
runs every cell (6 off-diagonal pairs + 3 in-corpus LOSO runs on the shared emotions) into a fresh
store with ``force``: ``sequential`` (in this process) and ``workers_2`` (two local processes, one
thread each). Both modes' predictions are checked equal. Skipped when CASIA or EMO-DB is absent.

By hand: ``python -m benchmarks.bench_cross [--quick]``.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = {"sequential": {}, "workers_2": {"workers": 2, "threads": 1}}


def _corpora(tmp: Path) -> tuple[dict[str, Path], dict]:
    notes: dict = {}
    roots = {"casia": Path(os.environ.get("SERBENCH_BENCH_CASIA", REPO.parent / "shared" / "corpora" / "casia")),
             "emodb": Path(os.environ.get("SERBENCH_BENCH_EMODB", REPO.parent / "shared" / "corpora" / "emodb-2s"))}
    demo = os.environ.get("SERBENCH_BENCH_DEMO")
    if demo:
        roots["demo"] = Path(demo)
    else:
        try:
            from serbench.corpora.demo_synth import synthesize_demo_corpus

            synthesize_demo_corpus(tmp / "demo")
            roots["demo"] = tmp / "demo"
        except Exception as exc:   # no eSpeak NG here: the matrix goes on with the real corpora
            notes["demo"] = f"absent ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
    return roots, notes


def _matrix(roots: dict[str, Path], cache: Path, mode: dict) -> tuple[float, dict, int]:
    from serbench.experiments.store import RunStore, load_run
    from serbench.features import CorpusHandle
    from serbench.systems.cross import plan_cross, run_cross

    with tempfile.TemporaryDirectory(prefix="serbench-bench-cross-") as runs:
        t0 = time.perf_counter()
        plan = plan_cross([CorpusHandle.of(n, r, cache=cache) for n, r in roots.items()],
                          systems=[("svm-linear", {"feature": "IS10"})])
        out = run_cross(plan, runs=runs, force=True, log=lambda _m: None, **mode)
        wall = time.perf_counter() - t0
        bad = [o for o in out if o.action != "ran"]
        if bad:
            raise RuntimeError(f"cross matrix failed: {bad}")
        preds = {}
        for path in RunStore(runs).run_dirs():
            run = load_run(path)
            preds[f"{run.corpus}/{run.system}"] = (run.predictions.sort_values("utterance_id")["predicted"].tolist(),
                                                   run.ua)
        return wall, preds, len(out)


def run(out: Path, quick: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="serbench-bench-cross-data-") as tmp:
        roots, notes = _corpora(Path(tmp))
        absent = [n for n in ("casia", "emodb") if not roots[n].is_dir()]
        if absent:
            return {"skipped": f"corpora absent: {', '.join(f'{n} ({roots[n]})' for n in absent)}"}
        from serbench.features import extract

        cache = Path(os.environ.get("SERBENCH_CACHE") or Path(tmp) / "cache")
        t0 = time.perf_counter()
        for name, root in roots.items():
            extract(name, root, ["IS10"], cache=cache, progress=False)
        warm_s = time.perf_counter() - t0
        result: dict = {"corpora": {n: str(r) for n, r in roots.items()}, "notes": notes, "feature": "IS10",
                        "system": "svm-linear", "extract_s (not timed below)": warm_s, "modes": {}}
        reference = None
        for name, mode in MODES.items():
            wall, preds, n_runs = _matrix(roots, cache, mode)
            result["modes"][name] = {"wall_s": wall, "runs": n_runs}
            if reference is None:
                reference = preds
                result["ua"] = {k: v[1] for k, v in preds.items()}
            else:
                result["modes"][name]["same_predictions_as_sequential"] = (
                    {k: v[0] for k, v in preds.items()} == {k: v[0] for k, v in reference.items()})
        seq, par = result["modes"]["sequential"]["wall_s"], result["modes"]["workers_2"]["wall_s"]
        result["speedup_workers_2"] = seq / par if par else None
    return result


if __name__ == "__main__":
    res = run(REPO / "bench-results", "--quick" in sys.argv)
    print(json.dumps(res, indent=2))
