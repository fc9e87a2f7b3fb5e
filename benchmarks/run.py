"""Run the benchmarks and write JSON results: ``make bench`` or ``python -m benchmarks.run``.

Each ``benchmarks/bench_*.py`` exposes ``run(out: Path, quick: bool) -> dict``. Timings
inside one benchmark are taken side by side in the same run; compare ratios and
medians, not absolute seconds across machines.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def cpu_model() -> str:
    """The CPU's model name: deep training speed differs severalfold between CPUs of one core count."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def environment() -> dict:
    import numpy
    import torch

    import serbench

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE.parent, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "serbench": serbench.__version__, "git_commit": commit, "python": platform.python_version(),
        "machine": platform.machine(), "cpus": os.cpu_count(), "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "numpy": numpy.__version__,
        "torch": torch.__version__, "cuda": torch.cuda.is_available(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--quick", action="store_true", help="one repetition, small inputs")
    parser.add_argument("--only", nargs="*", default=None, help="bench names, e.g. bench_extract")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    names = args.only or discover()
    results: dict = {"environment": environment(), "benchmarks": {}}
    failed = 0
    for name in names:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            mod = importlib.import_module(f"benchmarks.{name}")
            res = mod.run(args.out, quick=args.quick)
            status = "ok"
        except Exception:  # one broken benchmark must not hide the others' results
            res = {"error": traceback.format_exc()}
            status = "error"
            failed += 1
        res = {"status": status, "wall_s": time.perf_counter() - started, **res}
        results["benchmarks"][name] = res
        (args.out / f"{name}.json").write_text(json.dumps(res, indent=2, default=str))
        print(json.dumps(res, indent=2, default=str), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"results in {args.out}/results.json")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
