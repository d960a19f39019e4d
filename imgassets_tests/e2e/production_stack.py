"""The production stack as docker-compose runs it, as processes on loopback: the code location as
a gRPC server (``dagster code-server start``), ``dagster-daemon run`` and ``dagster-webserver``,
each its own process group, all on the production instance (``deploy/dagster.production.yaml``:
Postgres) and the production resources (S3: moto's server). Observed through the webserver's
GraphQL API (:class:`imgassets_tests.e2e.dagster_dev.Dagit`)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from imgassets_tests.conftest import REPO_ROOT, S3_ACCESS_KEY, S3_SECRET_KEY, command_env, free_port, start_server
from imgassets_tests.e2e.dagster_dev import Dagit, _processes_of, _stop_group


@dataclass
class ProductionStack:
    """The running processes (by name), their environment and the webserver's GraphQL client."""

    ui: Dagit
    env: dict[str, str]
    workspace: Path
    logs: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str) -> subprocess.Popen:
        """Start ``code``, ``daemon`` or ``webserver`` (its log: ``<logs>/<name>.log``, appended)."""
        bin_dir = Path(sys.executable).parent
        commands = {
            "code": [str(bin_dir / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", self.env["CODE_PORT"],
                     "-m", "imgassets.definitions"],
            "daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", str(self.workspace)],
            "webserver": [str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.ui.port),
                          "-w", str(self.workspace)],
        }
        with open(self.logs / f"{name}.log", "ab") as out:
            proc = start_server(commands[name], cwd=REPO_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.processes[name] = proc
        return proc

    def stop(self, name: str) -> None:
        _stop_group(self.processes.pop(name))

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log")))


@contextlib.contextmanager
def production_stack(tmp_path: Path, drive: Path, postgres_env: dict[str, str], s3_endpoint: str,
                     bucket: str) -> Iterator[ProductionStack]:
    """Start code server, daemon and webserver; yield once the webserver answers and the code
    location is loaded; stop every process of every group afterwards (the test fails if one
    survives). The instance is the production ``dagster.yaml`` with run monitoring polled every
    5 s; sensors and automation tick every 5 s; the settle window is 0."""
    dagster_home, logs = tmp_path / "dagster-home", tmp_path / "logs"
    dagster_home.mkdir()
    logs.mkdir()
    instance = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.production.yaml").read_text())
    instance["run_monitoring"]["poll_interval_seconds"] = 5
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance))
    code_port = free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {
        "host": "127.0.0.1", "port": code_port, "location_name": "imgassets"}}]}))
    env = command_env(drop=("IMGASSETS_", "DAGSTER_"))
    env.update(postgres_env, DAGSTER_HOME=str(dagster_home), CODE_PORT=str(code_port), YOLO_OFFLINE="1",
               IMGASSETS_DEPLOYMENT="production", IMGASSETS_S3_ENDPOINT=s3_endpoint, IMGASSETS_S3_BUCKET=bucket,
               IMGASSETS_S3_ACCESS_KEY=S3_ACCESS_KEY, IMGASSETS_S3_SECRET_KEY=S3_SECRET_KEY,
               IMGASSETS_HOME=str(tmp_path / "scratch"), IMGASSETS_SHARED_ROOT=str(drive),
               IMGASSETS_SENSOR_INTERVAL="5", IMGASSETS_AUTOMATION_INTERVAL="5", IMGASSETS_SETTLE_SECONDS="0")
    stack = ProductionStack(Dagit(free_port(), dagster_home, logs / "webserver.log"), env, workspace, logs)
    started: list[subprocess.Popen] = []
    try:
        started.append(stack.start("code"))
        started.append(stack.start("webserver"))

        def location_loaded() -> bool:
            data = stack.ui.query("{ workspaceOrError { ... on Workspace { locationEntries { name "
                                  "locationOrLoadError { __typename } } } } }")
            entries = data["workspaceOrError"]["locationEntries"]
            return bool(entries) and entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation"

        stack.ui.wait_for("the webserver", lambda: requests.get(f"{stack.ui.base}/server_info", timeout=5).ok, 120)
        stack.ui.wait_for("the code location over gRPC", location_loaded, 120)
        started.append(stack.start("daemon"))
        yield stack
    finally:
        for name in list(stack.processes):
            stack.stop(name)
    leftovers = [alive for proc in started for alive in _processes_of(proc.pid, port=-1)]
    assert leftovers == [], leftovers
