"""Every ``IMGASSETS_*`` environment variable, read when a function here is called (never at
import), with its default. No Dagster import: the command line's ``pull``, ``lineage`` and
``models`` open the object store from these without loading Dagster.

| variable | default | what |
|---|---|---|
| ``IMGASSETS_HOME`` | ``~/.imgassets`` | local object store (``objects/``), Dagster instance (``dagster/``), staged datasets, Dagster's stored values |
| ``IMGASSETS_SHARED_ROOT`` | ``<home>/demo-drive`` | the shared drive, one folder per scientist |
| ``IMGASSETS_DEPLOYMENT`` | ``local`` | ``local``, ``production`` or ``kubernetes`` (:mod:`imgassets.defs.deployment`) |
| ``IMGASSETS_S3_ENDPOINT`` | (required in production) | ``host:port`` of MinIO or S3 |
| ``IMGASSETS_S3_BUCKET`` | ``imgassets`` | the bucket |
| ``IMGASSETS_S3_SECURE`` | ``false`` | HTTPS |
| ``IMGASSETS_S3_REGION`` | none | the region, when the store wants one |
| ``IMGASSETS_S3_ACCESS_KEY``, ``IMGASSETS_S3_SECRET_KEY`` | (required in production) | read where used; ``EnvVar`` in Dagster |
| ``IMGASSETS_ARCHIVE_MODE`` | ``copy`` | ``copy`` or ``move`` (:mod:`imgassets.core.versioning.archive`) |
| ``IMGASSETS_SETTLE_SECONDS`` | 30 | how long a changed folder must stay unchanged before the sensor ingests it |
| ``IMGASSETS_SENSOR_INTERVAL`` | 30 | seconds between shared-drive sensor ticks |
| ``IMGASSETS_DRIVE_SENSOR`` | ``running`` | ``running`` or ``stopped``: the sensor's default status |
| ``IMGASSETS_AUTOMATION_INTERVAL`` | 30 | seconds between evaluations of the training automation |
| ``IMGASSETS_TRAINING_PRESET`` | ``ultralytics`` | the training defaults of runs launched without a config (the automation, the UI's launchpad): ``ultralytics``, ``demo`` or ``smoke`` (:data:`imgassets.core.training.train.PRESETS`) |
| ``IMGASSETS_REVIEW_MIN_CONFIDENCE`` | 0.5 | the confidence from which a prediction counts in the model-assisted label review |
| ``IMGASSETS_REVIEW_FOLDS`` | 0 | 2 or more: the label review also judges every train image, by k-fold out-of-sample models (k trainings more) |
| ``IMGASSETS_REVIEW_MIN_MAP50`` | 0.5 | the benchmark mAP50 below which a model is too weak to review labels |
| ``IMGASSETS_CHAMPION_MARGIN`` | 0.01 | largest drop of benchmark mAP50-95 below the champion's (same images) at which a challenger is still promoted (``beats_champion``) |
| ``IMGASSETS_PROTECTED_SLICES`` | none | comma-separated benchmark slices (``scientist:ana``, ``class:person``, ``size:small``, ``camera:<make model>``, ``quality:dark``) on which a regression blocks promotion (:mod:`imgassets.core.training.slices`) |
| ``IMGASSETS_MLFLOW_TRACKING_URI`` | none (off) | an MLflow tracking server: each training is an MLflow run, the champion a registered model version with the ``champion`` alias (:mod:`imgassets.core.training.tracking`; needs the ``mlflow`` extra) |
| ``IMGASSETS_LABELING_TOP`` | 100 | images each scientist's labeling queue ranks (the budget; :mod:`imgassets.core.labeling.queue`) |
| ``IMGASSETS_LABELING_STRATEGY`` | ``uncertainty`` | how the queue ranks: ``uncertainty`` (the champion's uncertainty with diversity) or ``random`` |
| ``IMGASSETS_UNLABELLED_FOLDERS`` | none | comma-separated globs over ``<scientist>/<folder>`` (``ana/new_capture``, ``*/incoming*``): their images without boxes are unlabelled, not background (:mod:`imgassets.core.labels.unlabelled`) |
| ``IMGASSETS_LABEL_STUDIO_URL`` | none | the Label Studio server ``imgassets label push`` talks to (``--url`` overrides) |
| ``IMGASSETS_LABEL_STUDIO_TOKEN`` | (required by ``label push``) | its API token: a personal access token or a legacy token |
| ``IMGASSETS_CLASS_REGISTRY`` | none | path of the class registry YAML (:mod:`imgassets.core.labels.class_registry`); without it, names are used as written with stable ids |
| ``IMGASSETS_DEPARTED_POLICY`` | ``keep`` | a scientist folder gone from the drive: ``keep`` its last snapshot, or ``retract`` it after the grace period (:mod:`imgassets.core.versioning.departed`) |
| ``IMGASSETS_DEPARTED_GRACE_DAYS`` | 7 | days a folder may be missing before ``retract`` applies |
| ``IMGASSETS_GC_KEEP_DATASETS``, ``IMGASSETS_GC_KEEP_SNAPSHOTS`` | 5, 5 | garbage collection keeps the last N datasets, and the last N snapshots of each scientist (:mod:`imgassets.core.versioning.gc`) |
| ``IMGASSETS_GC_GRACE_HOURS`` | 24 | garbage collection never deletes an object younger than this |
| ``IMGASSETS_BURST_SECONDS`` | 2 | images of one camera taken within this many seconds of each other are one burst, kept in one split (0: off; :mod:`imgassets.core.versioning.sequences`) |
| ``IMGASSETS_SESSION_FOLDERS`` | none | a glob over folder paths (``recordings/*``, ``*``): the images directly in a matching folder are one recording session, kept in one split |
| ``IMGASSETS_IMAGE`` | ``imgassets:latest`` | the container image of Kubernetes step pods |
| ``DAGSTER_HOME`` | ``<home>/dagster`` | Dagster's instance; an existing one (with its ``dagster.yaml``) is used as it is |
| ``IMGASSETS_K8S_SECRET`` | ``imgassets-secrets`` | the Kubernetes secret holding the S3 keys and the Postgres password |
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from imgassets.errors import ImgassetsError


class SettingsError(ImgassetsError, ValueError):
    """An ``IMGASSETS_*`` variable whose value cannot work; the message names the variable. The
    command line reports it as bad configuration (exit code 2)."""

HOME_ENV = "IMGASSETS_HOME"
DAGSTER_HOME_ENV = "DAGSTER_HOME"
ARCHIVE_MODE_ENV = "IMGASSETS_ARCHIVE_MODE"
SETTLE_SECONDS_ENV = "IMGASSETS_SETTLE_SECONDS"
SENSOR_INTERVAL_ENV = "IMGASSETS_SENSOR_INTERVAL"
DRIVE_SENSOR_ENV = "IMGASSETS_DRIVE_SENSOR"
AUTOMATION_INTERVAL_ENV = "IMGASSETS_AUTOMATION_INTERVAL"
CHAMPION_MARGIN_ENV = "IMGASSETS_CHAMPION_MARGIN"
LABELING_TOP_ENV = "IMGASSETS_LABELING_TOP"
PROTECTED_SLICES_ENV = "IMGASSETS_PROTECTED_SLICES"
MLFLOW_TRACKING_URI_ENV = "IMGASSETS_MLFLOW_TRACKING_URI"
LABEL_STUDIO_URL_ENV = "IMGASSETS_LABEL_STUDIO_URL"
UNLABELLED_FOLDERS_ENV = "IMGASSETS_UNLABELLED_FOLDERS"
LABEL_STUDIO_TOKEN_ENV = "IMGASSETS_LABEL_STUDIO_TOKEN"
LABELING_STRATEGY_ENV = "IMGASSETS_LABELING_STRATEGY"
TRAINING_PRESET_ENV = "IMGASSETS_TRAINING_PRESET"
IMAGE_ENV = "IMGASSETS_IMAGE"
K8S_SECRET_ENV = "IMGASSETS_K8S_SECRET"
CLASS_REGISTRY_ENV = "IMGASSETS_CLASS_REGISTRY"
DEPARTED_POLICY_ENV = "IMGASSETS_DEPARTED_POLICY"
FORWARDED_TO_STEPS = ("IMGASSETS_DEPLOYMENT", "IMGASSETS_SHARED_ROOT", "IMGASSETS_HOME", "IMGASSETS_S3_ENDPOINT",
                      "IMGASSETS_S3_BUCKET", "IMGASSETS_S3_SECURE", "IMGASSETS_ARCHIVE_MODE", "IMGASSETS_CLASS_REGISTRY",
                      "IMGASSETS_DEPARTED_POLICY", "IMGASSETS_DEPARTED_GRACE_DAYS", "IMGASSETS_BURST_SECONDS",
                      "IMGASSETS_SESSION_FOLDERS", "IMGASSETS_PROTECTED_SLICES", "IMGASSETS_MLFLOW_TRACKING_URI")
"""The variables a step pod gets from the run (the keys come from the Kubernetes secret)."""
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
    """The Dagster instance directory: ``$DAGSTER_HOME`` when it is set and holds a ``dagster.yaml``
    (an existing instance, such as the production one on Postgres, whose UI then shows the runs),
    else ``dagster/`` inside the imgassets home."""
    existing = os.environ.get(DAGSTER_HOME_ENV)
    if existing and (Path(existing) / "dagster.yaml").is_file():
        return Path(existing).resolve()
    return (home_dir or home()) / "dagster"


def shared_roots_file(home_dir: Path | None = None) -> Path:
    """The shared drive roots this home has ingested, one absolute path a line: ``<home>/shared-roots``
    (written when a run or the UI starts; ``pull`` never writes inside any of them)."""
    return (home_dir or home()) / "shared-roots"


def local_objects(home_dir: Path | None = None) -> Path:
    """The embedded object store's directory: ``<home>/objects``."""
    return (home_dir or home()) / "objects"


