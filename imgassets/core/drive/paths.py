"""Relative paths as imgassets stores them: UTF-8 text that names exactly one file, readable.

A POSIX file name is bytes. A Windows or Samba share mounted on Linux often hands over Latin-1 names
(``na\\xefve.jpg``) that are not UTF-8; Python lists them with surrogate escapes (PEP 383), which no
Parquet file, JSON document or database column can hold. Every table here (the image index, the
label table, manifests, the lineage index, listings) keeps a path in its *stored form*
(:func:`stored_path`):

* a path that is valid UTF-8 and holds no backslash followed by ``x`` is stored as it is (every path
  on an ordinary drive: its manifests, and so snapshot and dataset ids, are what they always were);
* any other path is stored with each byte that is not part of valid UTF-8 written ``\\xNN`` (two
  lower-case hex digits) and each backslash written ``\\x5c``.

So a stored path holds ``\\x`` exactly when it was escaped, every ``\\xNN`` in it is one byte, and
:func:`native_path` gives back the name the filesystem knows (``os.fsencode`` of it is the original
bytes): lossless and unambiguous. The stored form is also what a person reads in findings, the UI
and ``imgassets lineage``. Files are opened only through :func:`native_path` (``source_files``,
the index's stat, move mode).
"""

from __future__ import annotations

import os
import re

ESCAPE = "\\x"
_ESCAPED_BYTE = re.compile(r"\\x([0-9a-fA-F]{2})")


def is_utf8(text: str) -> bool:
    """True when ``text`` encodes to UTF-8: it holds no surrogate escape of a byte that is not UTF-8."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def needs_escape(path: str) -> bool:
    """True when ``path`` (as the filesystem gave it) is not stored as it is: it is not valid UTF-8
    (holds surrogate escapes) or holds ``\\x``."""
    return ESCAPE in path or not is_utf8(path)


def stored_path(path: str) -> str:
    """The stored form of ``path`` (a name or relative path as ``os.scandir`` or ``os.fsdecode``
    gives it, undecodable bytes as surrogate escapes): see the module docstring. Always valid UTF-8."""
    if not needs_escape(path):
        return path
    raw = path.replace("\\", "\\x5c").encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "backslashreplace")


def native_path(stored: str) -> str:
    """The filesystem's name (surrogate escapes for bytes that are not UTF-8, as ``os.fsdecode``
    gives it) for a path in stored form; the inverse of :func:`stored_path` (a path without ``\\x``
    is returned as it is)."""
    if ESCAPE not in stored:
        return stored
    parts = _ESCAPED_BYTE.split(stored)  # text, hex, text, hex, ..., text
    raw = bytearray()
    for i, part in enumerate(parts):
        raw += bytes([int(part, 16)]) if i % 2 else part.encode("utf-8", "surrogateescape")
    return bytes(raw).decode("utf-8", "surrogateescape")


def source_path(folder: str | os.PathLike, stored: str) -> str:
    """The filesystem path of the stored relative path ``stored`` under ``folder``."""
    return f"{os.fspath(folder)}/{native_path(stored)}"
