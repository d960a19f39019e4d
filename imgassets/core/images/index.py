"""The image index: one row per file under a scientist's folder.

Columns (see :data:`INDEX_COLUMNS`): ``path`` (POSIX, relative to the scientist's folder),
``kind`` (image / label / class_map / other, :mod:`imgassets.core.drive.layout`), ``size_bytes``,
``mtime_ns``, ``inode``, ``sha256`` (hex content hash; null when unreadable), ``format`` (sniffed from the
bytes), ``width``/``height`` (pixels, displayed frame), ``exif_orientation`` (raw EXIF value),
``mode`` (Pillow mode: RGB, L, CMYK, P, RGBA, I;16...), ``frames`` (more than 1 for multi-frame
files), ``phash`` (64-bit perceptual hash of the displayed frame, for near-duplicates),
``status`` (``ok`` or a rejection code from :mod:`imgassets.core.images.inspect`; non-image files are
``ok`` when readable) and ``reason`` (a sentence for the scientist, empty when there is nothing to say);
for each accepted image its quality signals ``brightness``, ``contrast``, ``sharpness``, ``entropy``
(:class:`imgassets.core.images.inspect.QualitySignals`, from the same reduced decode) and from its EXIF
``capture_time`` (seconds, :func:`imgassets.core.images.inspect.exif_facts`) and ``camera`` (make,
model, serial), null when the file has none.

Each file is read once: the same bytes are hashed and decoded. Source files are only ever opened
for reading. Files are listed by :func:`imgassets.core.drive.walk.walk_files` (the sensor's walk), so
junk and partial transfers are skipped the same way everywhere.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import imagehash  # noqa: F401 -- perceptual_hash imports it per call; loaded here, pool workers start warm
import numpy as np
import pandas as pd
import scipy.fftpack  # noqa: F401 -- imagehash.phash imports it on its first call
from PIL import Image

from imgassets.core.drive import layout
from imgassets.core.drive.paths import source_path
from imgassets.core.drive.source_files import SourceFileError, hash_open, open_source, read_open
from imgassets.core.drive.walk import FileStat, ListedFiles, walk_files
from imgassets.core.frames import has_dtypes, typed_frame
from imgassets.core.images import inspect as imaging
from imgassets.core.progress import Progress
from imgassets.core.store.hashing import sha256_bytes
from imgassets.core.worker_pool import job_pool

INDEX_COLUMNS = [
    "path", "kind", "size_bytes", "mtime_ns", "inode", "sha256", "format", "width", "height",
    "exif_orientation", "mode", "frames", "phash", "status", "reason",
    "brightness", "contrast", "sharpness", "entropy", "capture_time", "camera",
]
QUALITY_SIGNALS = ["brightness", "contrast", "sharpness", "entropy"]
"""The image index's quality-signal columns (:class:`imgassets.core.images.inspect.QualitySignals`)."""
INDEX_DTYPES = {
    "path": "string", "kind": "string", "size_bytes": "int64", "mtime_ns": "int64", "inode": "int64",
    "sha256": "string",
    "format": "string", "width": "Int64", "height": "Int64", "exif_orientation": "Int64",
    "mode": "string", "frames": "Int64", "phash": "string", "status": "string", "reason": "string",
    "brightness": "float64", "contrast": "float64", "sharpness": "float64", "entropy": "float64",
    "capture_time": "float64", "camera": "string",
}


PARALLEL_THRESHOLD = 64
"""Below this many files to (re)index, a worker pool costs more than it saves."""
BATCH = 256
"""Most files a worker indexes in one task (their quality signals are measured together)."""

LAYOUT_RULES = "layout_rules"
"""Key of ``DataFrame.attrs`` (kept through Parquet by pandas) under which an index records the
:data:`imgassets.core.drive.layout.RULES_FINGERPRINT` its kinds were made by."""


@dataclass(frozen=True)
class IndexUpdate:
    """An image index and how it was made: rows reused from the previous index, files (re)read."""

    index: pd.DataFrame
    reused: int
    indexed: int


