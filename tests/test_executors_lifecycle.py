"""Process lifecycle of the executors, as rules: nothing outlives its client, worker counts are capped,
scheduler addresses are checked before any work, a lost worker costs only its own task and is reported."""
from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest

import serbench.executors as executors
from serbench.executors import (DaskExecutor, ExecutorError, LocalProcesses, WorkerLostError, check_scheduler,
                                make_executor, remove_stale_shared)

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- tasks (module level: workers import them)

def note_and_sleep(shared, folder, seconds):
    """Leave a marker naming this process, sleep, answer with the process id."""
    Path(folder, f"ran-{os.getpid()}-{time.time_ns()}").touch()
    time.sleep(seconds)
    return os.getpid()


def die_first_time(shared, folder):
    """Kill this worker the first time (a marker says it happened); answer the second time."""
    marker = Path(folder, "died")
    if not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return "second try"


def always_die(shared):
    os.kill(os.getpid(), signal.SIGKILL)


def _gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _wait_gone(procs, seconds: float) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in procs if not _gone(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return [p for p in procs if not _gone(p)]


def _semaphores(procs) -> set[str]:
    """Names of the POSIX semaphores (/dev/shm/sem.*) these processes have mapped."""
    out = set()
    for p in procs:
        try:
            out |= {m.path for m in p.memory_maps() if "/dev/shm/sem." in m.path}
        except psutil.Error:
            pass
    return out


# ---------------------------------------------------------------- 1. nothing outlives its client

CLIENT = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
sys.path.insert(0, {here!r})
import helpers
from serbench.executors import DaskExecutor, LocalProcesses

if __name__ == "__main__":
    folder = sys.argv[1]
    ex = {make}
    token = ex.share(helpers.Blob())
    futures = [ex.submit(helpers.sleep_long, token, folder) for _ in range(4)]
    while len(list(Path(folder).glob("started-*"))) < 2:
        time.sleep(0.02)
    print("READY", getattr(token, "path", ""), flush=True)
    for f in ex.as_completed(futures):
        f.result()
"""

HELPERS = """
import os, time
from pathlib import Path

class Blob:
    def save_shared(self, folder):
        os.makedirs(folder)
        Path(folder, "data.txt").write_text("1")

    @classmethod
    def load_shared(cls, folder):
        return cls()

def sleep_long(shared, folder):
    Path(folder, f"started-{os.getpid()}").touch()
    time.sleep(120)
"""


def _start_client(tmp_path: Path, make: str) -> tuple[subprocess.Popen, str]:
    (tmp_path / "helpers.py").write_text(HELPERS)
    script = tmp_path / "client.py"
    script.write_text(CLIENT.format(repo=str(REPO), here=str(tmp_path), make=make))
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    proc = subprocess.Popen([sys.executable, str(script), str(markers)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        pytest.fail(f"the client did not start its tasks: {line!r} {proc.stderr.read()}")
    return proc, line.split(" ", 1)[1].strip()


def test_workers_of_a_killed_client_exit_at_once_and_remove_its_shared_folder(tmp_path):
    """kill -9 of a client running --workers 2: its workers, fork server and shared folder are gone in seconds."""
    proc, shared = _start_client(tmp_path, "LocalProcesses(2, threads=1)")
    client = psutil.Process(proc.pid)
    tree = client.children(recursive=True)
    started = {int(m.name.split("-")[1]) for m in (tmp_path / "markers").glob("started-*")}
    workers = [p for p in tree if p.pid in started]
    assert len(workers) == 2 and os.path.isdir(os.path.dirname(shared))
    assert len(tree) <= 4      # 2 workers, the fork server and multiprocessing's resource tracker; 4 tasks
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    alive = _wait_gone(tree, 10.0)
    assert not alive, [(p.pid, " ".join(p.cmdline())[:80]) for p in alive]
    assert not os.path.exists(os.path.dirname(shared))   # removed by the workers on their way out


@pytest.mark.slow
def test_a_killed_local_cluster_client_leaves_no_process_and_no_semaphore(tmp_path):
    proc, _ = _start_client(tmp_path, 'DaskExecutor("local:2", threads=1)')
    tree = psutil.Process(proc.pid).children(recursive=True)
    sems = _semaphores([psutil.Process(proc.pid), *tree])
    assert sems, "a LocalCluster's worker processes use multiprocessing queues (semaphores)"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not _wait_gone(tree, 15.0)
    assert not [s for s in sems if os.path.exists(s)]


@pytest.mark.slow
def test_a_closed_local_cluster_leaves_no_semaphore_and_grows_only_with_the_tasks(tmp_path):
    seen: list[str] = []
    with DaskExecutor("local:50", threads=1, log=seen.append) as ex:
        token = ex.share(None)
        futures = [ex.submit(note_and_sleep, token, str(tmp_path), 0.5) for _ in range(3)]
        assert len({f.result() for f in ex.as_completed(futures)}) <= 3
        assert len(ex.client.scheduler_info()["workers"]) <= 3          # not 50
        me = psutil.Process()
        sems = _semaphores([me, *me.children(recursive=True)])
    gc.collect()
    assert sems and not [s for s in sems if os.path.exists(s)]
    if (os.cpu_count() or 1) < 50:
        assert len(seen) == 1 and "local:50" in seen[0] and "core" in seen[0]


def test_closing_stops_the_workers_and_removes_the_shared_folder(tmp_path):
    ex = LocalProcesses(2, threads=1)

    class Box:
        pass

    token = ex.share(Box())                 # not shareable as a folder: travels with each task
    assert isinstance(token, Box)
    fut = ex.submit(note_and_sleep, None, str(tmp_path), 0.0)
    pid = fut.result()
    procs = [psutil.Process(p) for p in ex.pids()]
    assert pid in ex.pids()
    ex._tmp = executors._make_shared_folder()   # as share() of a dataset would
    folder = ex._tmp
    ex.close()
    assert not _wait_gone(procs, 3.0) and not os.path.exists(folder)
    with pytest.raises(ExecutorError, match="closed"):
        ex.submit(note_and_sleep, None, str(tmp_path), 0.0)


def test_stale_shared_folders_are_removed_and_live_ones_kept(tmp_path, monkeypatch):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    tag = executors._HOST_TAG
    try:
        stale = tmp_path / f"serbench-shared-{dead.pid}-{tag}-abc123"
        live = tmp_path / f"serbench-shared-{sleeper.pid}-{tag}-def456"
        mine = tmp_path / f"serbench-shared-{os.getpid()}-{tag}-ghi789"
        other_host = tmp_path / f"serbench-shared-{dead.pid}-{'0' * 8 if tag != '0' * 8 else '1' * 8}-jkl"
        unrelated = tmp_path / f"serbench-sharedX-{dead.pid}-{tag}-mno"
        for d in (stale, live, mine, other_host, unrelated):
            (d / "shared-0").mkdir(parents=True)
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "keep.txt").write_text("keep")
        link = tmp_path / f"serbench-shared-{dead.pid}-{tag}-link"
        link.symlink_to(outside, target_is_directory=True)

        assert remove_stale_shared(str(tmp_path)) == [str(stale)]
        assert not stale.exists()
        assert all(d.exists() for d in (live, mine, other_host, unrelated, link))
        assert (outside / "keep.txt").exists()

        # ...and a new executor does it at start
        stale.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        LocalProcesses(1).close()
        assert not stale.exists() and live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_shared_folders_are_named_after_their_owner_and_removed_at_exit(tmp_path):
    code = textwrap.dedent(f"""
        import sys, tempfile
        sys.path.insert(0, {str(REPO)!r})
        tempfile.tempdir = {str(tmp_path)!r}
        from serbench.executors import LocalProcesses
        ex = LocalProcesses(1)
        class Blob:
            def save_shared(self, folder):
                import os; os.makedirs(folder)
            @classmethod
            def load_shared(cls, folder):
                return cls()
        print(ex.share(Blob()).path)
        # no close(): the exit handler removes the folder
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    folder = Path(out.stdout.strip()).parent
    assert executors._SHARED_NAME.fullmatch(folder.name) and f"-{executors._HOST_TAG}-" in folder.name
    assert folder.parent == tmp_path
    assert not folder.exists()


# ---------------------------------------------------------------- 2. worker counts are capped

def test_workers_are_capped_at_the_tasks_and_more_than_the_cores_is_warned(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    seen: list[str] = []
    with LocalProcesses(50, threads=1, log=seen.append) as ex:
        futures = [ex.submit(note_and_sleep, None, str(tmp_path), 0.3) for _ in range(2)]
        time.sleep(0.1)
        assert len(ex.pids()) <= 2
        pids = {f.result() for f in ex.as_completed(futures)}
        assert ex.started == 2 and len(pids) == 2
        # later tasks reuse the idle workers
        assert {f.result() for f in ex.as_completed([ex.submit(note_and_sleep, None, str(tmp_path), 0.0)])} <= pids
        assert ex.started == 2
    assert len(seen) == 1 and "--workers 50" in seen[0] and "2 CPU core" in seen[0] and "\n" not in seen[0]
    seen.clear()
    LocalProcesses(2, log=seen.append).close()
    assert seen == []       # as many workers as cores: nothing to say


# ---------------------------------------------------------------- 3. scheduler addresses

ACCEPTED = "tcp://HOST:PORT"


@pytest.mark.parametrize("address, why", [
    ("foo://somewhere:8786", "unknown protocol 'foo://'"),
    ("tcp://", "no host"),
    ("tcp://:8786", "not an address"),
    ("tls://host:99999", "port 99999"),
    ("hostname", "not an address"),
    ("local:0", "N >= 1"),
    ("local:-3", "N >= 1"),
    ("local:abc", "whole number"),
    ("local:", "whole number"),
    ("", "empty"),
])
def test_a_bad_scheduler_address_is_one_line_naming_the_option_and_the_accepted_forms(address, why, monkeypatch):
    monkeypatch.delenv("SERBENCH_SCHEDULER", raising=False)
    for call in (lambda: check_scheduler(address), lambda: DaskExecutor(address)):
        with pytest.raises(ExecutorError) as err:
            call()
        msg = str(err.value)
        assert msg.startswith("--scheduler") and why in msg and ACCEPTED in msg and "local:N" in msg
        assert "\n" not in msg
    if address:
        with pytest.raises(ExecutorError, match="^--scheduler"):
            make_executor(scheduler=address)


@pytest.mark.parametrize("address, normal", [
    ("tcp://10.0.0.1:8786", "tcp://10.0.0.1:8786"), ("tls://sched.example.org:8786", "tls://sched.example.org:8786"),
    ("tcp://[::1]:8786", "tcp://[::1]:8786"), ("tcp://host", "tcp://host"), ("localhost:8786", "localhost:8786"),
    (" local:3 ", "local:3"),
])
def test_good_scheduler_addresses_pass(address, normal):
    assert check_scheduler(address) == normal


def test_the_environment_is_named_when_it_gives_the_address(monkeypatch):
    monkeypatch.setenv("SERBENCH_SCHEDULER", "tcp://")
    with pytest.raises(ExecutorError, match=r"^\$SERBENCH_SCHEDULER 'tcp://': no host"):
        make_executor()


def test_the_cli_refuses_a_bad_address_before_any_work(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from serbench.cli import cli

    monkeypatch.delenv("SERBENCH_SCHEDULER", raising=False)
    for address in ("foo://x", "tcp://", "local:0", "local:abc"):
        out = CliRunner().invoke(cli, ["baseline", "--corpus", "demo", "--root", str(tmp_path / "nowhere"),
                                       "--feature", "MFCC", "--runs", str(tmp_path / "runs"), "--scheduler", address])
        lines = [line for line in out.output.splitlines() if line.strip()]
        assert out.exit_code == 2 and len(lines) == 1 and "--scheduler" in lines[0] and ACCEPTED in lines[0], out.output
        assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- 4. a lost worker

def test_a_lost_worker_reruns_only_its_task_and_is_reported(tmp_path):
    lost: list[tuple[object, str]] = []
    (tmp_path / "a").mkdir()
    with LocalProcesses(2, threads=1) as ex:
        ex.on_lost = lambda fut, what: lost.append((fut, what))
        healthy = ex.submit(note_and_sleep, None, str(tmp_path / "a"), 1.5)
        doomed = ex.submit(die_first_time, None, str(tmp_path))
        results = {id(f): f.result() for f in ex.as_completed([healthy, doomed])}
    assert results[id(doomed)] == "second try" and ex.restarts == 1
    assert len(list((tmp_path / "a").glob("ran-*"))) == 1      # the healthy task ran once, undisturbed
    assert [f for f, _ in lost] == [doomed] and "SIGKILL" in lost[0][1] and "worker process" in lost[0][1]


def test_a_task_that_keeps_killing_its_worker_fails_with_a_clear_error():
    with LocalProcesses(1, threads=1, max_restarts=1, log=lambda _m: None) as ex:
        fut = ex.submit(always_die, None)
        with pytest.raises(WorkerLostError, match="died 2 times.*re-run the command to resume"):
            next(iter(ex.as_completed([fut]))).result()


def test_the_harness_logs_and_records_a_lost_worker(toy_systems, features, tmp_path):
    from serbench.systems.run import run_system

    X, m, load = features()
    said: list[str] = []
    with LocalProcesses(2, threads=1) as ex:
        res = run_system("toy-killer", "demo", "/c", overrides={"feature": "IS10", "markers": str(tmp_path)},
                         runs=tmp_path / "runs", load_features=load, executor=ex, threads=1, log=said.append)
    killed = [p.name.removeprefix("killed-") for p in tmp_path.glob("killed-*")]
    assert len(killed) == 1
    fold = killed[0]
    now = [s for s in said if "while running this fold" in s]      # said when it happened
    assert len(now) == 1 and fold in now[0] and "SIGKILL" in now[0] and "rerun" in now[0], said
    stored = [s for s in said if s.strip().startswith(f"WARNING ({fold})")]   # and when the fold is stored
    assert len(stored) == 1 and "lost 1 time" in stored[0], said
    record = {f["fold"]: f for f in res.record["folds"]}
    assert any("lost 1 time" in w for w in record[fold].get("warnings") or [])
    assert all(not f.get("warnings") for name, f in record.items() if name != fold)


@pytest.mark.slow
def test_a_lost_dask_worker_is_reported_with_its_task(tmp_path):
    lost: list[tuple[object, str]] = []
    with DaskExecutor("local:2", threads=1) as ex:
        ex.on_lost = lambda fut, what: lost.append((fut, what))
        token = ex.share(None)
        doomed = ex.submit(die_first_time, token, str(tmp_path))
        assert [f.result() for f in ex.as_completed([doomed])] == ["second try"]
    assert [f for f, _ in lost] == [doomed] and "Dask worker" in lost[0][1] and "lost" in lost[0][1]
