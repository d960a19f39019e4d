"""A cancelled test run leaves no server behind: SIGTERM to pytest ends every process group a test
started (the production stack's code server, webserver and daemon, dagster dev, Postgres)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from imgassets_tests.conftest import REPO_ROOT

CHILD_TEST = textwrap.dedent('''
    import pathlib, sys, time

    import pytest

    from imgassets_tests.conftest import end_server_group, start_server

    PIDS = pathlib.Path({pids!r})


    @pytest.fixture
    def stopped_on_teardown():
        proc = start_server([sys.executable, "-c", "import time; time.sleep(600)"])
        yield proc
        PIDS.with_suffix(".teardown").write_text("ran")
        end_server_group(proc.pid)


    def test_servers_then_a_long_wait(stopped_on_teardown):
        no_teardown = start_server(["sleep", "600"])  # ended by the registry alone
        PIDS.write_text(f"{{stopped_on_teardown.pid}} {{no_teardown.pid}}")
        time.sleep(600)
''')


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow  # processes, servers or a timed race: the full suite runs it
def test_sigterm_to_pytest_ends_every_server_group_it_started(tmp_path):
    pids_file = tmp_path / "pids"
    (tmp_path / "test_child.py").write_text(CHILD_TEST.format(pids=str(pids_file)))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    pytest_proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "imgassets_tests.conftest",
                                    "-p", "no:cacheprovider", str(tmp_path / "test_child.py")],
                                   cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not pids_file.exists() and time.monotonic() < deadline and pytest_proc.poll() is None:
            time.sleep(0.2)
        assert pids_file.exists(), pytest_proc.communicate(timeout=30)[0][-3000:]
        groups = [int(pid) for pid in pids_file.read_text().split()]
        assert all(_group_alive(g) for g in groups)
        pytest_proc.send_signal(signal.SIGTERM)
        output = pytest_proc.communicate(timeout=60)[0]
    finally:
        if pytest_proc.poll() is None:
            pytest_proc.kill()
    assert pytest_proc.returncode != 0
    assert (tmp_path / "pids.teardown").read_text() == "ran", output[-3000:]  # teardowns ran, as on Ctrl-C
    deadline = time.monotonic() + 10
    while any(_group_alive(g) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_group_alive(g) for g in groups), f"left running: {groups}"
