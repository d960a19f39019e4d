"""The Kubernetes deployment option (``IMGASSETS_DEPLOYMENT=kubernetes``, dagster-k8s installed).

Resources are those of ``production`` (MinIO + Postgres); steps run as Kubernetes jobs through
``k8s_job_executor``, and the training step asks for a GPU through the ``dagster-k8s/config`` op
tag on ``yolo_model``: ``nvidia.com/gpu: 1`` in requests and limits, and a toleration for the usual
``nvidia.com/gpu`` taint. Helm values for the official Dagster chart are in
``deploy/helm/values.yaml``. Everything here is plain data, validated against dagster-k8s's own
schemas by ``imgassets_tests/defs/test_kubernetes.py``.
"""

from imgassets import settings

GPU_TRAINING_K8S_CONFIG = {
    "container_config": {
        "resources": {
            "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 1},
            "limits": {"memory": "32Gi", "nvidia.com/gpu": 1},
        },
    },
    "pod_spec_config": {
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}
"""``dagster-k8s/config`` of the training step: one GPU, and a node that has one."""

FORWARDED_ENV = list(settings.FORWARDED_TO_STEPS)
SCRATCH_MOUNT = "/data/imgassets"
"""Where every step pod mounts its scratch volume: ``IMGASSETS_HOME`` in the image (staging, cache,
training outputs; :class:`~imgassets.defs.resources.WorkDirs` with a private folder per step)."""
SCRATCH_VOLUME = {"name": "scratch", "emptyDir": {"sizeLimit": "100Gi"}}
"""Each step pod's own scratch (an ``emptyDir``: created with the pod, deleted with it); large
enough for a staged dataset and its cache."""


def k8s_executor_config() -> dict:
    """Run config of ``k8s_job_executor``: the image, the settings forwarded to step pods, the
    secret holding the S3 keys and the Postgres password, the shared drive volume (read-only) and
    every step's own scratch volume at :data:`SCRATCH_MOUNT`."""
    return {
        "job_image": settings.step_image(),
        "image_pull_policy": "IfNotPresent",
        "env_vars": FORWARDED_ENV,
        "env_secrets": [settings.k8s_secret()],
        "volumes": [{"name": "shared-drive", "persistentVolumeClaim": {"claimName": "imgassets-shared-drive", "readOnly": True}},
                    SCRATCH_VOLUME],
        "volume_mounts": [{"name": "shared-drive", "mountPath": "/shared", "readOnly": True},
                          {"name": "scratch", "mountPath": SCRATCH_MOUNT}],
        "max_concurrent": 8,
    }


def k8s_executor():
    """``k8s_job_executor`` configured by :func:`k8s_executor_config` (imports dagster-k8s)."""
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor.configured(k8s_executor_config())
