"""The shared drive: ``<root>/<scientist>/**``, one top-level folder per scientist.

Only stat calls here (``os.scandir``), never reads of file contents: the sensor calls these on
every tick and must stay fast on large trees. The same walk lists files for the image index, so
both see the same files. Ignored everywhere (:func:`is_ignored`): hidden files and folders
(``.DS_Store``, ``.git``, rsync's ``.name.XXXX`` temporaries), ``Thumbs.db``, ``desktop.ini``,
Office lock files ``~$*``, and partial downloads or copies ``*.part``, ``*.crdownload``, ``*.tmp``.
Symlinked folders are not followed (no cycles); symlinks to files are listed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

FINGERPRINT_LENGTH = 16
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})
IGNORED_PATTERNS = ("~$*", "*.part", "*.crdownload", "*.tmp")


_IGNORED_PREFIXES = tuple(p[:-1] for p in IGNORED_PATTERNS if p.endswith("*"))
_IGNORED_SUFFIXES = tuple(p[1:] for p in IGNORED_PATTERNS if p.startswith("*"))


def is_ignored(name: str) -> bool:
    """True for names that are never data: hidden, OS junk, lock files, partial transfers
    (:data:`IGNORED_NAMES`, :data:`IGNORED_PATTERNS`, case-insensitive)."""
    if name.startswith("."):
        return True
    lower = name.lower()
    return lower in IGNORED_NAMES or lower.startswith(_IGNORED_PREFIXES) or lower.endswith(_IGNORED_SUFFIXES)


def list_scientists(root: str | Path) -> list[str]:
    """Names of the top-level folders of ``root`` (ignored names skipped), sorted.

    Raises ``NotADirectoryError`` naming ``root`` when it is missing or not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"shared drive root {root} does not exist or is not a directory")
    with os.scandir(root) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not is_ignored(e.name))


class FileStat(NamedTuple):
    """One file found by the walk: POSIX path relative to the folder, size, mtime_ns, inode.
    (A named tuple: the walk makes one per file on every sensor tick.)"""

    path: str
    size: int
    mtime_ns: int
    inode: int


def walk_files(folder: str | Path) -> Iterator[FileStat]:
    """Every non-ignored file under ``folder`` (stat only). A file that vanishes or cannot be
    stat'ed mid-walk is listed with size -1 so that it is reported, not silently skipped."""
    stack = [(os.fspath(folder), "")]  # (folder to scan, its POSIX path relative to `folder` + "/")
    while stack:
        current, prefix = stack.pop()
        try:
            with os.scandir(current) as scan:
                entries = list(scan)
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if is_ignored(name):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, f"{prefix}{name}/"))
                continue
            rel = prefix + name
            try:
                stat = entry.stat()
            except OSError:
                yield FileStat(rel, -1, 0, 0)
                continue
            if not entry.is_dir():
                yield FileStat(rel, stat.st_size, stat.st_mtime_ns, stat.st_ino)


@dataclass(frozen=True)
class FolderState:
    """A stat-only summary of a folder: fingerprint, file count, bytes, newest mtime (ns)."""

    fingerprint: str
    files: int
    bytes: int
    newest_mtime_ns: int


def scan_folder(folder: str | Path) -> FolderState:
    """Fingerprint a folder: a short hash of (path, size, mtime_ns, inode) of every file.

    Any added, removed, renamed, resized or touched file changes it, whatever the mtime's age (a
    copied-in file with an old mtime still changes the path set).
    """
    stats = sorted(walk_files(folder))  # by path first
    text = "".join([f"{s.path}\0{s.size}\0{s.mtime_ns}\0{s.inode}\n" for s in stats])
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape"))
    return FolderState(digest.hexdigest()[:FINGERPRINT_LENGTH], len(stats), sum(max(s.size, 0) for s in stats),
                       max((s.mtime_ns for s in stats), default=0))

