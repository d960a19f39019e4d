"""Object store interface and the embedded local-directory implementation.

Keys are POSIX-style strings such as ``objects/sha256/ab/abcdef...``. Every implementation
(the local directory here, MinIO/S3 later) has the same behaviour:

* ``put_*`` is atomic: a reader sees either no object or the whole object, never a partial one;
  ``sha256``, when given, is stored with the object (S3 user metadata);
* ``exists`` / ``stat`` never download;
* ``get_*`` raises :class:`ObjectNotFoundError` naming the key when it is missing, and
  :class:`IntegrityError` when the bytes read do not have the SHA-256 the object is known by (its
  content-addressed key, or the ``sha256`` stored with it): a corrupted object is never returned;
* every other failure is an :class:`ObjectStoreError` whose message names the store (directory, or
  endpoint and bucket) and never a secret.

Contract tests (``imgassets_tests/test_object_store_contract.py``) run every behaviour against
each implementation.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from imgassets.core.store.atomic import TMP_PREFIX, atomic_path
from imgassets.core.store.hashing import sha256_bytes, sha256_file

CONTENT_PREFIX = "objects/sha256"



def content_key(sha256: str) -> str:
    """Content-addressed key of an object: ``objects/sha256/<first 2 hex>/<64 hex>``."""
    if len(sha256) != 64:
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return f"{CONTENT_PREFIX}/{sha256[:2]}/{sha256}"


def sha256_of_key(key: str) -> str | None:
    """The SHA-256 a content-addressed key names (``objects/sha256/ab/<64 hex>``), else ``None``."""
    prefix, _, name = key.rpartition("/")
    return name if prefix.startswith(CONTENT_PREFIX) and len(name) == 64 else None


class ObjectStoreError(RuntimeError):
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
    """Size in bytes of a stored object and the user metadata stored with it."""

    key: str
    size: int


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

    def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens when it does not exist). Only for scratch keys such as
        the sensor's listings: content objects and manifests are never deleted by imgassets."""


class LocalObjectStore:
    """Object store in a local directory: key ``a/b/c`` is the file ``<root>/a/b/c``.

    The embedded default: needs no server. Writes go to a temporary file in the same directory and
    are renamed into place (``os.replace`` is atomic on POSIX), so a crash never leaves a partial
    object under its final key.
    """

    upload_workers = max(1, min(4, os.cpu_count() or 1))
    """Upload threads that suit a local directory: the cores, at most 4 (:class:`ObjectStore`)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)
        self._made_dirs: set[str] = set()  # folders this instance created or found (no mkdir per object)

    def describe(self) -> str:
        return f"local object store at {self.root}"

    def _file(self, key: str) -> str:
        """The file holding ``key``; raises ``ValueError`` for a key that is empty, absolute or has
        an empty, ``.`` or ``..`` component."""
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in key.split("/")):
            raise ValueError(f"invalid object key {key!r}")
        return f"{self._root}/{key}"

    def _path(self, key: str) -> Path:
        return Path(self._file(key))

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._file(key))

    def stat(self, key: str) -> ObjectStat:
        try:
            return ObjectStat(key=key, size=self._path(key).stat().st_size)
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{key} not found in {self.describe()}") from None

    def _atomic_write(self, key: str, write) -> None:
        """Call ``write(handle)`` on a temporary file beside the object, then rename it into place.
        The temporary name is unique per process and thread (``.tmp-<pid>-<thread>-<name>``), so
        concurrent writers never share one; a crash leaves only a ``.tmp-`` file, never listed."""
        target = self._file(key)
        parent, _, name = target.rpartition("/")
        if parent not in self._made_dirs:
            os.makedirs(parent, exist_ok=True)
            self._made_dirs.add(parent)
        tmp = f"{parent}/.tmp-{os.getpid()}-{threading.get_ident()}-{name}"
        try:
            try:
                handle = open(tmp, "wb")  # noqa: SIM115 -- closed below
            except FileNotFoundError:  # the folder was removed since this instance saw it
                os.makedirs(parent, exist_ok=True)
                handle = open(tmp, "wb")  # noqa: SIM115
            with handle:
                write(handle)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: str | Path, sha256: str | None = None) -> None:
        """Copy the file at ``path`` in. ``sha256`` is not stored: a local object is verified by its
        content-addressed key."""
        with open(path, "rb") as source:
            self._atomic_write(key, lambda handle: shutil.copyfileobj(source, handle, 1 << 20))

    def put_bytes(self, key: str, data: bytes, sha256: str | None = None) -> None:
        self._atomic_write(key, lambda handle: handle.write(data))

    def get_bytes(self, key: str) -> bytes:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{key} not found in {self.describe()}") from None
        return verify_sha256(self.describe(), key, data, sha256_of_key(key))

    def get_file(self, key: str, dest: str | Path) -> None:
        """Copy the object to ``dest`` atomically.

        Never a hardlink: a consumer that rewrites its file in place (Ultralytics re-saves JPEGs it
        considers corrupt) would otherwise change the content-addressed object itself.
        """
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFoundError(f"{key} not found in {self.describe()}")
        with atomic_path(dest) as tmp:
            shutil.copyfile(source, tmp)
            expected = sha256_of_key(key)
            if expected is not None and sha256_file(tmp) != expected:
                raise IntegrityError(f"{key} in {self.describe()}: content does not match its SHA-256 key")

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith(TMP_PREFIX):
                yield path.relative_to(self.root).as_posix()

    def delete(self, key: str) -> None:
        try:
            os.remove(self._file(key))
        except FileNotFoundError:
            pass
