"""The pull's content-addressed cache on local disk (:class:`VerifiedCache`): what it trusts without
reading, and how it writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from imgassets.core.store.atomic import atomic_path
from imgassets.core.store.base import IntegrityError, ObjectNotFoundError, ObjectStore
from imgassets.core.store.hashing import sha256_bytes, sha256_file
from imgassets.core.store.keys import content_key

VERIFIED_MTIME_NS = 1_000_000_000  # 1970-01-01T00:00:01Z: "verified by imgassets"
VERIFIED_NO_EOI_MTIME_NS = 2_000_000_000  # verified, and a JPEG that does not end with FF D9
VERIFIED = (VERIFIED_MTIME_NS, VERIFIED_NO_EOI_MTIME_NS)


class VerifiedCache:
    """The pull's content-addressed cache in ``root``: images at ``sha256/<2>/<64>``, YOLO label
    texts at ``labels/<2>/<64>.txt`` (named by the SHA-256 of the text).

    The rules, all of them here:

    * A file is written only after its bytes were checked against its SHA-256, under a temporary
      name renamed into place (:mod:`imgassets.core.store.atomic`): the cache never holds a partial
      or wrong file under its name.
    * A checked file is made read-only and its mtime set to a sentinel: :data:`VERIFIED_MTIME_NS`,
      or :data:`VERIFIED_NO_EOI_MTIME_NS` for a JPEG that does not end with its EOI marker (which
      Ultralytics would rewrite in place, so it is copied into a pull, never hardlinked), so placing
      it needs no read. Anything that writes to the file moves its mtime off the sentinel.
    * A file whose mtime is a sentinel is trusted without a read; any other is hashed again and, on
      a mismatch, fetched again. ``verify=True`` hashes every file regardless, and reads the
      store's copy of each object too: a store object whose bytes no longer match its hash is
      replaced by the verified cached copy (content-addressed, so the repair is exact) and its key
      kept in :attr:`repaired`.

    Paths are plain strings: the warm pull calls these once per file.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = os.fspath(Path(root).resolve())
        self.repaired: list[str] = []
        """Keys of store objects ``ensure(verify=True)`` found damaged and replaced."""

    def image_path(self, sha256: str) -> str:
        """Where the cache keeps the object ``sha256``."""
        return f"{self.root}/sha256/{sha256[:2]}/{sha256}"

    @staticmethod
    def sentinel(path: str) -> int | None:
        """The sentinel mtime of ``path`` (one of :data:`VERIFIED`), or None when the file is
        missing or was written since it was verified."""
        try:
            mtime = os.stat(path).st_mtime_ns
        except FileNotFoundError:
            return None
        return mtime if mtime in VERIFIED else None

    @staticmethod
    def needs_private_copy(fmt: str, sentinel: int | None) -> bool:
        """A JPEG cached without its EOI marker, known from the cached file's sentinel (no read)."""
        return fmt in ("JPEG", "MPO") and sentinel != VERIFIED_MTIME_NS

    def ensure(self, store: ObjectStore, sha256: str, verify: bool = False) -> int:
        """Make the cache hold a verified copy of object ``sha256``; return bytes downloaded (0 = hit)."""
        path = self.image_path(sha256)
        if not verify and self.sentinel(path) is not None:
            return 0
        if os.path.isfile(path) and sha256_file(path) == sha256:
            _mark_verified(path)
            if verify:
                self._repair_store(store, sha256, path)
            return 0
        data = store.get_bytes(content_key(sha256))  # verified against the hash (IntegrityError if not)
        self._write(path, data)
        return len(data)

    def _repair_store(self, store: ObjectStore, sha256: str, path: str) -> None:
        """Read the store's copy of ``sha256``; replace it by the verified cached file ``path`` when
        its bytes do not match (a missing object is left to garbage collection's judgement)."""
        key = content_key(sha256)
        try:
            store.get_bytes(key)
        except IntegrityError:
            store.put_file(key, path, sha256=sha256)
            self.repaired.append(key)
        except ObjectNotFoundError:
            pass

    def label_file(self, text: str) -> str:
        """The YOLO label ``text`` as a verified read-only file of the cache (written once)."""
        data = text.encode()
        digest = sha256_bytes(data)
        path = f"{self.root}/labels/{digest[:2]}/{digest}.txt"
        if self.sentinel(path) != VERIFIED_MTIME_NS:  # new, or written to since it was cached
            self._write(path, data)
        return path

    @staticmethod
    def _write(path: str, data: bytes) -> None:
        with atomic_path(path) as tmp:  # a full disk leaves no partial file behind, under any name
            Path(tmp).write_bytes(data)
            _mark_verified(tmp, data[:2] + data[-2:])


def _mark_verified(path: str, head_tail: bytes | None = None) -> None:
    """Make a checked cache file read-only with its sentinel mtime (:class:`VerifiedCache`).
    ``head_tail``: the file's first two and last two bytes when the caller has them."""
    if head_tail is None:
        with open(path, "rb") as handle:
            head = handle.read(2)
            handle.seek(-2, os.SEEK_END)
            head_tail = head + handle.read()
    no_eoi = head_tail[:2] == b"\xff\xd8" and head_tail[2:] != b"\xff\xd9"
    os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    mark = VERIFIED_NO_EOI_MTIME_NS if no_eoi else VERIFIED_MTIME_NS
    os.utime(path, ns=(mark, mark))
