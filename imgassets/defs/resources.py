"""Resources: the shared drive, the object store and the local working directories."""


import abc
import shutil
import tempfile
from pathlib import Path

import dagster as dg
import pydantic

from imgassets import settings
from imgassets.core.drive.walk import scientist_folders
from imgassets.core.store.base import ObjectStore
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning.archive import ARCHIVE_MODES, COPY


class SharedDrive(dg.ConfigurableResource):
    """The shared drive: ``root/<scientist>/**``. ``archive_mode``: ``copy`` (default: sources are
    only ever read) or ``move`` (sources removed once verified in the store, see
    :mod:`imgassets.core.versioning.archive`). ``settle_seconds``: how long a changed folder must stay
    unchanged before the sensor ingests it (:mod:`imgassets.core.drive.change_detection`)."""

    root: str
    archive_mode: str = COPY
    settle_seconds: int = 30

    @pydantic.field_validator("archive_mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in ARCHIVE_MODES:
            raise ValueError(f"archive_mode must be one of {', '.join(ARCHIVE_MODES)}, got {value!r}")
        return value

    def folder(self, scientist: str) -> Path:
        """The folder of one scientist (partition key); raises ``dagster.Failure`` when missing."""
        folder = Path(self.root) / scientist
        if not folder.is_dir():  # a folder that vanished between listing and reading
            raise dg.Failure(f"scientist folder {folder} does not exist on the shared drive {self.root}")
        return folder

    def scientist_folders(self) -> tuple[list[str], list[tuple[str, str]]]:
        """(scientist names, sorted; skipped top-level folders as ``(name, reason)``): see
        :func:`imgassets.core.drive.walk.scientist_folders`."""
        return scientist_folders(self.root)


class ObjectStoreResource(dg.ConfigurableResource, abc.ABC):
    """An object store (:mod:`imgassets.core.store.base`); ``upload_workers`` threads upload
    (default: what suits the store, its ``upload_workers``). Abstract: a deployment picks
    :class:`LocalObjectStoreResource` or :class:`S3ObjectStoreResource`. The store client is
    built once per resource instance (one per run or step, as Dagster initializes resources), not
    on every :meth:`get_store` call: an S3 bucket is checked, and its connection pool made, once."""

    upload_workers: int | None = None
    _store: ObjectStore | None = pydantic.PrivateAttr(default=None)

    def get_store(self) -> ObjectStore:
        """The store client, built on the first call (:meth:`build_store`)."""
        if self._store is None:
            self._store = self.build_store()
        return self._store

    @abc.abstractmethod
    def build_store(self) -> ObjectStore:
        """A new client of this deployment's store."""


class LocalObjectStoreResource(ObjectStoreResource):
    """The embedded object store: a directory, ``<home>/objects``. Needs no server."""

    home: str

    def build_store(self) -> ObjectStore:
        return LocalObjectStore(settings.local_objects(Path(self.home)))


class S3ObjectStoreResource(ObjectStoreResource):
    """MinIO / S3 (``endpoint`` as ``host:port``); the connection pool is sized to ``upload_workers``.
    Configure the keys with ``dagster.EnvVar`` so they never appear in the UI."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str = "imgassets"
    secure: bool = False
    region: str | None = None

    def build_store(self) -> ObjectStore:
        from imgassets.core.store.s3 import DEFAULT_UPLOAD_WORKERS, S3ObjectStore

        return S3ObjectStore(self.endpoint, self.access_key, self.secret_key, self.bucket, secure=self.secure,
                             region=self.region, max_connections=self.upload_workers or DEFAULT_UPLOAD_WORKERS)


class WorkDirs(dg.ConfigurableResource):
    """Local scratch under the imgassets home: staged datasets, their cache and training runs.

    ``private_scratch``: every process that executes steps gets its own scratch folder
    (``<home>/scratch/<run id prefix>-XXXXXXXX/``), created when the resource is set up and deleted
    when it is torn down. Under the multiprocess or Kubernetes executor each step is such a process,
    so a step can only see what it fetched itself: what a pod with an ``emptyDir`` sees. Without it,
    steps share ``<home>`` (and its cache) as processes on one machine can."""

    home: str
    private_scratch: bool = False
    _scratch: Path | None = pydantic.PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.private_scratch:
            base = Path(self.home) / "scratch"
            base.mkdir(parents=True, exist_ok=True)
            self._scratch = Path(tempfile.mkdtemp(prefix=f"{(context.run_id or 'run')[:8]}-", dir=base))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    @property
    def root(self) -> Path:
        """This process's scratch folder (``home`` unless ``private_scratch``)."""
        return self._scratch or Path(self.home)

    def staging(self, dataset_id: str) -> Path:
        """Where a dataset version is staged in the Ultralytics layout."""
        return self.root / "staging" / dataset_id

    @property
    def cache(self) -> Path:
        """The content-addressed cache that staged datasets hardlink into."""
        return self.root / "cache"

    def training(self, run_id: str) -> Path:
        """Where one training run writes its outputs."""
        return self.root / "training" / run_id
