"""The shared drive: ``<root>/<scientist>/**``, one top-level folder per scientist.

Only stat calls here (``os.scandir``), never reads of file contents: the sensor calls these on every
tick and must stay fast on large trees.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

FINGERPRINT_LENGTH = 16


def list_scientists(root: str | Path) -> list[str]:
    """Names of the top-level folders of ``root`` (hidden ones skipped), sorted.

    Raises ``NotADirectoryError`` naming ``root`` when it is missing or not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"shared drive root {root} does not exist or is not a directory")
    with os.scandir(root) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _walk_stats(folder: str):
    stack = [folder]
    while stack:
        current = stack.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file():
                    stat = entry.stat()
                    yield os.path.relpath(entry.path, folder), stat.st_size, stat.st_mtime_ns, stat.st_ino


def folder_fingerprint(folder: str | Path) -> str:
    """A short hash of (relative path, size, mtime_ns, inode) of every file under ``folder``.

    Any added, removed, renamed, resized or touched file changes it, whatever the mtime's age (a
    copied-in file with an old mtime still changes the path set). ``FINGERPRINT_LENGTH`` hex digits.
    """
    digest = hashlib.sha256()
    for rel, size, mtime_ns, inode in sorted(_walk_stats(str(folder))):
        digest.update(f"{rel}\0{size}\0{mtime_ns}\0{inode}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:FINGERPRINT_LENGTH]
