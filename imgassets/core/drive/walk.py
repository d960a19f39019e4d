"""The shared drive: ``<root>/<scientist>/**``, one top-level folder per scientist.

Only stat calls here (``os.scandir``), never reads of file contents: the sensor calls these on
every tick and must stay fast on large trees. The same walk lists files for the image index, so
both see the same files. Ignored everywhere (:func:`is_ignored`): hidden files and folders
(``.DS_Store``, ``.git``, rsync's ``.name.XXXX`` temporaries), ``Thumbs.db``, ``desktop.ini``,
Office lock files ``~$*``, and partial downloads or copies ``*.part``, ``*.crdownload``, ``*.tmp``.
A symbolic link is listed as a file with its target's stat (a link to a folder is not followed: no
cycles, no second copy of a tree); what may be read through it is decided by
:mod:`imgassets.core.drive.source_files`. Scientist folders must be real folders with UTF-8 names of at most
:data:`MAX_NAME_BYTES` bytes (:func:`scientist_folders`).
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from imgassets.core.drive.paths import stored_path
from imgassets.core.worker_pool import process_pool

FINGERPRINT_LENGTH = 16
PARALLEL_SCAN_FILES = 5000
"""Below this many files in all (as this process last listed the folders), :func:`scan_folders`
scans serially: a pool's hand-off costs more than it saves on a small drive."""
MAX_SCAN_WORKERS = 8
"""At most this many scan processes (rclone's default number of checkers): the pool lives as long as
the code server that evaluates the sensor, so its size is capped on a many-core machine."""
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})
IGNORED_PATTERNS = ("~$*", "*.part", "*.crdownload", "*.tmp")


_IGNORED_PREFIXES = tuple(p[:-1] for p in IGNORED_PATTERNS if p.endswith("*"))
_IGNORED_SUFFIXES = tuple(p[1:] for p in IGNORED_PATTERNS if p.startswith("*"))
# A name can be ignored only if it starts with "." or "~" or its last two characters end an ignored
# suffix or name ("rt" of ".part", "db" of "thumbs.db"...): the walk's cheap pre-test before
# is_ignored (most names fail it). A test checks that it never misses an ignored name.
_MAYBE_FIRST = frozenset("." + "".join(p[0].lower() + p[0].upper() for p in _IGNORED_PREFIXES))
_MAYBE_LAST2 = frozenset(v for x in (*_IGNORED_SUFFIXES, *IGNORED_NAMES) for v in
                         (x[-2:].lower(), x[-2:].upper(), x[-2].lower() + x[-1].upper(), x[-2].upper() + x[-1].lower()))


def is_ignored(name: str) -> bool:
    """True for names that are never data: hidden, OS junk, lock files, partial transfers
    (:data:`IGNORED_NAMES`, :data:`IGNORED_PATTERNS`, case-insensitive)."""
    if name.startswith("."):
        return True
    lower = name.lower()
    return lower in IGNORED_NAMES or lower.startswith(_IGNORED_PREFIXES) or lower.endswith(_IGNORED_SUFFIXES)


MAX_NAME_BYTES = 200
"""Longest scientist folder name, in UTF-8 bytes: the name is a partition key and part of file names
(``<name>.parquet``, temporary names), which a filesystem caps at 255 bytes."""


