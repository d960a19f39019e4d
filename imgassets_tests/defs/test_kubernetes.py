"""The Kubernetes option, validated against dagster-k8s's own schemas (no cluster here)."""

from __future__ import annotations

import json

import pytest
import yaml
from dagster import DagsterInvalidConfigError
from dagster._config import process_config
from dagster_k8s import k8s_job_executor
from dagster_k8s.job import get_user_defined_k8s_config

from imgassets.definitions import defs
from imgassets.defs.deployment import executor_for
from imgassets.defs.kubernetes import k8s_executor_config
from imgassets_tests.conftest import REPO_ROOT


def test_training_step_requests_one_gpu_and_the_tag_validates():
    tags = defs.get_assets_def("yolo_model").op.tags
    config = get_user_defined_k8s_config({"dagster-k8s/config": tags["dagster-k8s/config"]})
    resources = config.container_config["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1 and resources["requests"]["nvidia.com/gpu"] == 1
    assert config.pod_spec_config["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_a_wrong_tag_would_be_refused():
    with pytest.raises(DagsterInvalidConfigError, match="container_confg"):
        get_user_defined_k8s_config({"dagster-k8s/config": json.dumps({"container_confg": {}})})


def test_k8s_executor_config_validates_against_the_executor_schema():
    result = process_config(k8s_job_executor.config_schema.config_type, k8s_executor_config())
    assert result.success, result.errors
    assert executor_for("kubernetes").name == "k8s"
    assert executor_for("local") is None


def test_helm_values_name_the_image_module_and_launcher():
    values = yaml.safe_load((REPO_ROOT / "deploy/helm/values.yaml").read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "imgassets.definitions"] and deployment["port"] == 4000
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["IMGASSETS_DEPLOYMENT"] == "kubernetes" and env["IMGASSETS_SHARED_ROOT"] == "/shared"
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
