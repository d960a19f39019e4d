"""Reading a scientist's files: only regular files inside the shared drive root, never more than a
set number of bytes.

Every read of a source file (the image index, label and class-map parsers, the quality report) goes
through :func:`open_source`, which refuses, with a :class:`SourceFileError` naming the reason:

* a symbolic link whose target (every link of a chain resolved) lies outside the shared drive root
  (:data:`LINK_OUTSIDE_ROOT`): anyone who can write their own folder could otherwise make the
  pipeline read, and upload, any file the service account can read. Links that stay inside the root,
  and hardlinks, are read as the files they lead to;
* anything that is not a regular file (:data:`NOT_A_FILE`): a FIFO would block the read forever, a
  character device (``/dev/zero``) never ends. The file is opened non-blocking and checked with
  ``fstat`` on the open descriptor, so a FIFO put in place after the walk is refused too;
* a file larger than the limit its reader gives (:data:`TOO_LARGE`), found before it is read whole.

The walk (:mod:`imgassets.core.drive.walk`) does not descend into symlinked folders; the shared drive
root is the scientist folder's parent unless given.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from imgassets.core.drive.paths import source_path
from imgassets.errors import ImgassetsError

LINK_OUTSIDE_ROOT = "link_outside_root"
NOT_A_FILE = "not_a_regular_file"
TOO_LARGE = "file_too_large"
UNREADABLE = "unreadable"
"""The file could not be opened or read (missing, permissions, I/O error): read again on the next run."""

_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


class SourceFileError(ImgassetsError, OSError):
    """A source file that is not read: ``code`` (one of this module's constants) and ``reason``, a
    sentence for the scientist (the message is ``reason``)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def open_source(folder: str | Path, rel_path: str, root: str | Path | None = None,
                max_bytes: int | None = None) -> BinaryIO:
    """Open ``folder/rel_path`` for reading in binary mode, as the module docstring says.
    ``rel_path`` is in stored form (:mod:`imgassets.core.drive.paths`), as the walk lists it.

    ``root``: the shared drive root (default ``folder``'s parent); ``max_bytes``: refuse larger
    files. Raises :class:`SourceFileError` for a refused file, with code :data:`UNREADABLE` and
    the system's reason when the file cannot be opened (missing, permissions).
    """
    path = source_path(folder, rel_path)
    try:
        link = stat.S_ISLNK(os.lstat(path).st_mode)
        if link:
            target = os.path.realpath(path)
            real_root = os.path.realpath(os.fspath(root) if root is not None else os.path.dirname(os.fspath(folder)))
            if not _inside(target, real_root):
                raise SourceFileError(LINK_OUTSIDE_ROOT, "a symbolic link that leads outside the shared drive root: "
                                                         "not read")
            path = target
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except SourceFileError:
        raise
    except OSError as exc:
        try:  # a socket cannot be opened at all (ENXIO): refused as what it is, like a FIFO or device
            mode = os.stat(path).st_mode
        except OSError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode):
            raise SourceFileError(NOT_A_FILE, f"{_kind(mode)}, not a regular file: not read") from None
        raise SourceFileError(UNREADABLE, f"cannot read file: {exc.strerror or exc}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise SourceFileError(NOT_A_FILE, f"{_kind(info.st_mode)}, not a regular file: not read")
        if max_bytes is not None and info.st_size > max_bytes:
            raise SourceFileError(TOO_LARGE, f"{info.st_size} bytes, above the limit of {max_bytes} bytes for "
                                             "this kind of file: not read")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_source(folder: str | Path, rel_path: str, root: str | Path | None = None,
                max_bytes: int | None = None) -> bytes:
    """The bytes of ``folder/rel_path`` through :func:`open_source`. At most ``max_bytes + 1``
    bytes are read, so a file that grows after its ``fstat`` is refused as :data:`TOO_LARGE` too.
    The read asks for the size ``fstat`` gave plus one byte, and for the rest only when that byte
    came (the file grew): a request of ``max_bytes + 1`` would allocate that much for every file."""
    with open_source(folder, rel_path, root, max_bytes) as handle:
        try:
            if max_bytes is None:
                data = handle.read()
            else:
                expected = os.fstat(handle.fileno()).st_size
                data = handle.read(expected + 1)
                if len(data) > expected:
                    data += handle.read(max_bytes + 1 - len(data))
        except OSError as exc:
            raise SourceFileError(UNREADABLE, f"cannot read file: {exc.strerror or exc}") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise SourceFileError(TOO_LARGE, f"more than the limit of {max_bytes} bytes for this kind of file: not read")
    return data


def hash_source(folder: str | Path, rel_path: str, root: str | Path | None = None) -> str:
    """Hex SHA-256 of ``folder/rel_path`` read through :func:`open_source` in blocks (memory stays
    bounded whatever the file's size)."""
    with open_source(folder, rel_path, root) as handle:
        try:
            return hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError as exc:
            raise SourceFileError(UNREADABLE, f"cannot read file: {exc.strerror or exc}") from None
