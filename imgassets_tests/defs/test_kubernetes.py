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


def _rendered_step_job(step_key: str, monkeypatch) -> dict:
    """The Kubernetes Job dagster-k8s builds for ``step_key`` of ``training_job`` (its own
    ``construct_dagster_k8s_job``, from the executor config and the step's ``dagster-k8s/config``
    tag), as the API server would receive it. The forwarded settings are read from the
    environment, as in the run pod that builds the step jobs."""
    from dagster_k8s.job import DagsterK8sJobConfig, UserDefinedDagsterK8sConfig, construct_dagster_k8s_job
    from kubernetes.client import ApiClient

    from imgassets.defs.kubernetes import FORWARDED_ENV

    for name in FORWARDED_ENV:
        monkeypatch.setenv(name, "kubernetes" if name == "IMGASSETS_DEPLOYMENT" else "value")

    config = k8s_executor_config()
    job_config = DagsterK8sJobConfig(job_image=config["job_image"], dagster_home="/opt/dagster/dagster_home",
                                     image_pull_policy=config["image_pull_policy"], env_secrets=config["env_secrets"],
                                     env_vars=config["env_vars"], volume_mounts=config["volume_mounts"],
                                     volumes=config["volumes"], instance_config_map="dagster-instance")
    tags = defs.get_assets_def(step_key).op.tags if step_key in ("yolo_model", "training_dataset") else {}
    user_config = get_user_defined_k8s_config(tags) if tags.get("dagster-k8s/config") else UserDefinedDagsterK8sConfig()
    job = construct_dagster_k8s_job(job_config, ["dagster", "api", "execute_step"], f"dagster-step-{step_key.replace('_', '-')}",
                                    user_defined_k8s_config=user_config, pod_name=f"dagster-step-{step_key.replace('_', '-')}",
                                    component="step_worker")
    return ApiClient().sanitize_for_serialization(job)


@pytest.mark.parametrize("step_key", ["yolo_model", "training_dataset"])
def test_rendered_step_jobs_are_valid_kubernetes_jobs_with_scratch_and_the_gpu_where_it_trains(step_key, monkeypatch):
    """kubernetes-validate checks the rendered Job against the Kubernetes API schema (strict: an
    unknown field is an error), not only against Dagster's config schema."""
    import kubernetes_validate

    job = _rendered_step_job(step_key, monkeypatch)
    kubernetes_validate.validate(job, desired_version="1.30", strict=True)
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert {"name": "scratch", "emptyDir": {"sizeLimit": "100Gi"}} in pod["volumes"]
    assert {"name": "scratch", "mountPath": "/data/imgassets"} in container["volumeMounts"]
    gpus = container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
    assert gpus == ("1" if step_key == "yolo_model" else None)  # a quantity: a string in the API


def test_a_wrong_job_spec_is_refused_by_the_validator(monkeypatch):
    import kubernetes_validate

    job = _rendered_step_job("yolo_model", monkeypatch)
    job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"].append({"name": "scratch", "mountPth": "/x"})
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, desired_version="1.30", strict=True)


def test_helm_gives_the_code_location_and_run_pods_a_scratch_volume():
    values = yaml.safe_load((REPO_ROOT / "deploy/helm/values.yaml").read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    for spec in (deployment, launcher):
        assert {"name": "scratch", "mountPath": "/data/imgassets"} in spec["volumeMounts"]
        assert any(v["name"] == "scratch" and "emptyDir" in v for v in spec["volumes"])
