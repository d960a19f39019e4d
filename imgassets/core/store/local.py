"""The embedded object store: a local directory (``<home>/objects``), no server needed. Behaviour:
:mod:`imgassets.core.store.base`."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from imgassets.core.store.atomic import TMP_PREFIX, atomic_path
from imgassets.core.store.base import (
    FRESH_ENOUGH_S,
    IntegrityError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStat,
    verify_sha256,
)
from imgassets.core.store.hashing import sha256_file
from imgassets.core.store.keys import sha256_of_key


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
            info = os.stat(self._file(key))
            return ObjectStat(key=key, size=info.st_size, modified=info.st_mtime)
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

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """One ``os.scandir`` walk under ``prefix`` (each entry's stat comes with it)."""
        base = self._file(prefix.rstrip("/")) if prefix.strip("/") else self._root
        start = len(self._root) + 1
        found: list[ObjectInfo] = []
        stack = [base]
        while stack:
            try:
                entries = os.scandir(stack.pop())
            except (FileNotFoundError, NotADirectoryError):
                continue
            with entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False) and not entry.name.startswith(TMP_PREFIX):
                        info = entry.stat(follow_symlinks=False)
                        found.append(ObjectInfo(entry.path[start:], info.st_size, info.st_mtime))
        found.sort(key=lambda o: o.key)
        yield from found

    def touch(self, key: str, fresh_enough_s: float = FRESH_ENOUGH_S) -> bool:
        path = self._file(key)
        try:
            if time.time() - os.stat(path).st_mtime >= fresh_enough_s:
                os.utime(path)
            return True
        except FileNotFoundError:
            return False

    def reuse(self, key: str, sha256: str) -> bool:
        try:
            digest = sha256_file(self._file(key))
        except (FileNotFoundError, IsADirectoryError):
            return False
        return digest == sha256 and self.touch(key)

    def delete(self, key: str) -> None:
        try:
            os.remove(self._file(key))
        except FileNotFoundError:
            pass
