"""A real `dagster dev` for end-to-end tests: started on a free loopback port with a temporary
DAGSTER_HOME and imgassets home, observed through Dagster's GraphQL API, and stopped with every
process it started (webserver, daemon, code servers, runs)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from imgassets_tests.conftest import REPO_ROOT, end_server_group, free_port, start_server


class Dagit:
    """A running `dagster dev` (its port, home, log) and GraphQL helpers."""

    def __init__(self, port: int, home: Path, log: Path):
        self.port, self.home, self.log = port, home, log
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/graphql"

    def query(self, text: str, **variables) -> dict:
        response = requests.post(self.url, json={"query": text, "variables": variables}, timeout=30)
        response.raise_for_status()
        return response.json()["data"]

    def materializations(self, asset: str) -> list[dict]:
        data = self.query("query($k: AssetKeyInput!) { assetOrError(assetKey: $k) { ... on Asset {"
                          " assetMaterializations(limit: 20) { runId partition } } } }", k={"path": [asset]})
        return (data["assetOrError"] or {}).get("assetMaterializations") or []

    def latest_metadata(self, asset: str, entry_type: str = "TextMetadataEntry", field: str = "text") -> dict:
        """The ``entry_type`` metadata entries (their ``field``) of the asset's latest
        materialization, by label: text by default, ``("FloatMetadataEntry", "floatValue")``..."""
        data = self.query("query($k: AssetKeyInput!) { assetOrError(assetKey: $k) { ... on Asset {"
                          " assetMaterializations(limit: 1) { metadataEntries { label"
                          f" ... on {entry_type} {{ {field} }} }} }} }} }} }}", k={"path": [asset]})
        entries = data["assetOrError"]["assetMaterializations"][0]["metadataEntries"]
        return {e["label"]: e[field] for e in entries if field in e}

    def latest_text_metadata(self, asset: str) -> dict[str, str]:
        """The text metadata entries of the asset's latest materialization, by label."""
        return self.latest_metadata(asset)

    def check_executions(self, asset: str, check: str) -> list[dict]:
        data = self.query("query($k: AssetKeyInput!, $c: String!) { assetCheckExecutions(assetKey: $k, checkName: $c,"
                          " limit: 10) { status runId evaluation { partition } } }", k={"path": [asset]}, c=check)
        return data["assetCheckExecutions"]

    def runs(self) -> list[dict]:
        data = self.query("{ runsOrError { ... on Runs { results { runId status jobName tags { key value } } } } }")
        return data["runsOrError"]["results"]

    def wait_for(self, what: str, predicate, timeout: float):
        """Polls ``predicate`` every 2 s until it returns something truthy; on timeout raises
        AssertionError with the tail of the `dagster dev` log."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                value = predicate()
                if value:
                    return value
            except requests.RequestException:
                pass
            time.sleep(2)
        raise AssertionError(f"timed out waiting for {what}; dagster dev log tail:\n{self.log.read_text()[-4000:]}")


@contextlib.contextmanager
def dagster_dev(tmp_path: Path, drive: Path, via: str = "dagster", **env_overrides: str) -> Iterator[Dagit]:
    """The UI with its daemon on a free port, with ``IMGASSETS_SHARED_ROOT=drive``, 5 s sensor and
    automation intervals and no settle window; yields once the webserver answers. ``via``:
    ``dagster`` (`dagster dev -w workspace.yaml`) or ``imgassets`` (`imgassets ui`, as users start
    it). On exit every process of the group is stopped, and the test fails if one survives."""
    home = tmp_path / "home"
    (home / "dagster").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home / "dagster"), "IMGASSETS_HOME": str(home),
           "IMGASSETS_SHARED_ROOT": str(drive), "IMGASSETS_SENSOR_INTERVAL": "5", "IMGASSETS_AUTOMATION_INTERVAL": "5",
           "IMGASSETS_SETTLE_SECONDS": "0", "YOLO_OFFLINE": "1", **env_overrides}
    log = tmp_path / "dagster-dev.log"
    if via == "imgassets":
        argv = [sys.executable, "-m", "imgassets.cli", "ui", "--shared-root", str(drive), "--home", str(home),
                "--port", str(port)]
    else:
        argv = [str(Path(sys.executable).with_name("dagster")), "dev", "-w", str(REPO_ROOT / "workspace.yaml"),
                "-p", str(port)]
    with open(log, "wb") as out:
        proc = start_server(argv, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    ui = Dagit(port, home, log)
    try:
        ui.wait_for("the webserver", lambda: requests.get(f"{ui.base}/server_info", timeout=5).ok, 120)
        yield ui
    finally:
        _stop_group(proc)
    assert _processes_of(proc.pid, port) == []


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the whole process group of ``proc`` (`dagster dev`: webserver, daemon, code servers,
    runs), give it 30 s to exit, then SIGKILL whatever is left, and forget the group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.time() + 30
    while _processes_of(proc.pid, port=-1) and time.time() < deadline:
        time.sleep(1)
    if _processes_of(proc.pid, port=-1):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(2)
    if proc.poll() is None:
        proc.wait(timeout=10)
    end_server_group(proc.pid)


def _processes_of(pid: int, port: int) -> list[str]:
    """Processes still alive from the `dagster dev` group or serving its port (psutil comes with
    Ultralytics)."""
    import psutil

    alive = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue  # exited; waiting only for its parent to collect it
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            if os.getpgid(process.info["pid"]) == pid or f"--port {port}" in cmdline or f"-p {port}" in cmdline:
                alive.append(cmdline[:120])
        except (ProcessLookupError, psutil.Error):
            continue
    return alive
