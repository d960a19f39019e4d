"""The image index: one row per file under a scientist's folder.

Columns (see :data:`INDEX_COLUMNS`): ``path`` (POSIX, relative to the scientist's folder),
``kind`` (image / label / class_map / other, :mod:`imgassets.core.layout`), ``size_bytes``,
``mtime_ns``, ``sha256`` (hex content hash; null when unreadable), ``format`` (sniffed from the
bytes), ``width``/``height`` (pixels, displayed frame), ``exif_orientation`` (raw EXIF value),
``mode`` (Pillow mode: RGB, L, CMYK, P, RGBA, I;16...), ``frames`` (more than 1 for multi-frame
files), ``phash`` (64-bit perceptual hash of the displayed frame, for near-duplicates),
``status`` (``ok`` or a rejection code from :mod:`imgassets.core.imaging`; non-image files are
``ok`` when readable) and ``reason`` (a sentence for the scientist, empty when there is nothing to say).

Each file is read once: the same bytes are hashed and decoded. Source files are only ever opened
for reading.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from imgassets.core import imaging, layout
from imgassets.core.hashing import sha256_bytes

INDEX_COLUMNS = [
    "path", "kind", "size_bytes", "mtime_ns", "sha256", "format", "width", "height",
    "exif_orientation", "mode", "frames", "phash", "status", "reason",
]
INDEX_DTYPES = {
    "path": "string", "kind": "string", "size_bytes": "int64", "mtime_ns": "int64", "sha256": "string",
    "format": "string", "width": "Int64", "height": "Int64", "exif_orientation": "Int64",
    "mode": "string", "frames": "Int64", "phash": "string", "status": "string", "reason": "string",
}


def list_files(folder: Path) -> list[str]:
    """All regular files under ``folder``, recursively, as sorted POSIX paths relative to it.

    Symlinks to files are followed; symlinked directories are not (no cycles).
    """
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(folder)
        for name in filenames:
            found.append((rel_dir / name).as_posix())
    return sorted(found)


def index_file(folder: Path, rel_path: str, kind: str) -> dict:
    """One image-index row for ``folder/rel_path`` (see the module docstring for the columns)."""
    full = folder / rel_path
    row: dict = {c: None for c in INDEX_COLUMNS}
    row.update(path=rel_path, kind=kind, status=imaging.OK, reason="")
    try:
        stat = full.stat()
        row.update(size_bytes=stat.st_size, mtime_ns=stat.st_mtime_ns)
        data = full.read_bytes()
    except OSError as exc:
        row.update(size_bytes=row["size_bytes"] or 0, mtime_ns=row["mtime_ns"] or 0,
                   status=imaging.UNREADABLE, reason=f"cannot read file: {exc.strerror or exc}")
        return row
    row["sha256"] = sha256_bytes(data)
    if kind == layout.IMAGE:
        info = imaging.inspect_image(data, full.suffix)
        row.update(format=info.format, width=info.width, height=info.height, exif_orientation=info.exif_orientation,
                   mode=info.mode, frames=info.frames, phash=info.phash, status=info.status, reason=info.reason)
    return row


def build_image_index(folder: str | Path) -> pd.DataFrame:
    """Index every file under ``folder`` (a scientist's folder); see the module docstring.

    Raises ``NotADirectoryError`` naming the folder when it does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"scientist folder {folder} does not exist or is not a directory")
    paths = list_files(folder)
    kinds = layout.classify_paths(paths)
    rows = [index_file(folder, p, kinds[p]) for p in paths]
    return pd.DataFrame(rows, columns=INDEX_COLUMNS).astype(INDEX_DTYPES)


def valid_images(index: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``index`` that are images with status ``ok``."""
    return index[(index["kind"] == layout.IMAGE) & (index["status"] == imaging.OK)]


def rejected_images(index: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``index`` that are images rejected by validation (status other than ``ok``)."""
    return index[(index["kind"] == layout.IMAGE) & (index["status"] != imaging.OK)]
