"""Ending the CLI process: atexit hooks and buffered output survive, teardown-time crashes do not
reach the exit status."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from imgassets.cli.exit import exit_status


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (1, 1), (2, 2), ("bad usage", 1)])
def test_exit_status_maps_like_sys_exit(code, status):
    assert exit_status(code) == status


def run_python(body: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, timeout=60)


# A module global whose finalizer aborts stands in for a native thread pool that calls
# std::terminate when it is destroyed during interpreter finalization.
TEARDOWN_ABORT = textwrap.dedent("""
    import atexit, os, sys
    class NativePool:
        def __del__(self):
            os.abort()
    pool = NativePool()
    atexit.register(lambda: print("atexit hook ran"))
    sys.stdout.write("result printed without newline")
""")


def test_normal_exit_is_killed_by_a_teardown_abort():
    proc = run_python(TEARDOWN_ABORT + "sys.exit(0)\n")
    assert proc.returncode == -6


def test_exit_now_keeps_output_hooks_and_status_and_skips_teardown():
    proc = run_python(TEARDOWN_ABORT + "from imgassets.cli.exit import exit_now\nexit_now(3)\n")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "result printed without newlineatexit hook ran\n"


def test_cli_usage_errors_keep_their_status_through_exit_now():
    help_proc = subprocess.run([sys.executable, "-m", "imgassets.cli", "--help"], capture_output=True, text=True,
                               timeout=60)
    assert help_proc.returncode == 0 and "usage: imgassets" in help_proc.stdout
    bad = subprocess.run([sys.executable, "-m", "imgassets.cli", "nosuchcommand"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "invalid choice: 'nosuchcommand'" in bad.stderr
