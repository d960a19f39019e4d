"""Resources chosen by deployment, in one place.

``local`` (the embedded default, the only one so far): object store in ``<home>/objects``, asset
values under ``<home>/storage``, Dagster's SQLite storage under ``<home>/dagster``. Settings come
from ``IMGASSETS_HOME`` and ``IMGASSETS_SHARED_ROOT`` (as ``dagster.EnvVar`` when set, else the
defaults of :mod:`imgassets.settings`).
"""


import os

import dagster as dg

from imgassets import settings
from imgassets.defs.io_managers import LocalParquetIOManager, LocalPickleIOManager
from imgassets.defs.resources import LocalObjectStoreResource, SharedDrive, WorkDirs


def _env_or_default(name: str, default: str) -> str | dg.EnvVar:
    return dg.EnvVar(name) if os.environ.get(name) else default


def local_resources(home: str | None = None, shared_root: str | None = None) -> dict:
    """Resources of the embedded default deployment (no server needed). ``home`` and
    ``shared_root`` override the environment (tests use this)."""
    home = home or _env_or_default(settings.HOME_ENV, str(settings.home()))
    root = shared_root or _env_or_default(settings.SHARED_ROOT_ENV, str(settings.shared_root()))
    return {
        "shared_drive": SharedDrive(root=root),
        "object_store": LocalObjectStoreResource(home=home),
        "workdirs": WorkDirs(home=home),
        "io_manager": LocalPickleIOManager(home=home),
        "parquet_io_manager": LocalParquetIOManager(home=home),
    }


def resources_for(deployment: str | None = None) -> dict:
    """Resources for ``deployment`` (``IMGASSETS_DEPLOYMENT``, default ``local``)."""
    deployment = deployment or os.environ.get("IMGASSETS_DEPLOYMENT", "local")
    if deployment == "local":
        return local_resources()
    raise ValueError(f"unknown IMGASSETS_DEPLOYMENT {deployment!r}: expected 'local'")
