"""CLI responsiveness: how long a user waits for commands that do little work.

Side by side in one run, each command a fresh ``serbench`` process (start-up and imports
are the cost being measured), repeats interleaved round-robin so drifting machine load
hits every command alike; medians are reported:

(a) ``serbench --help`` and ``serbench <cmd> --help`` for every command and subcommand;
(b) a fully cached ``serbench extract`` on CASIA (``$SERBENCH_BENCH_CASIA``, default
    ``../shared/corpora/casia``; skipped when absent) with the default feature sets,
    into a cache under a temp folder that this benchmark fills first (not timed);
(c) ``serbench runs`` on a small results store: one linear-SVM MFCC baseline on a
    synthesized 4-speaker tone corpus, made first (not timed).

Targets on a 2-core machine: help <= 0.5 s, cached extract <= 2 s, runs <= 1.5 s.
Repeats: 5 (quick: 1, and the cached extract on CASIA's 'angry' files only, 200).

By hand: ``python -m benchmarks.bench_cli [--quick]``.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = "SERBENCH_BENCH_CASIA"
TARGETS = {"help_s": 0.5, "cached_extract_s": 2.0, "runs_s": 1.5}
HEAVY = ("torch", "sklearn", "librosa", "opensmile", "numba")


def _casia() -> Path:
    return Path(os.environ.get(ENV) or REPO.parent / "shared" / "corpora" / "casia")


def _serbench() -> list[str]:
    script = Path(sys.executable).parent / "serbench"
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from serbench.cli import main; main()"]


def _commands() -> list[list[str]]:
    """Every command and subcommand path, e.g. ["extract"], ["cache", "info"]."""
    import click

    from serbench.cli import cli

    out: list[list[str]] = []
    for name, cmd in sorted(cli.commands.items()):
        out.append([name])
        if isinstance(cmd, click.Group):
            out += [[name, sub] for sub in sorted(cmd.commands)]
    return out


def _tone_corpus(root: Path) -> Path:
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    for s in range(4):
        for e, emotion in enumerate(("angry", "sad")):
            for i in range(3):
                path = root / f"spk{s}" / emotion / f"t{i}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                f0 = 140 + 30 * s + 60 * e + 5 * i
                x = (0.2 + 0.2 * e) * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal(t.size)
                sf.write(path, x, 16000, subtype="PCM_16")
    return root


def _run(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(_serbench() + args, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"serbench {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return wall


def _heavy_imports(args: list[str], env: dict) -> list[str]:
    """Heavy modules a command imports (run once in-process of a fresh interpreter)."""
    code = ("import sys, json\nfrom serbench.cli import cli\n"
            f"try:\n    cli({args!r})\nexcept SystemExit:\n    pass\n"
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return ["<unknown>"]


def run(out: Path, quick: bool = False) -> dict:
    repeats = 1 if quick else 5
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    loadavg = [os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="serbench-bench-cli-") as tmp:
        tmp = Path(tmp)
        env["SERBENCH_CACHE"], env["SERBENCH_RUNS"] = str(tmp / "cache"), str(tmp / "runs")
        cases: dict[str, list[str]] = {"--help": ["--help"]}
        cases.update({" ".join(c) + " --help": [*c, "--help"] for c in _commands()})

        tones = _tone_corpus(tmp / "tones")
        _run(["extract", "--corpus", "demo", "--root", str(tones), "--features", "MFCC", "--no-progress"], env)
        _run(["baseline", "--corpus", "demo", "--root", str(tones), "--feature", "MFCC"], env)
        cases["runs"] = ["runs"]

        casia = _casia()
        extract_note = None
        if casia.is_dir():
            extract_args = ["extract", "--corpus", "casia", "--root", str(casia), "--no-progress",
                            "--cache", str(tmp / "casia-cache")]
            if quick:
                extract_args += ["--emotions", "angry"]
            fill_started = time.perf_counter()
            _run(extract_args + ["--jobs", str(max(1, min(2, os.cpu_count() or 1)))], env)
            extract_note = f"cache filled first in {time.perf_counter() - fill_started:.1f} s (not timed)"
            cases["extract (fully cached, CASIA)"] = extract_args
        else:
            extract_note = f"CASIA not found at {casia}; set {ENV} to its folder"

        times: dict[str, list[float]] = {k: [] for k in cases}
        for i in range(repeats):
            for name, args in cases.items():
                times[name].append(_run(args, env))
            loadavg.append(os.getloadavg())
            print(f"[bench_cli] repeat {i + 1}/{repeats}", file=sys.stderr, flush=True)
        heavy = {name: _heavy_imports(args, env) for name, args in cases.items()
                 if name in ("--help", "runs", "extract (fully cached, CASIA)")}

    med = {k: statistics.median(v) for k, v in times.items()}
    help_meds = {k: v for k, v in med.items() if k.endswith("--help")}
    extract_med = med.get("extract (fully cached, CASIA)")
    met = {
        "help_s": max(help_meds.values()) <= TARGETS["help_s"],
        "cached_extract_s": None if extract_med is None else extract_med <= TARGETS["cached_extract_s"],
        "runs_s": med["runs"] <= TARGETS["runs_s"],
    }
    return {
        "quick": quick, "repeats": repeats, "cpus": os.cpu_count(), "loadavg_1_5_15min": loadavg,
        "command": " ".join(_serbench()), "times_s": times, "median_s": med,
        "slowest_help": max(help_meds, key=help_meds.get), "slowest_help_s": max(help_meds.values()),
        "cached_extract": extract_note, "heavy_imports": heavy, "targets": TARGETS, "met": met,
    }


if __name__ == "__main__":
    print(json.dumps(run(REPO / "bench-results", quick="--quick" in sys.argv), indent=2, default=str))
