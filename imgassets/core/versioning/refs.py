"""Refs: names that point at versions, and the log of every version built.

| key | what |
|---|---|
| ``refs/datasets/latest`` | the id of the dataset the last ``training_dataset`` built |
| ``refs/models/champion`` | the champion (:mod:`imgassets.core.training.models`) |
| ``refs/log/datasets/<stamp>-<id>`` | one entry per dataset built, in time order |
| ``refs/log/snapshots/<scientist>/<stamp>-<id>`` | one entry per snapshot a scientist's run committed |

A ref is replaced whole (``put`` is atomic), never edited; a log is append-only, one object per
entry (no read-modify-write, so two writers never lose an entry). A version's history is its log
with consecutive repeats collapsed: ``latest~1`` is the version before the latest.
"""

from __future__ import annotations

import json
import re
import time

from imgassets.core.store.base import ObjectNotFoundError, ObjectStore
from imgassets.core.store.keys import (
    DATASET_LOG_PREFIX,
    LATEST_DATASET_REF,
    log_entry,
    log_entry_key,
    snapshot_log_prefix,
)
from imgassets.core.store.sealed import get_record, put_record
from imgassets.core.versioning.dataset_store import DATASET_ID_PATTERN
from imgassets.core.versioning.manifest import ManifestError


def write_latest_ref(store: ObjectStore, dataset_id: str) -> None:
    """Point ``refs/datasets/latest`` at ``dataset_id``."""
    put_record(store, LATEST_DATASET_REF, {"dataset_id": dataset_id})


RELATIVE_REF = re.compile(r"^latest(?:~(\d+))?$")
"""``latest`` or ``latest~N`` (N versions before the latest)."""


def log_version(store: ObjectStore, prefix: str, version_id: str, stamp_ns: int | None = None) -> str:
    """Append ``version_id`` to the log at ``prefix`` (:data:`DATASET_LOG_PREFIX` or
    :func:`snapshot_log_prefix`); returns the entry's key."""
    key = log_entry_key(prefix, stamp_ns if stamp_ns is not None else time.time_ns(), version_id)
    store.put_bytes(key, json.dumps({"id": version_id}).encode())
    return key


def log_entries(store: ObjectStore, prefix: str) -> list[tuple[str, str]]:
    """``(key, version id)`` of every entry of the log at ``prefix``, oldest first."""
    return [(key, entry[1]) for key in sorted(store.list_keys(prefix)) if (entry := log_entry(key))]


def history(store: ObjectStore, prefix: str) -> list[str]:
    """The versions of the log at ``prefix``, oldest first, consecutive repeats collapsed (a run
    that rebuilt the same version is one step)."""
    ids: list[str] = []
    for _, version_id in log_entries(store, prefix):
        if not ids or ids[-1] != version_id:
            ids.append(version_id)
    return ids


def dataset_history(store: ObjectStore) -> list[str]:
    """Dataset ids in the order they were built, oldest first (:func:`history`)."""
    return history(store, DATASET_LOG_PREFIX)


def snapshot_history(store: ObjectStore, scientist: str) -> list[str]:
    """The scientist's snapshot ids in the order they were committed, oldest first."""
    return history(store, snapshot_log_prefix(scientist))


def resolve_relative(versions: list[str], ref: str, history_name: str) -> str:
    """``latest~N`` in ``versions`` (oldest first). Raises :class:`ManifestError` naming
    ``history_name`` ("the dataset history") when the history is shorter."""
    back = int(RELATIVE_REF.match(ref).group(1) or 0)
    if back >= len(versions):
        raise ManifestError(f"{ref}: {history_name} holds {len(versions)} version(s)")
    return versions[-1 - back]


def resolve_dataset_id(store: ObjectStore, ref: str) -> str:
    """``latest`` -> the id in ``refs/datasets/latest``; ``latest~N`` -> the dataset built N
    versions before it (:func:`dataset_history`); a dataset id is returned as it is. Raises
    :class:`~imgassets.core.versioning.manifest.ManifestError` for anything else (``../../etc``), or
    a ref that does not hold a dataset id."""
    if RELATIVE_REF.match(ref) and ref != "latest":
        return resolve_relative(dataset_history(store), ref, "the dataset history")
    if ref != "latest":
        if not DATASET_ID_PATTERN.match(ref):
            raise ManifestError(f"{ref!r} is not a dataset id (16 hex digits), 'latest' or 'latest~N'")
        return ref
    try:
        dataset_id = get_record(store, LATEST_DATASET_REF).get("dataset_id")
    except ObjectNotFoundError:
        raise ObjectNotFoundError(f"no dataset has been built yet ({LATEST_DATASET_REF} not found in {store.describe()})") from None
    if not isinstance(dataset_id, str) or not DATASET_ID_PATTERN.match(dataset_id):
        raise ManifestError(f"{LATEST_DATASET_REF} in {store.describe()} does not hold a dataset id")
    return dataset_id


SNAPSHOT_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")


def resolve_snapshot_id(store: ObjectStore, scientist: str, ref: str) -> str:
    """A snapshot of ``scientist``: ``latest`` or ``latest~N`` through its log
    (:func:`snapshot_history`), or a snapshot id as it is. Raises :class:`ManifestError`."""
    if RELATIVE_REF.match(ref):
        return resolve_relative(snapshot_history(store, scientist), ref, f"the snapshot history of {scientist}")
    if not SNAPSHOT_ID_PATTERN.match(ref):
        raise ManifestError(f"{ref!r} is not a snapshot id (16 hex digits), 'latest' or 'latest~N'")
    return ref
