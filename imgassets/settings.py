"""Where imgassets keeps its state, from the environment (no Dagster import).

* ``IMGASSETS_HOME`` (default ``~/.imgassets``): the local object store (``objects/``...), the
  Dagster instance (``dagster/``), staged datasets (``staging/``), training runs (``training/``)
  and Dagster's stored asset values (``storage/``).
* ``IMGASSETS_SHARED_ROOT`` (default ``<home>/demo-drive``, built by ``imgassets run``): the shared
  drive, one folder per scientist.
* ``IMGASSETS_DEPLOYMENT`` (``local``, ``production``, ``kubernetes``) and the S3 settings of the
  production deployments (:func:`s3_settings`). :mod:`imgassets.defs.deployment` turns these into
  Dagster resources; the command line's ``pull``, ``lineage`` and ``models`` open the same object
  store from them without importing Dagster (about 2 s of a ``pull`` that takes one).
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "IMGASSETS_HOME"
SHARED_ROOT_ENV = "IMGASSETS_SHARED_ROOT"
DEPLOYMENT_ENV = "IMGASSETS_DEPLOYMENT"
DEPLOYMENTS = ("local", "production", "kubernetes")
S3_ENDPOINT_ENV = "IMGASSETS_S3_ENDPOINT"
S3_ACCESS_KEY_ENV = "IMGASSETS_S3_ACCESS_KEY"
S3_SECRET_KEY_ENV = "IMGASSETS_S3_SECRET_KEY"


def home() -> Path:
    """The imgassets home directory (``IMGASSETS_HOME`` or ``~/.imgassets``), absolute."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".imgassets").expanduser().resolve()


def demo_drive(home_dir: Path | None = None) -> Path:
    """Where the demo shared drive is built: ``<home>/demo-drive``."""
    return (home_dir or home()) / "demo-drive"


def shared_root() -> Path:
    """The shared drive root (``IMGASSETS_SHARED_ROOT`` or the demo drive), absolute."""
    value = os.environ.get(SHARED_ROOT_ENV)
    return Path(value).expanduser().resolve() if value else demo_drive()


def dagster_home(home_dir: Path | None = None) -> Path:
    """The Dagster instance directory (``DAGSTER_HOME``) inside the imgassets home."""
    return (home_dir or home()) / "dagster"


def local_objects(home_dir: Path | None = None) -> Path:
    """The embedded object store's directory: ``<home>/objects``."""
    return (home_dir or home()) / "objects"


def deployment(name: str | None = None) -> str:
    """``name``, else ``IMGASSETS_DEPLOYMENT`` (default ``local``). Raises ``ValueError`` naming
    the variable for a name not in :data:`DEPLOYMENTS`."""
    name = name or os.environ.get(DEPLOYMENT_ENV, "local")
    if name not in DEPLOYMENTS:
        raise ValueError(f"unknown {DEPLOYMENT_ENV} {name!r}: expected one of {', '.join(DEPLOYMENTS)}")
    return name


def s3_settings(**overrides) -> dict:
    """The S3 object store of the production deployments, secrets excepted: ``endpoint``
    (``host:port``, ``IMGASSETS_S3_ENDPOINT``), ``bucket`` (``IMGASSETS_S3_BUCKET``, default
    ``imgassets``), ``secure`` (``IMGASSETS_S3_SECURE``: ``true``/``false``, default false),
    ``region`` (``IMGASSETS_S3_REGION``, optional); ``overrides`` replace them. The keys are read
    where they are used (``IMGASSETS_S3_ACCESS_KEY``, ``IMGASSETS_S3_SECRET_KEY``), so that Dagster
    can hold them as ``EnvVar``. Raises ``ValueError`` when no endpoint is set."""
    values = {
        "endpoint": os.environ.get(S3_ENDPOINT_ENV),
        "bucket": os.environ.get("IMGASSETS_S3_BUCKET", "imgassets"),
        "secure": os.environ.get("IMGASSETS_S3_SECURE", "false").lower() in ("1", "true", "yes"),
        "region": os.environ.get("IMGASSETS_S3_REGION") or None,
        **overrides,
    }
    if not values["endpoint"]:
        raise ValueError(f"{DEPLOYMENT_ENV}=production needs {S3_ENDPOINT_ENV} (host:port of MinIO or S3)")
    return values