def _index_one(folder: Path, rel_path: str, kind: str) -> tuple[dict, Image.Image | None]:
    """One image-index row for ``folder/rel_path`` without its quality signals, and the reduced
    decode they are measured on (None for a file that is not an accepted image)."""
    row: dict = {c: None for c in INDEX_COLUMNS}
    row.update(path=rel_path, kind=kind, status=imaging.OK, reason="", size_bytes=0, mtime_ns=0, inode=0)
    try:
        with open_source(folder, rel_path, max_bytes=imaging.MAX_FILE_BYTES if kind == layout.IMAGE else None) as handle:
            stat = os.fstat(handle.fileno())  # the file read, not a path looked up again (or a link's outside target)
            row.update(size_bytes=stat.st_size, mtime_ns=stat.st_mtime_ns, inode=stat.st_ino)
            if kind != layout.IMAGE:
                row["sha256"] = hash_open(handle)
                return row, None
            data = read_open(handle, imaging.MAX_FILE_BYTES)
    except SourceFileError as exc:
        try:  # a refused file keeps the walk's view of itself (never a link's target's)
            stat = os.stat(source_path(folder, rel_path), follow_symlinks=False)
            row.update(size_bytes=stat.st_size, mtime_ns=stat.st_mtime_ns, inode=stat.st_ino)
        except OSError:
            pass
        row.update(status=exc.code, reason=exc.reason)
        return row, None
    row["sha256"] = sha256_bytes(data)
    info = imaging.inspect_image(data, PurePosixPath(rel_path).suffix)
    row.update(format=info.format, width=info.width, height=info.height, exif_orientation=info.exif_orientation,
               mode=info.mode, frames=info.frames, phash=info.phash, status=info.status, reason=info.reason,
               capture_time=info.capture_time, camera=info.camera)
    return row, info.reduced


def index_files(folder: Path, jobs: list[tuple[str, str]]) -> list[dict]:
    """The image-index rows of ``jobs`` (``(rel_path, kind)`` under ``folder``; see the module
    docstring for the columns), the accepted images' quality signals measured for the whole batch
    at once (:func:`imgassets.core.images.inspect.quality_signals`).

    Each file is opened through :func:`imgassets.core.drive.source_files.open_source` (the shared
    drive root is ``folder``'s parent): a link leading outside the root, a FIFO or device, or an
    image above :data:`imgassets.core.images.inspect.MAX_FILE_BYTES` is never read and gets that
    refusal as its status. An image is read whole (hashed and decoded from the same bytes); any
    other file is hashed in blocks, so its size does not matter.
    """
    done = [_index_one(folder, path, kind) for path, kind in jobs]
    measured = [i for i, (_, reduced) in enumerate(done) if reduced is not None]
    for i, signals in zip(measured, imaging.quality_signals([done[i][1] for i in measured]), strict=True):
        done[i][0].update(signals.__dict__)
    return [row for row, _ in done]


def index_file(folder: Path, rel_path: str, kind: str) -> dict:
    """One image-index row for ``folder/rel_path`` (:func:`index_files` of that one file)."""
    return index_files(folder, [(rel_path, kind)])[0]