def deployment(name: str | None = None) -> str:
    """``name``, else ``IMGASSETS_DEPLOYMENT`` (default ``local``). Raises ``ValueError`` naming
    the variable for a name not in :data:`DEPLOYMENTS`."""
    name = name or os.environ.get(DEPLOYMENT_ENV, "local")
    if name not in DEPLOYMENTS:
        raise SettingsError(f"unknown {DEPLOYMENT_ENV} {name!r}: expected one of {', '.join(DEPLOYMENTS)}")
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
        raise SettingsError(f"{DEPLOYMENT_ENV}=production needs {S3_ENDPOINT_ENV} (host:port of MinIO or S3)")
    return values


def _number(name: str, default: float, kind: type = int) -> float:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        number = kind(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise SettingsError(f"{name} must be a finite number, not {value!r}")
    return number


def archive_mode() -> str:
    """``IMGASSETS_ARCHIVE_MODE`` (default ``copy``; checked by the ``SharedDrive`` resource)."""
    return os.environ.get(ARCHIVE_MODE_ENV) or "copy"


def settle_seconds() -> int:
    """``IMGASSETS_SETTLE_SECONDS`` (default 30). Raises ``ValueError`` naming it when not a number."""
    return int(_number(SETTLE_SECONDS_ENV, 30))


def sensor_interval_seconds() -> int:
    """``IMGASSETS_SENSOR_INTERVAL`` (default 30)."""
    return int(_number(SENSOR_INTERVAL_ENV, 30))


def automation_interval_seconds() -> int:
    """``IMGASSETS_AUTOMATION_INTERVAL`` (default 30)."""
    return int(_number(AUTOMATION_INTERVAL_ENV, 30))


def drive_sensor_running() -> bool:
    """``IMGASSETS_DRIVE_SENSOR``: ``running`` (default) or ``stopped``. Raises ``ValueError``
    naming the variable for any other value."""
    value = (os.environ.get(DRIVE_SENSOR_ENV) or "running").strip().lower()
    if value not in ("running", "stopped"):
        raise SettingsError(f"{DRIVE_SENSOR_ENV} must be 'running' or 'stopped', not {value!r}")
    return value == "running"


def training_preset() -> str:
    """``IMGASSETS_TRAINING_PRESET`` (default ``ultralytics``), lower-cased."""
    return (os.environ.get(TRAINING_PRESET_ENV) or "ultralytics").strip().lower()


def review_settings() -> dict[str, float]:
    """``IMGASSETS_REVIEW_MIN_CONFIDENCE`` and ``IMGASSETS_REVIEW_MIN_MAP50`` (defaults 0.5 and 0.5),
    as the fields of :class:`imgassets.core.training.review.ReviewSettings`."""
    return {"min_confidence": float(_number("IMGASSETS_REVIEW_MIN_CONFIDENCE", 0.5, float)),
            "min_benchmark_map50": float(_number("IMGASSETS_REVIEW_MIN_MAP50", 0.5, float))}


def review_folds() -> int:
    """``IMGASSETS_REVIEW_FOLDS`` (default 0: the review judges val and benchmark images only)."""
    return int(_number("IMGASSETS_REVIEW_FOLDS", 0))


def labeling_top() -> int:
    """``IMGASSETS_LABELING_TOP`` (default 100): images each labeling queue ranks; at least 1."""
    top = int(_number(LABELING_TOP_ENV, 100))
    if top < 1:
        raise SettingsError(f"{LABELING_TOP_ENV}={top}: the queue's budget must be at least 1 image")
    return top


def labeling_strategy() -> str:
    """``IMGASSETS_LABELING_STRATEGY`` (default ``uncertainty``; or ``random``)."""
    value = os.environ.get(LABELING_STRATEGY_ENV) or "uncertainty"
    if value not in ("uncertainty", "random"):
        raise SettingsError(f"{LABELING_STRATEGY_ENV} must be 'uncertainty' or 'random', not {value!r}")
    return value


def unlabelled_folders() -> str | None:
    """``IMGASSETS_UNLABELLED_FOLDERS`` (none by default)."""
    return (os.environ.get(UNLABELLED_FOLDERS_ENV) or "").strip() or None


def label_studio_url() -> str | None:
    """``IMGASSETS_LABEL_STUDIO_URL`` (none by default)."""
    return os.environ.get(LABEL_STUDIO_URL_ENV) or None


def label_studio_token() -> str:
    """``IMGASSETS_LABEL_STUDIO_TOKEN``; raises :class:`SettingsError` naming it when unset."""
    token = os.environ.get(LABEL_STUDIO_TOKEN_ENV, "").strip()
    if not token:
        raise SettingsError(f"{LABEL_STUDIO_TOKEN_ENV} is not set: the API token of the Label Studio server "
                            "(Account & Settings > Personal Access Token)")
    return token


def champion_margin() -> float:
    """``IMGASSETS_CHAMPION_MARGIN`` (absolute benchmark mAP50-95, default 0.01)."""
    return float(_number(CHAMPION_MARGIN_ENV, 0.01, float))


def protected_slices() -> tuple[str, ...]:
    """``IMGASSETS_PROTECTED_SLICES`` (default none): ``kind:name`` slices whose regression blocks
    promotion. Raises :class:`SettingsError` for an entry without a kind."""
    entries = tuple(e.strip() for e in os.environ.get(PROTECTED_SLICES_ENV, "").split(",") if e.strip())
    kinds = ("all", "scientist", "class", "size", "camera", "quality", "class group")
    for entry in entries:
        if entry != "all" and entry.split(":", 1)[0] not in kinds:
            raise SettingsError(f"{PROTECTED_SLICES_ENV}: {entry!r} is not kind:name with a kind of {', '.join(kinds)}")
    return tuple("all:all" if e == "all" else e for e in entries)


def mlflow_tracking_uri() -> str | None:
    """``IMGASSETS_MLFLOW_TRACKING_URI`` (default none: no tracking)."""
    return os.environ.get(MLFLOW_TRACKING_URI_ENV) or None


def step_image() -> str:
    """``IMGASSETS_IMAGE`` (default ``imgassets:latest``)."""
    return os.environ.get(IMAGE_ENV) or "imgassets:latest"


def k8s_secret() -> str:
    """``IMGASSETS_K8S_SECRET`` (default ``imgassets-secrets``)."""
    return os.environ.get(K8S_SECRET_ENV) or "imgassets-secrets"


def class_registry_path() -> Path | None:
    """``IMGASSETS_CLASS_REGISTRY`` as a path, or ``None`` when unset."""
    value = os.environ.get(CLASS_REGISTRY_ENV)
    return Path(value).expanduser() if value else None


def departed_policy() -> tuple[str, float]:
    """``IMGASSETS_DEPARTED_POLICY`` (default ``keep``, lower-cased) and ``IMGASSETS_DEPARTED_GRACE_DAYS`` (default 7)."""
    return ((os.environ.get(DEPARTED_POLICY_ENV) or "keep").strip().lower(),
            float(_number("IMGASSETS_DEPARTED_GRACE_DAYS", 7, float)))


def gc_settings() -> dict[str, float]:
    """``keep_datasets``, ``keep_snapshots`` and ``grace_hours`` of garbage collection
    (``IMGASSETS_GC_KEEP_DATASETS``, ``IMGASSETS_GC_KEEP_SNAPSHOTS``: 5 each; ``IMGASSETS_GC_GRACE_HOURS``: 24)."""
    return {"keep_datasets": int(_number("IMGASSETS_GC_KEEP_DATASETS", 5)),
            "keep_snapshots": int(_number("IMGASSETS_GC_KEEP_SNAPSHOTS", 5)),
            "grace_hours": float(_number("IMGASSETS_GC_GRACE_HOURS", 24, float))}


def sequence_rules():
    """The rules linking frames of one burst or session (``IMGASSETS_BURST_SECONDS``: 2;
    ``IMGASSETS_SESSION_FOLDERS``: none), as :class:`imgassets.core.versioning.sequences.SequenceRules`.
    Raises ``ValueError`` naming the variable for a negative or non-numeric burst."""
    from imgassets.core.versioning.sequences import DEFAULT_BURST_SECONDS, SequenceRules

    burst = float(_number("IMGASSETS_BURST_SECONDS", DEFAULT_BURST_SECONDS, float))
    if burst < 0:
        raise SettingsError(f"IMGASSETS_BURST_SECONDS={burst:g}: must be 0 (off) or a number of seconds")
    return SequenceRules(burst, (os.environ.get("IMGASSETS_SESSION_FOLDERS") or "").strip() or None)
