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
