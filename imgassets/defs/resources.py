"""Resources: the shared drive, the object store and the local working directories."""


from pathlib import Path

import dagster as dg

from imgassets.core.drive import list_scientists
from imgassets.core.object_store import LocalObjectStore, ObjectStore


class SharedDrive(dg.ConfigurableResource):
    """The shared drive: ``root/<scientist>/**``. Only ever read."""

    root: str

    def folder(self, scientist: str) -> Path:
        """The folder of one scientist (partition key); raises ``dagster.Failure`` when missing."""
        folder = Path(self.root) / scientist
        if not folder.is_dir():
            raise dg.Failure(f"scientist folder {folder} does not exist on the shared drive {self.root}")
        return folder

    def scientists(self) -> list[str]:
        """Top-level folder names under ``root``, sorted."""
        return list_scientists(self.root)


class LocalObjectStoreResource(dg.ConfigurableResource):
    """The embedded object store: a directory, ``<home>/objects``. Needs no server."""

    home: str

    def get_store(self) -> ObjectStore:
        return LocalObjectStore(Path(self.home) / "objects")


class WorkDirs(dg.ConfigurableResource):
    """Local working directories under the imgassets home: staged datasets and training runs."""

    home: str

    def staging(self, dataset_id: str) -> Path:
        """Where a dataset version is staged in the Ultralytics layout."""
        return Path(self.home) / "staging" / dataset_id

    @property
    def cache(self) -> Path:
        """The content-addressed cache that staged datasets hardlink into."""
        return Path(self.home) / "cache"

    def training(self, run_id: str) -> Path:
        """Where one training run writes its outputs."""
        return Path(self.home) / "training" / run_id
