"""End to end with the real daemon: `dagster dev` on a temporary DAGSTER_HOME; images dropped into
a scientist folder are picked up by the sensor, and the snapshot, dataset and model materialize
with no click; a bad label then fails the blocking check visibly and training does not follow.
Observed through Dagster's GraphQL API. Every process the test starts is stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from imgassets_tests.conftest import REPO_ROOT, free_port
from imgassets_tests.test_blocking import _small_books

pytestmark = pytest.mark.slow


class Dagit:
    """A `dagster dev` process group and GraphQL helpers."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/graphql"

    def query(self, text: str, **variables) -> dict:
        response = requests.post(self.url, json={"query": text, "variables": variables}, timeout=30)
        response.raise_for_status()
        return response.json()["data"]

    def materializations(self, asset: str) -> list[dict]:
        data = self.query("query($k: AssetKeyInput!) { assetOrError(assetKey: $k) { ... on Asset {"
                          " assetMaterializations(limit: 20) { runId partition } } } }", k={"path": [asset]})
        return (data["assetOrError"] or {}).get("assetMaterializations") or []

    def check_executions(self, asset: str, check: str) -> list[dict]:
        data = self.query("query($k: AssetKeyInput!, $c: String!) { assetCheckExecutions(assetKey: $k, checkName: $c,"
                          " limit: 10) { status runId evaluation { partition } } }", k={"path": [asset]}, c=check)
        return data["assetCheckExecutions"]

    def runs(self) -> list[dict]:
        data = self.query("{ runsOrError { ... on Runs { results { runId status jobName tags { key value } } } } }")
        return data["runsOrError"]["results"]


def wait_for(what: str, predicate, timeout: float, log: Path):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except requests.RequestException:
            pass
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}; dagster dev log tail:\n{log.read_text()[-4000:]}")


def test_sensor_and_automation_under_dagster_dev(tmp_path):
    drive, home = tmp_path / "drive", tmp_path / "home"
    drive.mkdir()
    (home / "dagster").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home / "dagster"), "IMGASSETS_HOME": str(home),
           "IMGASSETS_SHARED_ROOT": str(drive), "IMGASSETS_SENSOR_INTERVAL": "5", "IMGASSETS_AUTOMATION_INTERVAL": "5",
           "IMGASSETS_SETTLE_SECONDS": "0", "YOLO_OFFLINE": "1"}
    log = tmp_path / "dagster-dev.log"
    dagster = Path(sys.executable).with_name("dagster")
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(dagster), "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-p", str(port)],
                                cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    ui = Dagit(port)
    try:
        wait_for("the webserver", lambda: requests.get(f"http://127.0.0.1:{port}/server_info", timeout=5).ok, 120, log)
        _small_books(drive / "ana", count=8)

        wait_for("yolo_model to materialize", lambda: ui.materializations("yolo_model"), 300, log)
        assert [m["partition"] for m in ui.materializations("image_snapshot")] == ["ana"]
        assert len(ui.materializations("training_dataset")) == 1
        runs = ui.runs()
        launched_by = {r["runId"]: {t["key"]: t["value"] for t in r["tags"]} for r in runs}
        sensor_runs = [r for r in runs if launched_by[r["runId"]].get("dagster/sensor_name") == "shared_drive_sensor"]
        assert [r["jobName"] for r in sensor_runs] == ["scientist_job"]
        assert sum(launched_by[r["runId"]].get("dagster/sensor_name") == "training_automation" for r in runs) == 2

        labels = sorted((drive / "ana" / "labels").iterdir())
        labels[0].write_text("0 0.9 0.5 0.4 0.4\n")  # reaches x = 1.1

        def failed_check():
            return [e for e in ui.check_executions("label_table", "box_geometry") if e["status"] == "FAILED"]

        failure = wait_for("box_geometry to fail", failed_check, 180, log)[0]
        assert failure["evaluation"]["partition"] == "ana"
        time.sleep(20)  # several automation ticks
        assert len(ui.materializations("training_dataset")) == 1 and len(ui.materializations("yolo_model")) == 1
        assert len(ui.materializations("image_snapshot")) == 1
    finally:
        _stop_group(proc)
    assert _processes_of(proc.pid, port) == []


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the whole `dagster dev` process group (webserver, daemon, code servers, runs), give
    it 30 s to exit, then SIGKILL whatever is left."""
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