def scientist_folders(root: str | Path) -> tuple[list[str], list[tuple[str, str]]]:
    """The scientist folders of ``root``: (names, sorted; skipped, as ``(name, reason)``).

    A scientist is a real top-level folder (ignored names left out, :func:`is_ignored`). Skipped
    with a reason, so that the others still run: a symbolic link (its files may lie outside the
    root), a name that is not valid UTF-8 (shown with ``\\x`` escapes), a name longer than
    :data:`MAX_NAME_BYTES` bytes. Raises ``NotADirectoryError`` naming ``root`` when it is missing
    or not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"shared drive root {root} does not exist or is not a directory")
    names, skipped = [], []
    with os.scandir(root) as entries:
        for entry in entries:
            if is_ignored(entry.name) or not entry.is_dir():
                continue
            try:
                size = len(entry.name.encode("utf-8"))
            except UnicodeEncodeError:
                skipped.append((stored_path(entry.name), "folder name is not valid UTF-8: rename the folder"))
                continue
            if entry.is_symlink():
                skipped.append((entry.name, "a symbolic link, not a folder: not followed"))
            elif size > MAX_NAME_BYTES:
                skipped.append((entry.name, f"folder name is {size} bytes long, above the limit of "
                                            f"{MAX_NAME_BYTES}: rename the folder"))
            else:
                names.append(entry.name)
    return sorted(names), sorted(skipped)


def list_scientists(root: str | Path) -> list[str]:
    """The names of :func:`scientist_folders` (sorted), without the skipped ones."""
    return scientist_folders(root)[0]


class FileStat(NamedTuple):
    """One file found by the walk: POSIX path relative to the folder (in stored form,
    :func:`imgassets.core.drive.paths.stored_path`), size, mtime_ns, inode.
    (A named tuple: the walk makes one per file on every sensor tick.)"""

    path: str
    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True, eq=False)
class ListedFiles:
    """A folder's files as columns, sorted by path (a folder's paths are unique): ``paths`` (POSIX,
    relative to the folder) and, aligned with them, int64 arrays ``sizes`` (bytes; -1 when the stat
    failed), ``mtimes_ns`` and ``inodes``. What the image index compares with its previous rows,
    column by column; a stored listing decodes straight to it (:mod:`imgassets.core.drive.listing`)."""

    paths: list[str]
    sizes: np.ndarray
    mtimes_ns: np.ndarray
    inodes: np.ndarray

    @classmethod
    def of(cls, stats: Iterable[FileStat]) -> ListedFiles:
        """The columns of ``stats`` (in any order; e.g. :func:`walk_files`)."""
        ordered = sorted(stats)  # by path first: unique in a folder
        if not ordered:
            return cls([], *(np.zeros(0, np.int64) for _ in range(3)))
        paths, *numbers = zip(*ordered, strict=True)
        return cls(list(paths), *(np.array(n, dtype=np.int64) for n in numbers))

    def __len__(self) -> int:
        return len(self.paths)

    def stats(self) -> list[FileStat]:
        """The files as :class:`FileStat` rows, sorted by path."""
        return list(map(file_stat, zip(self.paths, self.sizes.tolist(), self.mtimes_ns.tolist(), self.inodes.tolist(),
                                       strict=True)))


def walk_files(folder: str | Path) -> Iterator[FileStat]:
    """Every non-ignored file under ``folder`` (stat only). A file that vanishes or cannot be
    stat'ed mid-walk is listed with size -1 so that it is reported, not silently skipped.

    Paths are in stored form (:mod:`imgassets.core.drive.paths`): a name that is not UTF-8 is
    listed losslessly with ``\\xNN`` escapes, never dropped. Each folder is scanned through an open descriptor, so a file's stat is ``fstatat(dir, name)``
    as ``find`` does it, not a lookup of its whole path again.
    """
    # (folder to scan, its native POSIX path relative to `folder` + "/", the (device, inode) the scan of
    # its parent saw). No folder that is a link is scanned: one swapped in as the last component
    # fails O_NOFOLLOW, one swapped in above it gives another inode.
    stack: list[tuple[str, str, tuple[int, int] | None]] = [(os.fspath(folder), "", None)]
    while stack:
        current, prefix, seen = stack.pop()
        try:
            descriptor = os.open(current, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if seen is not None:
                opened = os.fstat(descriptor)
                if (opened.st_dev, opened.st_ino) != seen:
                    continue
            with os.scandir(descriptor) as scan:
                entries = list(scan)
            yield from _stat_entries(entries, current, prefix, stack)
        finally:
            os.close(descriptor)


file_stat = partial(tuple.__new__, FileStat)
"""A :class:`FileStat` from a ``(path, size, mtime_ns, inode)`` tuple in one C call (``FileStat(...)``
and ``FileStat._make`` run Python code per file; the walk and a decoded listing make one per file)."""


def _stat_entries(entries: list[os.DirEntry], current: str, prefix: str, stack: list) -> list[FileStat]:
    """The files among ``entries`` (of the open folder ``current``); sub-folders go on ``stack``.
    (The inner loop of every sensor tick: one list per folder, no per-file function calls but the
    stat.)"""
    files = []
    for entry in entries:
        name = entry.name
        if (name[0] in _MAYBE_FIRST or name[-2:] in _MAYBE_LAST2) and is_ignored(name):
            continue
        if entry.is_dir(follow_symlinks=False):
            try:
                seen = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            stack.append((f"{current}/{name}", f"{prefix}{name}/", (seen.st_dev, seen.st_ino)))
            continue
        path = prefix + name
        if not path.isascii() or "\\" in path:  # the cheap test before stored_path's own
            path = stored_path(path)
        try:
            stat = entry.stat()  # a link: its target's (a dangling link fails: listed as unreadable)
        except OSError:
            files.append(file_stat((path, -1, 0, 0)))
            continue
        files.append(file_stat((path, stat.st_size, stat.st_mtime_ns, stat.st_ino)))
    return files


@dataclass(frozen=True)
class FolderState:
    """A stat-only summary of a folder: fingerprint, file count, bytes, newest mtime (ns), and the
    listing text the fingerprint hashes (:func:`listing_text`; kept for :mod:`imgassets.core.drive.listing`)."""

    fingerprint: str
    files: int
    bytes: int
    newest_mtime_ns: int
    listing: str = field(default="", repr=False, compare=False)


def listing_text(stats: list[FileStat]) -> str:
    """The listing of ``stats`` (sorted by path) as text: ``path NUL size NUL mtime_ns NUL inode
    NUL`` per file (NUL-terminated fields: a POSIX name may hold a newline, never a NUL). Its
    SHA-256 is the folder's fingerprint."""
    return "".join([f"{path}\0{size}\0{mtime_ns}\0{inode}\0" for path, size, mtime_ns, inode in stats])


