"""Archive mode ``move``: sources leave the shared drive once they are safely in the store.

Opt-in (default mode is ``copy``, which never touches a source). In ``move`` mode, after a snapshot
is committed (objects, then manifest):

1. the label files of the snapshot's images are uploaded too (content-addressed), and an archive
   log ``archive/<scientist>/<snapshot_id>.json`` lists every file about to be removed with its
   SHA-256, so the exact bytes of every moved file stay retrievable;
2. each file is removed only if (a) its object reads back from the store with the right size and
   SHA-256, and (b) the file is unchanged since it was hashed (same size and mtime_ns as in the
   image index, and the same SHA-256 when read again). Any failed condition keeps the file and
   reports why;
3. folders left empty are removed, never the scientist's top folder; class maps
   (``data.yaml``, ``classes.txt``) and every other file stay.

Because moved files are gone from the drive, the next snapshot *carries forward* the previous
snapshot's rows whose path no longer exists (:func:`carry_forward`): a scientist's latest snapshot
always describes everything they contributed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from imgassets.core.drive import layout
from imgassets.core.drive.layout import pair_labels
from imgassets.core.drive.paths import source_path, stored_path
from imgassets.core.drive.source_files import SourceFileError, hash_open, open_source, read_source, remove_source
from imgassets.core.store.base import ObjectStore, ObjectStoreError
from imgassets.core.store.hashing import sha256_bytes
from imgassets.core.store.keys import archive_log_key, content_key
from imgassets.core.store.sealed import put_record
from imgassets.core.versioning.snapshot import load_snapshot

COPY = "copy"
MOVE = "move"
ARCHIVE_MODES = (COPY, MOVE)


@dataclass
class ArchiveResult:
    """Files removed from the drive, files kept with the reason, folders tidied."""

    moved: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    removed_dirs: list[str] = field(default_factory=list)
    log_key: str | None = None


def carry_forward(previous: list[dict], current: list[dict], present_paths: set[str]) -> list[dict]:
    """Current rows plus the previous snapshot's rows whose path is no longer on the drive (moved
    away earlier) and not replaced by a current row; sorted by path."""
    current_paths = {r["path"] for r in current}
    kept = [r for r in previous if r["path"] not in present_paths and r["path"] not in current_paths]
    return sorted([*current, *kept], key=lambda r: r["path"])


def carry_forward_snapshot(store: ObjectStore, previous_key: str, current: list[dict],
                           present_paths: set[str]) -> tuple[list[dict], frozenset[str]]:
    """Move mode with a previous snapshot at ``previous_key``: :func:`carry_forward` of its rows
    onto ``current``, and the content hashes it lists (the objects it vouches for, as
    :func:`imgassets.core.versioning.snapshot.stored_objects` gives them), from one read of its manifest."""
    previous = load_snapshot(store, previous_key)
    return carry_forward(previous, current, present_paths), frozenset(row["sha256"] for row in previous)


def files_to_move(index: pd.DataFrame, records: list[dict]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Index rows of the files ``move`` would remove -- the snapshot's images present on the drive
    and their paired label files -- and the pairing ``{label path: image path}``."""
    paths = {r["path"] for r in records}
    images = index[index["path"].isin(paths)]
    labels = index[index["kind"] == layout.LABEL]
    pairs = pair_labels(images["path"].tolist(), labels["path"].tolist())
    return index[index["path"].isin(paths | set(pairs))].sort_values("path"), pairs


def _unchanged(folder: Path, row) -> str | None:
    """``None`` when ``folder/row.path`` (read as every source file is, no link on its path) still
    is what the index saw, else the reason it is not."""
    try:
        with open_source(folder, row.path) as handle:
            stat = os.fstat(handle.fileno())
            if stat.st_size != row.size_bytes or stat.st_mtime_ns != row.mtime_ns:
                return "changed since it was indexed (size or mtime differs)"
            if hash_open(handle) != row.sha256:
                return "changed since it was indexed (content hash differs)"
    except OSError as exc:
        return f"cannot read: {getattr(exc, 'reason', None) or exc.strerror or exc}"
    return None


def _verified_in_store(store: ObjectStore, row) -> str | None:
    try:
        data = store.get_bytes(content_key(row.sha256))  # raises IntegrityError on a hash mismatch
    except ObjectStoreError as exc:
        return f"not verified in the store: {exc}"
    if len(data) != row.size_bytes or sha256_bytes(data) != row.sha256:
        return "not verified in the store: size or SHA-256 differs"
    return None


def _tidy(folder: Path, removed: list[str]) -> list[str]:
    tidied: list[str] = []
    candidates = {Path(source_path(folder, p)).parent for p in removed}
    for directory in sorted(candidates, key=lambda d: len(d.parts), reverse=True):
        current = directory
        while current != folder and folder in current.parents:
            try:
                current.rmdir()  # only succeeds when empty
            except OSError:
                break
            tidied.append(stored_path(current.relative_to(folder).as_posix()))
            current = current.parent
    return tidied


def archive_sources(store: ObjectStore, scientist: str, snapshot_id: str, folder: str | Path,
                    index: pd.DataFrame, records: list[dict]) -> ArchiveResult:
    """Move mode, steps 1-3 of the module docstring, for a snapshot already committed."""
    folder = Path(folder)
    result = ArchiveResult()
    candidates, pairs = files_to_move(index, records)
    for row in candidates[candidates["kind"] == layout.LABEL].itertuples():
        if not store.exists(content_key(row.sha256)):
            try:  # read as every source file is (no link on its path); one that changed stays on the drive
                data = read_source(folder, row.path)
            except SourceFileError:
                continue
            if sha256_bytes(data) == row.sha256:
                store.put_bytes(content_key(row.sha256), data, sha256=row.sha256)
    result.log_key = archive_log_key(scientist, snapshot_id)
    log = [{"path": r.path, "kind": r.kind, "sha256": r.sha256, "size_bytes": int(r.size_bytes)} for r in candidates.itertuples()]
    put_record(store, result.log_key, {"scientist": scientist, "snapshot_id": snapshot_id, "files": log})
    # Images first; a label file goes only with its image, so a kept image never loses its boxes.
    ordered = sorted(candidates.itertuples(), key=lambda r: (r.path in pairs, r.path))
    moved: set[str] = set()
    for row in ordered:
        if row.path in pairs and pairs[row.path] not in moved:
            result.kept.append((row.path, f"kept with its image {pairs[row.path]}"))
            continue
        reason = _verified_in_store(store, row) or _unchanged(folder, row)
        if reason is None:
            try:
                remove_source(folder, row.path)
            except OSError as exc:
                reason = f"cannot remove: {exc.strerror or exc}"
        if reason is None:
            moved.add(row.path)
            result.moved.append(row.path)
        else:
            result.kept.append((row.path, reason))
    result.removed_dirs = _tidy(folder, result.moved)
    return result
