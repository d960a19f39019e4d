"""The object store interface (:class:`ObjectStore`) and its errors.

Keys are POSIX-style strings built by :mod:`imgassets.core.store.keys`. Every implementation
(:mod:`imgassets.core.store.local`, :mod:`imgassets.core.store.s3`) has the same behaviour:

* ``put_*`` is atomic: a reader sees either no object or the whole object, never a partial one;
  ``sha256``, when given, is stored with the object (S3 user metadata);
* ``exists`` / ``stat`` never download; ``list_objects`` gives each key with its size and
  modification time in one listing (what garbage collection reads);
* ``touch`` renews an existing object's modification time ("freshening", as git does before its
  gc): a commit that reuses an object instead of uploading it touches it, so a garbage collection
  running at that moment, which spares objects younger than its grace period, spares it;
* ``get_*`` raises :class:`ObjectNotFoundError` naming the key when it is missing, and
  :class:`IntegrityError` when the bytes read do not have the SHA-256 the object is known by (its
  content-addressed key, or the ``sha256`` stored with it): a corrupted object is never returned;
* every other failure is an :class:`ObjectStoreError` whose message names the store (directory, or
  endpoint and bucket) and never a secret.

Contract tests (``imgassets_tests/core/store/test_object_store_contract.py``) run every behaviour against
each implementation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from imgassets.core.store.hashing import sha256_bytes
from imgassets.errors import ImgassetsError


class ObjectStoreError(ImgassetsError, RuntimeError):
    """An object store failure; the message names the store and the operation, never a secret."""


class ObjectNotFoundError(ObjectStoreError, KeyError):
    """Raised when a key is not in the store; the message names the store and the key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class IntegrityError(ObjectStoreError):
    """The bytes of an object do not match the SHA-256 it is known by."""


def verify_sha256(store_description: str, key: str, data: bytes, expected: str | None) -> bytes:
    """Return ``data`` when ``expected`` is ``None`` or its SHA-256; else raise :class:`IntegrityError`."""
    if expected is not None:
        actual = sha256_bytes(data)
        if actual != expected:
            raise IntegrityError(f"{key} in {store_description}: content has SHA-256 {actual[:12]}…, expected {expected[:12]}…")
    return data


@dataclass(frozen=True)
class ObjectStat:
    """Size in bytes of a stored object and its modification time (seconds since the epoch, UTC)."""

    key: str
    size: int
    modified: float = 0.0


@dataclass(frozen=True)
class ObjectInfo:
    """A listed object: key, size in bytes, modification time (seconds since the epoch, UTC)."""

    key: str
    size: int
    modified: float


FRESH_ENOUGH_S = 3600.0
"""``touch`` leaves an object modified less than this many seconds ago as it is (one request, not two)."""


class ObjectStore(Protocol):
    """What every object store offers; see the module docstring for the guarantees."""

    upload_workers: int
    """Upload threads that suit the store (:func:`imgassets.core.versioning.snapshot.upload_objects`): a
    local directory, the cores (more threads only contend for the GIL around each ``stat``, which
    made a snapshot of unchanged objects twice as slow at 8 threads on 2 cores); S3, one per
    pooled connection (concurrent requests)."""

    def describe(self) -> str:
        """A human-readable location (directory, or endpoint and bucket), never secrets."""

    def exists(self, key: str) -> bool: ...

    def stat(self, key: str) -> ObjectStat: ...

    def put_file(self, key: str, path: str | Path, sha256: str | None = None) -> None: ...

    def put_bytes(self, key: str, data: bytes, sha256: str | None = None) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_file(self, key: str, dest: str | Path) -> None: ...

    def list_keys(self, prefix: str) -> Iterator[str]: ...

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` with its size and modification time, sorted by key."""

    def touch(self, key: str, fresh_enough_s: float = FRESH_ENOUGH_S) -> bool:
        """Renew ``key``'s modification time unless it is younger than ``fresh_enough_s``; return
        whether the object exists (``False``: it must be uploaded)."""

    def reuse(self, key: str, sha256: str) -> bool:
        """Whether ``key`` holds an intact copy of the content ``sha256``, freshened as :meth:`touch`
        freshens it; ``False`` when it is missing or damaged, and the caller uploads the good bytes,
        which replace it. Local store: the file is hashed again; S3: the SHA-256 recorded at upload
        (user metadata) is compared, no byte is read (the server keeps what it acknowledged)."""

    def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens when it does not exist). Scratch keys (the sensor's
        listings); content objects and manifests only through garbage collection
        (:mod:`imgassets.core.versioning.gc`)."""