def _index_many(folder: Path, jobs: list[tuple[str, str]], workers: int) -> list[dict]:
    """:func:`index_files` of ``jobs`` in batches, on a pool of ``workers`` processes when there
    are enough of them (:data:`PARALLEL_THRESHOLD`), with progress."""
    shown = Progress(f"indexing {folder.name}", len(jobs))
    alone = workers <= 1 or len(jobs) < PARALLEL_THRESHOLD
    batch = BATCH if alone else max(1, min(BATCH, len(jobs) // (workers * 8)))
    batches = [jobs[i:i + batch] for i in range(0, len(jobs), batch)]
    folders = [folder] * len(batches)
    rows: list[dict] = []
    with contextlib.nullcontext() if alone else job_pool(workers) as pool:
        for done in map(index_files, folders, batches) if alone else pool.map(index_files, folders, batches):
            rows += done
            shown.advance(len(done))
    return rows


def update_image_index(folder: str | Path, previous: pd.DataFrame | None = None, workers: int | None = None,
                       listing: ListedFiles | Iterable[FileStat] | None = None) -> IndexUpdate:
    """Index ``folder`` (a scientist's folder), reusing the rows of ``previous`` for files whose
    path, size, mtime_ns, inode and kind are unchanged: no re-hash, no re-decode. Changed and new
    files are read on ``workers`` processes (default: every core). Files gone from the folder are
    gone from the index. Raises ``NotADirectoryError`` naming the folder when it does not exist
    or is a symbolic link.

    ``listing``: the files to index, as the sensor listed them (:mod:`imgassets.core.drive.listing`; or
    :class:`~imgassets.core.drive.walk.FileStat` rows in any order), instead of walking the folder
    again; default: walk it (:func:`imgassets.core.drive.walk.walk_files`).
    """
    folder = Path(folder)
    if folder.is_symlink():
        raise NotADirectoryError(f"scientist folder {folder} is a symbolic link: not followed")
    if not folder.is_dir():
        raise NotADirectoryError(f"scientist folder {folder} does not exist or is not a directory")
    files = listing if isinstance(listing, ListedFiles) else ListedFiles.of(walk_files(folder) if listing is None else listing)
    same_rules = previous is not None and previous.attrs.get(LAYOUT_RULES) == layout.RULES_FINGERPRINT
    if same_rules and _lists_exactly(previous, files):  # nothing new, changed or gone
        return IndexUpdate(previous, len(previous), 0)
    paths = files.paths
    usable = previous if same_rules else None  # other rules: kind-unchanged files only
    at = previous_positions(previous, paths)
    kinds = path_kinds(paths, at, usable)
    at = _reusable_positions(previous, at, files, kinds)
    reused_mask = at >= 0
    if previous is not None and len(files) == len(previous) and (at == np.arange(len(at))).all() and _is_sorted_typed(previous):
        return IndexUpdate(_stamped(previous), len(previous), 0)  # every row reusable, in place: as it was
    fresh_at = np.flatnonzero(~reused_mask)
    jobs = [(paths[i], kinds[i]) for i in fresh_at]
    fresh = typed_frame(_index_many(folder, jobs, workers or os.cpu_count() or 1), INDEX_DTYPES) if jobs else None
    if not reused_mask.any():
        table = fresh if fresh is not None else typed_frame([], INDEX_DTYPES)  # in the listing's order: sorted
    else:  # reused and fresh rows in the listing's order (sorted by path), in one take: no sort of the strings
        kept = previous[INDEX_COLUMNS] if has_dtypes(previous, INDEX_DTYPES) else previous[INDEX_COLUMNS].astype(INDEX_DTYPES)
        order = at.copy()
        order[fresh_at] = len(previous) + np.arange(len(fresh_at))
        table = pd.concat([kept, fresh], ignore_index=True) if fresh is not None else kept
        table = table.take(order).reset_index(drop=True)
    return IndexUpdate(_stamped(table), int(reused_mask.sum()), len(jobs))


def _stamped(index: pd.DataFrame) -> pd.DataFrame:
    """``index`` recording the current layout rules (a shallow copy when it records others)."""
    if index.attrs.get(LAYOUT_RULES) != layout.RULES_FINGERPRINT:
        index = index.copy(deep=False)
        index.attrs[LAYOUT_RULES] = layout.RULES_FINGERPRINT
    return index


def previous_positions(previous: pd.DataFrame | None, paths: list[str]) -> np.ndarray:
    """The row of each of ``paths`` in ``previous`` (an index), -1 where it has none (all -1 when
    there is no previous index, or it lists a path twice: not an index this module made)."""
    if previous is None or not len(previous):
        return np.full(len(paths), -1)
    try:
        return pd.Index(previous["path"].to_numpy(object)).get_indexer(paths)
    except pd.errors.InvalidIndexError:
        return np.full(len(paths), -1)


def path_kinds(paths: list[str], at: np.ndarray, previous: pd.DataFrame | None) -> np.ndarray:
    """The kind of each path (:func:`imgassets.core.drive.layout.classify_paths`; an object array
    aligned with ``paths``), reusing the kinds of ``previous`` (the last index, made by the same
    rules; ``at``: each path's row in it, :func:`previous_positions`). A kind depends only on the
    path and on whether its folder holds an image, so only new paths, and the paths of a folder
    that gained its first image or lost its last, are classified: the cost follows the change."""
    if previous is None or not len(previous) or "kind" not in previous.columns:
        return np.array(list(layout.classify_paths(paths).values()), dtype=object)
    old_kinds = previous["kind"].to_numpy(object)
    kinds = np.where(at >= 0, old_kinds[np.maximum(at, 0)], None)
    new = np.flatnonzero(at < 0)
    gone = np.ones(len(previous), bool)
    gone[at[at >= 0]] = False
    old_images = old_kinds == layout.IMAGE
    if not len(new) and not (gone & old_images).any():
        return kinds  # no image came or went: every folder keeps its image status
    old_paths = previous["path"].to_numpy(object)
    old_dirs = layout.image_dirs(old_paths[old_images])
    dirs = layout.image_dirs(old_paths[old_images & ~gone]) | layout.image_dirs(
        paths[i] for i in new if layout.is_image_path(paths[i]))
    changed = old_dirs ^ dirs
    redo = range(len(paths)) if changed else new  # a folder changed status: its paths again
    for i in redo:
        if kinds[i] is None or paths[i].rpartition("/")[0] in changed:
            kinds[i] = layout.classify_path(paths[i], dirs)
    return kinds


def _lists_exactly(previous: pd.DataFrame, files: ListedFiles) -> bool:
    """True when ``previous`` (an index sorted by path, with the index dtypes) has exactly the
    ``files`` with the same size, mtime_ns and inode, and no unreadable row (those are read
    again): then it is the index of ``files`` as it is. Compared column by column."""
    if len(previous) != len(files) or not _is_sorted_typed(previous) or (previous["status"] == imaging.UNREADABLE).any():
        return False
    numbers = (("size_bytes", files.sizes), ("mtime_ns", files.mtimes_ns), ("inode", files.inodes))
    return (all(np.array_equal(previous[c].to_numpy(np.int64), listed) for c, listed in numbers)
            and previous["path"].tolist() == files.paths)


def _is_sorted_typed(index: pd.DataFrame) -> bool:
    """True when ``index`` has exactly the index columns and dtypes, a 0..n-1 row index, sorted by path."""
    return (has_dtypes(index, INDEX_DTYPES) and index.index.equals(pd.RangeIndex(len(index)))
            and index["path"].is_monotonic_increasing)


def _reusable_positions(previous: pd.DataFrame | None, at: np.ndarray, files: ListedFiles,
                        kinds: np.ndarray) -> np.ndarray:
    """For each of ``files`` (its row in ``previous`` in ``at``, :func:`previous_positions`; its kind
    in ``kinds``), that row when it can be reused (same path, kind, size, mtime_ns and inode, and
    the file was readable: no need to read it again), else -1 (all -1 when ``previous`` lacks a
    column of :data:`INDEX_COLUMNS`). Compared column by column."""
    if previous is None or not len(previous) or not set(INDEX_COLUMNS) <= set(previous.columns):
        return np.full(len(files), -1)  # an index of an earlier release, without some columns: read again
    found = at >= 0
    rows = np.where(found, at, 0)
    same = found & (previous["kind"].to_numpy(object, na_value="")[rows] == kinds)
    for column, listed in (("size_bytes", files.sizes), ("mtime_ns", files.mtimes_ns), ("inode", files.inodes)):
        same &= previous[column].to_numpy(np.int64, na_value=-2)[rows] == listed
    same &= (previous["status"] != imaging.UNREADABLE).to_numpy(bool, na_value=True)[rows]
    return np.where(same, at, -1)


def valid_images(index: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``index`` that are images with status ``ok``."""
    return index[(index["kind"] == layout.IMAGE) & (index["status"] == imaging.OK)]


def rejected_images(index: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``index`` that are images rejected by validation (status other than ``ok``)."""
    return index[(index["kind"] == layout.IMAGE) & (index["status"] != imaging.OK)]
