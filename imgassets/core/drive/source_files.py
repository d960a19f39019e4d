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
* a file larger than the limit its reader gives (:data:`TOO_LARGE`), found before it is read whole;
* a path on which a *folder* is a symbolic link (:data:`LINK_OUTSIDE_ROOT`): every component below the
  root is opened relative to its parent's descriptor with ``O_NOFOLLOW``, so a folder renamed and
  replaced by a link to an outside folder while a run reads the drive is refused, not followed.

The walk (:mod:`imgassets.core.drive.walk`) does not descend into symlinked folders; the shared drive
root is the scientist folder's parent unless given.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from imgassets.core.drive.paths import native_path, source_path
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


def _relative_parts(folder: str, rel_path: str, root: str) -> list[str]:
    """The components of ``folder/rel_path`` below ``root`` (both made absolute, links not
    resolved). Raises :class:`SourceFileError` (:data:`LINK_OUTSIDE_ROOT`) for a path that is not
    below ``root`` or holds ``..``."""
    below = os.path.relpath(os.path.abspath(folder), os.path.abspath(root))
    parts = [p for p in f"{below}/{rel_path}".split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise SourceFileError(LINK_OUTSIDE_ROOT, "a path that leads outside the shared drive root: not read")
    return parts


def _open_parent(root: str, parts: list[str]) -> int:
    """A descriptor of the folder ``root/parts[:-1]...``, each folder opened relative to the one
    before it (``openat``) with ``O_NOFOLLOW``: no component below ``root`` can be a symbolic link,
    whatever is renamed or swapped on the drive while this runs. ``root`` itself is trusted
    (configuration) and may be or hold links. Raises :class:`SourceFileError`."""
    directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(part, directory):
                    raise SourceFileError(LINK_OUTSIDE_ROOT, f"the folder {part!r} on its path is a symbolic link "
                                                             "(it was replaced by one after the walk): not read") from None
                raise
            os.close(directory)
            directory = child
    except BaseException:
        os.close(directory)
        raise
    return directory


def _open_beneath(root: str, parts: list[str]) -> int:
    """A read-only, non-blocking descriptor of ``root/parts...`` (:func:`_open_parent`, then the
    file itself with ``O_NOFOLLOW``). Raises :class:`SourceFileError` or ``OSError``."""
    directory = _open_parent(root, parts)
    try:
        return os.open(parts[-1], os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
    finally:
        os.close(directory)


def remove_source(folder: str | Path, rel_path: str, root: str | Path | None = None) -> None:
    """Remove ``folder/rel_path`` (move mode, once its bytes are verified in the store): the file's
    folder is opened as :func:`open_source` opens it, so a folder swapped for a link never makes
    this remove a file outside the root. Raises :class:`SourceFileError` or ``OSError``."""
    folder = os.fspath(folder)
    root_path = os.fspath(root) if root is not None else os.path.dirname(os.path.abspath(folder))
    parts = _relative_parts(folder, native_path(rel_path), root_path)
    directory = _open_parent(root_path, parts)
    try:
        os.unlink(parts[-1], dir_fd=directory)
    finally:
        os.close(directory)


def _is_link(name: str, directory: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_source(folder: str | Path, rel_path: str, root: str | Path | None = None,
                max_bytes: int | None = None) -> BinaryIO:
    """Open ``folder/rel_path`` for reading in binary mode, as the module docstring says.
    ``rel_path`` is in stored form (:mod:`imgassets.core.drive.paths`), as the walk lists it.

    ``root``: the shared drive root (default ``folder``'s parent); ``max_bytes``: refuse larger
    files. Every component below ``root`` is opened with ``O_NOFOLLOW`` relative to its parent's
    descriptor, so a folder swapped for a link during the run is refused, not followed; a file that
    is itself a link is read when its target, every link resolved, lies inside the root (and is then
    opened the same way). Raises :class:`SourceFileError` for a refused file, with code
    :data:`UNREADABLE` and the system's reason when the file cannot be opened (missing, permissions).
    """
    folder = os.fspath(folder)
    root_path = os.fspath(root) if root is not None else os.path.dirname(os.path.abspath(folder))
    parts = _relative_parts(folder, native_path(rel_path), root_path)
    path = source_path(folder, rel_path)
    try:
        try:
            descriptor = _open_beneath(root_path, parts)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            target = os.path.realpath(path)  # the file is a link: read its target when inside the root
            real_root = os.path.realpath(root_path)
            if not _inside(target, real_root):
                raise SourceFileError(LINK_OUTSIDE_ROOT, "a symbolic link that leads outside the shared drive root: "
                                                         "not read") from None
            path = target
            descriptor = _open_beneath(real_root, _relative_parts(os.path.dirname(target), os.path.basename(target),
                                                                  real_root))
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


def read_open(handle: BinaryIO, max_bytes: int | None = None) -> bytes:
    """The bytes of a file :func:`open_source` opened. At most ``max_bytes + 1`` bytes are read, so
    a file that grows after its ``fstat`` is refused as :data:`TOO_LARGE` too. The read asks for the
    size ``fstat`` gave plus one byte, and for the rest only when that byte came (the file grew): a
    request of ``max_bytes + 1`` would allocate that much for every file."""
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


def hash_open(handle: BinaryIO) -> str:
    """Hex SHA-256 of a file :func:`open_source` opened, read in blocks (memory stays bounded
    whatever the file's size)."""
    try:
        return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise SourceFileError(UNREADABLE, f"cannot read file: {exc.strerror or exc}") from None


def read_source(folder: str | Path, rel_path: str, root: str | Path | None = None,
                max_bytes: int | None = None) -> bytes:
    """The bytes of ``folder/rel_path`` through :func:`open_source` and :func:`read_open`."""
    with open_source(folder, rel_path, root, max_bytes) as handle:
        return read_open(handle, max_bytes)


def hash_source(folder: str | Path, rel_path: str, root: str | Path | None = None) -> str:
    """Hex SHA-256 of ``folder/rel_path`` through :func:`open_source` and :func:`hash_open`."""
    with open_source(folder, rel_path, root) as handle:
        return hash_open(handle)