def scan_folder(folder: str | Path) -> FolderState:
    """Fingerprint a folder: a short hash of (path, size, mtime_ns, inode) of every file.

    Any added, removed, renamed, resized or touched file changes it, whatever the mtime's age (a
    copied-in file with an old mtime still changes the path set).
    """
    with cyclic_gc_paused():
        stats = sorted(walk_files(folder), key=_path)
    text = listing_text(stats)
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape"))
    _, sizes, mtimes, _ = zip(*stats, strict=True) if stats else ((), (), (), ())
    return FolderState(digest.hexdigest()[:FINGERPRINT_LENGTH], len(stats), sum(size for size in sizes if size > 0),
                       max(mtimes, default=0), text)


def _path(stat: FileStat) -> str:
    return stat.path


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector for the block, for work that allocates many
    objects and no reference cycles (a walk: one tuple per file). Each tuple kept counts towards
    the next collection, and in a process with Dagster loaded a full collection traverses every
    long-lived object (``docs/benchmarks.md`` has the cost). Reference counting still frees
    everything; the collector is re-enabled after the block unless it was off before it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_LISTED: dict[str, int] = {}
"""Files in each folder (by path) at its last scan in this process: whether the next scan is worth
a pool, and which folders go first. Lost with the process; the first scan is serial."""


def scan_folders(folders: Mapping[str, str | Path], workers: int | None = None,
                 min_files: int = PARALLEL_SCAN_FILES) -> dict[str, FolderState]:
    """:func:`scan_folder` of every folder of ``{name: folder}``: ``{name: FolderState}``, the same
    states whichever way they are made.

    The folders are scanned on a pool of ``workers`` processes (default: every core, at most
    :data:`MAX_SCAN_WORKERS`; :mod:`imgassets.core.worker_pool`) when there are at least two and
    this process's last scan of them listed at least ``min_files`` files, largest folders first;
    serially otherwise: a stat walk is CPU-bound in Python on a local disk, so folders scan faster
    on several cores (figures in ``docs/benchmarks.md``). A pool that breaks (a worker killed)
    costs a serial scan, never a failed sensor tick.
    """
    paths = {name: os.fspath(folder) for name, folder in folders.items()}
    workers = workers or min(MAX_SCAN_WORKERS, os.cpu_count() or 1)
    names, scanned = list(paths), None
    if workers > 1 and len(paths) > 1 and sum(_LISTED.get(p, 0) for p in paths.values()) >= min_files:
        names.sort(key=lambda name: -_LISTED.get(paths[name], 0))
        try:
            scanned = list(process_pool(workers).map(scan_folder, [paths[n] for n in names]))
        except BrokenProcessPool:  # a worker died (killed, out of memory): scan here; the next call gets a new pool
            pass
    if scanned is None:
        scanned = [scan_folder(paths[n]) for n in names]
    states = dict(zip(names, scanned, strict=True))
    _LISTED.update({paths[name]: state.files for name, state in states.items()})
    return {name: states[name] for name in paths}
