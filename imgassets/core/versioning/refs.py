"""Refs: names that point at versions, and the log of every version built.

| key | what |
|---|---|
| ``refs/datasets/latest`` | the id of the dataset the last ``training_dataset`` built |
| ``refs/models/champion`` | the champion (:mod:`imgassets.core.training.models`) |

A ref is the only mutable object in the store besides Dagster's values: it is replaced whole
(``put`` is atomic), never edited.
"""

from __future__ import annotations

import json

from imgassets.core.store.base import ObjectNotFoundError, ObjectStore
from imgassets.core.store.keys import LATEST_DATASET_REF
from imgassets.core.versioning.dataset import DATASET_ID_PATTERN, ManifestError


def write_latest_ref(store: ObjectStore, dataset_id: str) -> None:
    """Point ``refs/datasets/latest`` at ``dataset_id``."""
    store.put_bytes(LATEST_DATASET_REF, json.dumps({"dataset_id": dataset_id}).encode())


def resolve_dataset_id(store: ObjectStore, ref: str) -> str:
    """``latest`` -> the id in ``refs/datasets/latest``; a dataset id is returned as it is.
    Raises :class:`~imgassets.core.versioning.dataset.ManifestError` for anything else (``../../etc``), or
    a ref that does not hold a dataset id."""
    if ref != "latest":
        if not DATASET_ID_PATTERN.match(ref):
            raise ManifestError(f"{ref!r} is not a dataset id (16 hex digits) or 'latest'")
        return ref
    try:
        dataset_id = json.loads(store.get_bytes(LATEST_DATASET_REF)).get("dataset_id")
    except ObjectNotFoundError:
        raise ObjectNotFoundError(f"no dataset has been built yet ({LATEST_DATASET_REF} not found in {store.describe()})") from None
    except (ValueError, AttributeError):
        dataset_id = None
    if not isinstance(dataset_id, str) or not DATASET_ID_PATTERN.match(dataset_id):
        raise ManifestError(f"{LATEST_DATASET_REF} in {store.describe()} does not hold a dataset id")
    return dataset_id
