"""Sealed records: the small JSON objects that change what trains or what is served, each stored with
the SHA-256 of its own content and checked on every read.

A manifest is content-addressed (its id is the hash of what it holds, checked when it is read). The
records beside the manifests are not all addressable that way (the champion ref is replaced whole
when a challenger wins; a review file belongs to a scientist, not to its content), so each is
*sealed*: written as its fields plus :data:`SEAL_FIELD`, the hex SHA-256 of the fields' JSON as
Python's ``json.dumps`` writes it with keys sorted, no spaces and UTF-8 text (deterministic for the
strings, numbers, lists and objects these records hold). A record whose seal is missing or does not match
what it holds was altered after it was written (by hand, by a tool, by a disk) and is refused with
:class:`TamperedRecordError`, naming its key; it is never used as it is.

The sealed records (keys in :mod:`imgassets.core.store.keys`): retractions (also content-addressed by
their id), the champion ref, the latest-dataset ref, departed-folder notes, model records and
benchmark scores, label review files, move mode's archive logs, labeling queues and the pre-annotations
handed out (:func:`sealed_keys`).
"""

from __future__ import annotations

import hashlib
import json

from imgassets.core.store.base import ObjectStore
from imgassets.errors import ImgassetsError

SEAL_FIELD = "record_sha256"


class TamperedRecordError(ImgassetsError, ValueError):
    """A stored record that is not JSON, not an object, has no seal, or whose seal does not match
    its content; the message names the key and says which."""


def _canonical(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_seal(fields: dict) -> str:
    """Hex SHA-256 of ``fields``' canonical JSON (see the module docstring; a score that is not a
    number is written ``NaN`` as Python's ``json`` does, and reads back the same)."""
    return hashlib.sha256(_canonical(fields)).hexdigest()


def sealed_bytes(fields: dict) -> bytes:
    """``fields`` with their seal, as the indented UTF-8 JSON that is stored."""
    if SEAL_FIELD in fields:
        raise ValueError(f"a record's own field must not be named {SEAL_FIELD!r}")
    return json.dumps({**fields, SEAL_FIELD: record_seal(fields)}, indent=1, sort_keys=True, ensure_ascii=False).encode()


def unseal(data: bytes, key: str) -> dict:
    """The fields of the sealed record ``data`` stored at ``key``, its seal checked and removed.
    Raises :class:`TamperedRecordError` naming ``key``."""
    try:
        record = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise TamperedRecordError(f"{key}: not a readable record (not JSON: {exc}); it was altered or "
                                  "truncated after it was written") from None
    if not isinstance(record, dict):
        raise TamperedRecordError(f"{key}: not a readable record (a JSON {type(record).__name__}, not an object); "
                                  "it was altered after it was written")
    seal = record.pop(SEAL_FIELD, None)
    if seal is None:
        raise TamperedRecordError(f"{key}: the record carries no {SEAL_FIELD} (written by hand, by a tool, or by an "
                                  "imgassets from before records were sealed: for such a store, "
                                  "`python -m imgassets.cli.upgrade` seals its records once): refused")
    if record_seal(record) != seal:
        raise TamperedRecordError(f"{key}: the record's content does not match its {SEAL_FIELD} "
                                  "(altered after it was written): refused")
    return record


def sealed_keys(store: ObjectStore) -> list[str]:
    """The keys of every record this module seals (module docstring), by one listing per prefix."""
    from imgassets.core.store import keys

    found = [k for k in (keys.LATEST_DATASET_REF, keys.CHAMPION_REF) if store.exists(k)]
    for prefix in (keys.DEPARTED_PREFIX, keys.RETRACTIONS_PREFIX, keys.REVIEWS_PREFIX, keys.ARCHIVE_PREFIX):
        found += store.list_keys(prefix)
    found += [k for k in store.list_keys(keys.MODELS_PREFIX) if k.endswith(("/model.json", "/benchmark.json"))]
    found += [k for k in store.list_keys(keys.LABELING_PREFIX) if k.endswith(".json")]
    return sorted(found)


def seal_unsealed(store: ObjectStore) -> list[str]:
    """Seal every record of :func:`sealed_keys` written before records were sealed (a JSON object
    without :data:`SEAL_FIELD`); return their keys. An operator's one-time upgrade of a store made by
    an older imgassets: it vouches for those records as they are now, so run it on a store you
    trust; records already sealed, or not JSON objects, are left as they are."""
    sealed = []
    for key in sealed_keys(store):
        try:
            record = json.loads(store.get_bytes(key))
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict) and SEAL_FIELD not in record:
            put_record(store, key, record)
            sealed.append(key)
    return sealed


def put_record(store: ObjectStore, key: str, fields: dict) -> None:
    """Store ``fields`` sealed at ``key`` (replacing what was there)."""
    store.put_bytes(key, sealed_bytes(fields))


def get_record(store: ObjectStore, key: str) -> dict:
    """The fields of the sealed record at ``key`` (:func:`unseal`). Raises
    :class:`~imgassets.core.store.base.ObjectNotFoundError` when there is none,
    :class:`TamperedRecordError` when it was altered."""
    return unseal(store.get_bytes(key), key)
