"""What can be tested here of the production deployment (no Docker engine): the compose file, the
workspace and both dagster.yaml variants, validated by Dagster's own instance config schema."""

from __future__ import annotations

import shutil

import pytest
import yaml
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config

from imgassets_tests.conftest import REPO_ROOT

POSTGRES_ENV = {"DAGSTER_POSTGRES_HOST": "postgres", "DAGSTER_POSTGRES_PORT": "5432", "DAGSTER_POSTGRES_USER": "dagster",
                "DAGSTER_POSTGRES_PASSWORD": "secret", "DAGSTER_POSTGRES_DB": "dagster"}


@pytest.mark.parametrize("source", ["dagster.yaml", "deploy/dagster.production.yaml"])
def test_instance_config_variants_validate(tmp_path, monkeypatch, source):
    for name, value in POSTGRES_ENV.items():
        monkeypatch.setenv(name, value)
    shutil.copy(REPO_ROOT / source, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["telemetry"] == {"enabled": False}
    assert config["concurrency"]["pools"] == {"default_limit": 1}  # one training at a time
    if "production" in source:
        assert set(config["storage"]) == {"postgres"}
        assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_instance_config_validation_is_real(tmp_path):
    text = (REPO_ROOT / "deploy/dagster.production.yaml").read_text().replace("hostname:", "hostnme:")
    (tmp_path / "dagster.yaml").write_text(text)
    with pytest.raises(DagsterInvalidConfigError, match="hostnme"):
        dagster_instance_config(str(tmp_path))


def test_compose_file_names_the_promised_services_ports_and_volumes():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"minio", "postgres", "imgassets-code", "dagster-webserver", "dagster-daemon"}
    assert services["minio"]["image"].startswith("minio/minio:")
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["imgassets-code"]["build"] == "."
    assert services["dagster-webserver"]["image"] == services["dagster-daemon"]["image"] == "imgassets:latest"
    assert {"9000:9000", "9001:9001"} <= set(services["minio"]["ports"])
    assert services["dagster-webserver"]["ports"] == ["3000:3000"]
    assert "dagster-daemon run" in services["dagster-daemon"]["command"]
    for name in ("imgassets-code", "dagster-daemon"):
        shared = [v for v in services[name]["volumes"] if ":/shared:" in v]
        assert shared == ["${IMGASSETS_SHARED_DRIVE:-./shared-drive}:/shared:${IMGASSETS_SHARED_DRIVE_MODE:-ro}"]
        env = services[name]["environment"]
        assert env["IMGASSETS_DEPLOYMENT"] == "production" and env["IMGASSETS_S3_ENDPOINT"] == "minio:9000"
    assert set(compose["volumes"]) == {"minio-data", "postgres-data", "imgassets-scratch"}


def test_compose_reserves_the_gpu_for_runs_and_starts_services_once_their_dependencies_are_healthy():
    """Runs execute in the code server's container (the production instance's DefaultRunLauncher),
    so that is where the GPU is reserved; every dependency a Dagster service names must have a
    health check and be waited for as healthy, not merely started."""
    services = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    launcher = yaml.safe_load((REPO_ROOT / "deploy/dagster.production.yaml").read_text())["run_launcher"]
    assert launcher["class"] == "DefaultRunLauncher"
    devices = services["imgassets-code"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert services["postgres"]["healthcheck"]["test"] == ["CMD-SHELL", "pg_isready -U dagster -d dagster"]
    assert services["minio"]["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    assert services["imgassets-code"]["healthcheck"]["test"][:4] == ["CMD", "dagster", "api", "grpc-health-check"]
    for name in ("imgassets-code", "dagster-webserver", "dagster-daemon"):
        depends = services[name]["depends_on"]
        assert isinstance(depends, dict) and depends, f"{name} must wait for its dependencies' health"
        for dependency, condition in depends.items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency], dependency
    assert {"minio", "postgres"} <= set(services["imgassets-code"]["depends_on"])
    assert {"imgassets-code", "postgres"} <= set(services["dagster-daemon"]["depends_on"])


def test_workspace_points_at_the_code_server_the_dockerfile_starts():
    workspace = yaml.safe_load((REPO_ROOT / "deploy/workspace.production.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert (server["host"], server["port"]) == ("imgassets-code", 4000)
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert '"-p", "4000"' in dockerfile and "EXPOSE 4000" in dockerfile
    assert '"-m", "imgassets.definitions"' in dockerfile
