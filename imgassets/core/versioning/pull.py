"""Pulling a dataset version to local disk: what a training container runs
(``imgassets pull DATASET_ID|latest DEST``).

1. resolve ``latest`` (or ``latest~N``) to a dataset id (:mod:`imgassets.core.versioning.refs`);
2. read ``datasets/<id>/manifest.parquet``, verified against its id;
3. make sure the verified cache (:mod:`imgassets.core.versioning.pull_cache`) holds every image:
   missing objects are downloaded in parallel and checked against their SHA-256 before they are kept;
4. place the version in DEST (:mod:`imgassets.core.versioning.checkout`), with Ultralytics' label
   caches (:mod:`imgassets.core.versioning.ultralytics_cache`).

A warm pull is stats and hardlinks only (see ``benchmarks/versus_tools.py``).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc

from imgassets.core.images.inspect import SUPPORTED_FORMATS
from imgassets.core.store.base import ObjectStore
from imgassets.core.store.keys import content_key
from imgassets.core.versioning.checkout import DEFAULT_PULL_WORKERS, PullResult, materialize_dataset
from imgassets.core.versioning.dataset_store import load_dataset
from imgassets.core.versioning.refs import resolve_dataset_id

__all__ = ["PullResult", "fetch_validation_image", "pull_dataset"]


def pull_dataset(store: ObjectStore, ref: str, dest: str | Path, cache_dir: str | Path,
                 workers: int = DEFAULT_PULL_WORKERS, verify: bool = False, show_progress: bool = False) -> PullResult:
    """Pull dataset ``ref`` (an id or ``latest``) into ``dest`` (steps 1-4 of the module docstring).

    Raises ``ObjectNotFoundError`` naming what is missing, ``IntegrityError`` for corrupt objects.
    """
    dataset = load_dataset(store, resolve_dataset_id(store, ref))
    return materialize_dataset(store, dataset, dest, cache_dir, workers, verify, show_progress)


def fetch_validation_image(store: ObjectStore, dataset_id: str, folder: str | Path) -> Path | None:
    """The dataset's first validation image (by content hash), fetched from the store (verified
    against its hash) into ``folder`` under its staged name: what a step that only needs one image
    (the weights check) fetches instead of a pull. ``None`` when val is empty."""
    table = load_dataset(store, dataset_id).table
    val = table.filter(pc.equal(table.column("split"), "val")).sort_by("sha256")
    if not len(val):
        return None
    sha, fmt = val.column("sha256")[0].as_py(), val.column("format")[0].as_py()
    image = Path(folder) / f"{sha}.{SUPPORTED_FORMATS[fmt]}"
    image.write_bytes(store.get_bytes(content_key(sha)))
    return image
