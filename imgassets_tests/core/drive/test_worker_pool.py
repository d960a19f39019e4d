"""Pool workers end with the command: after its result (``exit_now``) and when it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

POOL_THEN_EXIT = textwrap.dedent("""
    import os, sys
    from imgassets.core.worker_pool import process_pool
    from imgassets.cli.exit import exit_now
    pool = process_pool(2)
    print(list(pool.map(abs, [-1, -2])))
    print(" ".join(str(p) for p in pool._processes), flush=True)
    {tail}
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_exit_now_after_a_pool_ends_within_seconds():
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", POOL_THEN_EXIT.format(tail="exit_now(0)")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "[1, 2]"
    assert time.monotonic() - started < 30
    workers = [int(p) for p in proc.stdout.splitlines()[1].split()]
    assert len(workers) == 2 and not any(_alive(p) for p in workers)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_a_killed_parent():
    proc = subprocess.Popen([sys.executable, "-c", POOL_THEN_EXIT.format(tail="import time; time.sleep(300)")],
                            stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "pool workers outlived their killed parent"
    finally:
        proc.kill()


IN_A_CHILD = textwrap.dedent("""
    import multiprocessing, sys, threading
    from pathlib import Path

    def step(folder):
        # a Dagster step subprocess: log and heartbeat threads beside the work, then the process ends
        # through multiprocessing's bootstrap (no atexit, no threading._shutdown)
        threading.Thread(target=threading.Event().wait, daemon=True).start()
        {work}

    if __name__ == "__main__":
        threading.Thread(target=threading.Event().wait, daemon=True).start()  # the run worker's threads
        child = multiprocessing.get_context(sys.argv[2]).Process(target=step, args=(Path(sys.argv[1]),))
        child.start()
        child.join(timeout=60)
        print("ended" if child.exitcode == 0 else f"still running: {{child.is_alive()}}, exit code {{child.exitcode}}")
        if child.is_alive():
            for worker in __import__("psutil").Process(child.pid).children(recursive=True):
                worker.kill()
            child.kill()
""")
"""A parent that starts a step in a ``multiprocessing`` child, as Dagster's multiprocess executor does."""


def _run_in_a_step_process(tmp_path, work: str, start_method: str) -> str:
    script = tmp_path / "step.py"
    script.write_text(IN_A_CHILD.format(work=work))
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "ana"), start_method], capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_a_step_process_that_indexed_on_a_pool_ends(tmp_path, start_method):
    """The image index of 80 files (above the pool threshold) inside a step subprocess: the step
    process ends by itself, as a sensor- or UI-launched run's step must."""
    from imgassets.core.images.index import PARALLEL_THRESHOLD
    from imgassets_tests.conftest import jpeg_bytes

    (tmp_path / "ana" / "images").mkdir(parents=True)
    for i in range(PARALLEL_THRESHOLD + 16):
        (tmp_path / "ana" / "images" / f"{i:03d}.jpg").write_bytes(jpeg_bytes(color=(i, 3, 7)))
    work = ("from imgassets.core.images.index import update_image_index\n"
            "    assert len(update_image_index(folder, None, workers=2).index) == 80")
    assert _run_in_a_step_process(tmp_path, work, start_method) == "ended"


def test_a_step_process_that_kept_a_process_pool_ends(tmp_path):
    """A pool kept for the life of the process (the sensor's scans) stops with a step process too."""
    work = ("from imgassets.core.worker_pool import process_pool\n"
            "    assert list(process_pool(2).map(abs, [-1, -2])) == [1, 2]")
    assert _run_in_a_step_process(tmp_path, work, "forkserver") == "ended"
