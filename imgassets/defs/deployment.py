"""Resources chosen by deployment, in one place (``IMGASSETS_DEPLOYMENT``, default ``local``).

* ``local`` -- the embedded default, no server: object store in ``<home>/objects``, asset values
  under ``<home>/storage``, Dagster's SQLite storage under ``<home>/dagster``. Settings:
  ``IMGASSETS_HOME``, ``IMGASSETS_SHARED_ROOT``.
* ``production`` -- MinIO (or any S3) for the objects *and* for Dagster's stored values (dagster-aws
  ``S3PickleIOManager`` on the same endpoint, Parquet tables as objects), so steps in separate
  processes or pods share outputs; Postgres for Dagster's storage (``deploy/dagster.production.yaml``).
  Settings: ``IMGASSETS_S3_ENDPOINT`` (``host:port``; read when the definitions load),
  ``IMGASSETS_S3_ACCESS_KEY`` and ``IMGASSETS_S3_SECRET_KEY`` (``EnvVar``, read at run time), ``IMGASSETS_S3_BUCKET`` (default ``imgassets``),
  ``IMGASSETS_S3_SECURE`` (``true``/``false``, default false), ``IMGASSETS_S3_REGION`` (optional),
  plus ``IMGASSETS_SHARED_ROOT`` and ``IMGASSETS_HOME`` (local scratch: cache, staging, training).

* ``kubernetes`` -- the ``production`` resources, steps as Kubernetes jobs
  (:mod:`imgassets.defs.kubernetes`, needs ``pip install .[kubernetes]``).

Secrets are passed as ``dagster.EnvVar``, so their values never appear in the UI or in run config.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster_aws.s3 import S3PickleIOManager, S3Resource

from imgassets import settings
from imgassets.core.store.keys import DAGSTER_PICKLES_PREFIX
from imgassets.defs.io_managers import LocalParquetIOManager, ObjectStoreParquetIOManager, local_pickle_io_manager
from imgassets.defs.resources import LocalObjectStoreResource, S3ObjectStoreResource, SharedDrive, WorkDirs


def _env_or_default(name: str, default: str) -> str | dg.EnvVar:
    return dg.EnvVar(name) if os.environ.get(name) else default


def _common(home: str | dg.EnvVar, shared_root: str | None, private_scratch: bool = False) -> dict:
    root = shared_root or _env_or_default(settings.SHARED_ROOT_ENV, str(settings.shared_root()))
    mode, settle = settings.archive_mode(), settings.settle_seconds()
    return {"shared_drive": SharedDrive(root=root, archive_mode=mode, settle_seconds=settle),
            "workdirs": WorkDirs(home=home, private_scratch=private_scratch)}


def local_resources(home: str | None = None, shared_root: str | None = None) -> dict:
    """Resources of the embedded default deployment (no server needed). ``home`` and
    ``shared_root`` override the environment (tests use this)."""
    home = home or _env_or_default(settings.HOME_ENV, str(settings.home()))
    return {
        **_common(home, shared_root),
        "object_store": LocalObjectStoreResource(home=home),
        "io_manager": local_pickle_io_manager(home),
        "parquet_io_manager": LocalParquetIOManager(home=home),
    }


def production_resources(shared_root: str | None = None, private_scratch: bool = False, **s3_overrides) -> dict:
    """MinIO/S3 + Postgres deployment. ``s3_overrides`` (endpoint, access_key, secret_key, bucket,
    secure) replace the environment variables (tests use this). ``private_scratch``: each step
    process gets its own scratch folder, deleted when it ends (:class:`WorkDirs`; Kubernetes)."""
    s3 = {"access_key": dg.EnvVar(settings.S3_ACCESS_KEY_ENV), "secret_key": dg.EnvVar(settings.S3_SECRET_KEY_ENV),
          **settings.s3_settings(**s3_overrides)}
    store = S3ObjectStoreResource(**s3)
    boto = S3Resource(endpoint_url=f"{'https' if s3['secure'] else 'http'}://{s3['endpoint']}", aws_access_key_id=s3["access_key"],
                      aws_secret_access_key=s3["secret_key"], region_name=s3["region"] or "us-east-1")
    home = _env_or_default(settings.HOME_ENV, str(settings.home()))
    return {
        **_common(home, shared_root, private_scratch),
        "object_store": store,
        "io_manager": S3PickleIOManager(s3_resource=boto, s3_bucket=s3["bucket"], s3_prefix=DAGSTER_PICKLES_PREFIX),
        "parquet_io_manager": ObjectStoreParquetIOManager(object_store=store),
    }


def executor_for(deployment: str | None = None):
    """``k8s_job_executor`` for ``kubernetes`` (each step a Kubernetes job, training on a GPU
    node); Dagster's default executor otherwise."""
    if settings.deployment(deployment) == "kubernetes":
        from imgassets.defs.kubernetes import k8s_executor

        return k8s_executor()
    return None


def store_kind(deployment: str | None = None) -> str:
    """The kind tag the UI shows on assets kept in the object store: ``s3`` where the store is
    S3 (``production``, ``kubernetes``), ``filesystem`` for the local deployment's folder."""
    return "filesystem" if settings.deployment(deployment) == "local" else "s3"


def resources_for(deployment: str | None = None) -> dict:
    """Resources for ``deployment`` (``IMGASSETS_DEPLOYMENT``, default ``local``)."""
    name = settings.deployment(deployment)
    return local_resources() if name == "local" else production_resources(private_scratch=name == "kubernetes")
