"""Image snapshots: a scientist's valid images in the object store plus an immutable manifest.

Commit protocol (all or nothing): every image is uploaded first to its content-addressed key
(skipped when the object already exists), and the manifest ``snapshots/<scientist>/<id>.parquet``
is written last, atomically. A run that fails midway leaves objects but no manifest, so the
snapshot does not exist and the next run uploads only what is missing. Before upload, each file
is hashed again: a file that changed since the image index read it is refused, never stored under
a stale hash. Source files are only read.

Hence a committed manifest vouches for its objects: a commit given the scientist's previous
snapshot (:func:`stored_objects`) neither checks nor uploads the objects it lists, and checks only
the rest (on S3, one HEAD request per new image instead of one per image). An object that is
there already is reused only when intact (``ObjectStore.reuse``: the local store hashes it again,
S3 compares the SHA-256 recorded at upload), else replaced by the scientist's good bytes; a reused
object is freshened, so garbage collection
(:mod:`imgassets.core.versioning.gc`), which spares what is younger than its grace period, never
deletes it under a commit; the previous snapshot a commit trusts is always retained by it. A
store whose objects are removed behind its back (an S3 lifecycle rule) must not be given a
previous snapshot.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from imgassets.core.drive.source_files import open_source
from imgassets.core.frames import plain_values
from imgassets.core.images.index import valid_images
from imgassets.core.labels.checks import LabelFindings
from imgassets.core.labels.table import prelabelled_images, usable_boxes
from imgassets.core.labels.unlabelled import unlabelled_mask
from imgassets.core.progress import Progress
from imgassets.core.store.base import ObjectNotFoundError, ObjectStore
from imgassets.core.store.hashing import sha256_bytes
from imgassets.core.store.keys import content_key, snapshot_manifest_key
from imgassets.core.versioning.manifest import (
    BOX_TYPE,
    ID_SCHEME,
    POLYGONS_FIELD,
    PROVENANCE_FIELD,
    SNAPSHOT_SCHEMA,
    UNLABELLED_FIELD,
    ManifestError,
    check_manifest_id,
    manifest_hashes,
    manifest_id,
    manifest_table,
    read_with_footer,
    to_parquet_bytes,
    with_optional,
)
from imgassets.errors import ImgassetsError


class SnapshotError(ImgassetsError, RuntimeError):
    """A snapshot that must not be committed; the message names the file and the reason."""


@dataclass(frozen=True)
class SnapshotResult:
    """A committed snapshot: its id and manifest key, and what the commit uploaded."""

    scientist: str
    snapshot_id: str
    manifest_key: str
    images: int
    boxes: int
    uploaded_objects: int
    uploaded_bytes: int
    existing_objects: int
    """Objects already in the store: found by an existence check, or listed by the previous snapshot."""
    checked_objects: int = 0
    """Existence checks made (the objects not listed by the previous snapshot)."""
    left_out: tuple[tuple[str, str], ...] = ()
    """``(path, reason)`` of images left out of the snapshot because their file vanished or changed
    after the image index read it (the next run indexes them again)."""


def snapshot_table(index: pd.DataFrame, labels: pd.DataFrame, findings: LabelFindings | None = None,
                   declared: Callable[[str], bool] | None = None) -> pa.Table:
    """The manifest (:data:`SNAPSHOT_SCHEMA`, one row per valid image of ``index``, sorted by path)
    with each image's boxes from ``labels`` in label-file and line order (and their polygons, when a
    box has one: :data:`~imgassets.core.versioning.manifest.POLYGONS_FIELD`), and whether each image
    is unlabelled when one is (:data:`~imgassets.core.versioning.manifest.UNLABELLED_FIELD`, the rule
    of :mod:`imgassets.core.labels.unlabelled`, with the folders the setting ``declared`` unlabelled);
    built column by column (a box column gathered by
    the images' offsets), never a dict per row.

    Raises :class:`SnapshotError` when ``labels`` has blocking findings (``findings``: those of
    ``labels``, computed here when not given): bad labels never reach a snapshot, even when the
    asset checks were skipped.
    """
    findings = (findings or LabelFindings.of(labels)).blocking
    if findings:
        listed = "; ".join(str(f) for f in findings[:5])
        raise SnapshotError(f"{len(findings)} label problems block the snapshot: {listed}")
    images = valid_images(index)
    if not images["path"].is_monotonic_increasing:  # an index from update_image_index is sorted already
        images = images.sort_values("path")
    paths = images["path"].to_numpy(dtype=object)
    if not labels["label_file"].is_monotonic_increasing:  # build_label_table's order: label file, line
        labels = labels.sort_values(["label_file", "line"], kind="stable")
    usable = usable_boxes(labels)  # blocking findings were refused above: no unparsed row is left
    image_of = pd.Index(paths).get_indexer(labels["image_path"].to_numpy(object)[usable])  # -1: rejected image
    rows = np.flatnonzero(usable)[image_of >= 0]
    image_of = image_of[image_of >= 0]
    by_image = np.argsort(image_of, kind="stable")  # the table is in label-file and line order: kept per image
    usable = labels.take(rows[by_image])
    offsets = np.append(np.searchsorted(image_of[by_image], np.arange(len(paths))), len(usable))
    box_values = pa.StructArray.from_arrays(
        [pa.array(usable[f.name], type=f.type, from_pandas=True) for f in BOX_TYPE], fields=list(BOX_TYPE))
    boxes = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), box_values, type=SNAPSHOT_SCHEMA.field("boxes").type)
    columns = [pa.array(images[f.name], type=f.type, from_pandas=True) for f in SNAPSHOT_SCHEMA if f.name != "boxes"]
    table = pa.Table.from_arrays([*columns, boxes], schema=SNAPSHOT_SCHEMA)
    polygons = usable["polygon"]
    if polygons.notna().any():  # the column exists only where a polygon does: ids of box-only manifests are as before
        vertices = pa.array([None if v is None else list(v) for v in plain_values(polygons)], POLYGONS_FIELD.type.value_type)
        table = table.append_column(POLYGONS_FIELD, pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), vertices))
    unlabelled = unlabelled_mask(paths, index, labels, declared)
    if unlabelled.any():  # the column exists only where an unlabelled image does: ids as before otherwise
        table = table.append_column(UNLABELLED_FIELD, pa.array(unlabelled, pa.bool_()))
    compared = prelabelled_images(labels)
    if compared:  # likewise: only where an image was labelled from pre-annotations
        kinds = plain_values(usable["provenance"]) if "provenance" in usable.columns else [None] * len(usable)
        values = []
        for i, path in enumerate(paths.tolist()):
            info = compared.get(path)
            values.append(None if info is None else {"model_id": info.get("model_id", ""),
                                                     "rejected": int(info.get("rejected", 0)),
                                                     "boxes": list(kinds[offsets[i]:offsets[i + 1]])})
        table = table.append_column(PROVENANCE_FIELD, pa.array(values, PROVENANCE_FIELD.type))
    return table


class SourceChangedError(SnapshotError):
    """An image's file vanished, became unreadable or changed after the image index read it."""


def upload_object(store: ObjectStore, folder: str | Path, path: str, sha256: str) -> int:
    """Upload ``folder/path`` (``path`` relative, in stored form: :mod:`imgassets.core.drive.paths`)
    to its content-addressed key unless an intact copy is there (``ObjectStore.reuse``); return the
    bytes uploaded (0 when it was reused). A stored copy whose bytes changed is replaced by the good
    bytes the scientist just supplied. Raises :class:`SourceChangedError` when the file is gone, unreadable or no longer
    has ``sha256``."""
    key = content_key(sha256)
    if store.reuse(key, sha256):  # intact, and freshened so that a garbage collection running now spares it
        return 0
    try:
        with open_source(folder, path) as handle:
            data = handle.read()
    except OSError as exc:
        raise SourceChangedError(f"vanished or unreadable since it was indexed: {getattr(exc, 'reason', exc)}") from None
    if sha256_bytes(data) != sha256:
        raise SourceChangedError("changed since it was indexed (content hash differs)")
    store.put_bytes(key, data, sha256=sha256)
    return len(data)


def _upload_chunk(store: ObjectStore, folder: str, chunk: list[tuple[str, str]]) -> list[int | SourceChangedError]:
    results: list[int | SourceChangedError] = []
    for sha, path in chunk:
        try:
            results.append(upload_object(store, folder, path, sha))
        except SourceChangedError as exc:
            results.append(exc)
    return results


def upload_objects(store: ObjectStore, folder: str | Path, sources: dict[str, str], workers: int | None = None,
                   changed: dict[str, str] | None = None) -> tuple[int, int]:
    """Upload ``{sha256: path}`` (paths relative to ``folder``, in stored form) on ``workers`` threads (default: the store's
    ``upload_workers``); return (objects uploaded, bytes). A source that vanished or changed since
    it was indexed is not uploaded: its hash and the reason go in ``changed`` (raised as
    :class:`SourceChangedError` when ``changed`` is None).

    Objects go to the threads in chunks (about four per thread, at most 64 objects each): one task
    per object would cost more than the existence check of an object that is already stored. On
    the first failure the chunks not yet started are cancelled and the error is raised: what was
    uploaded stays (objects are immutable and content-addressed), nothing else is written.
    """
    items = list(sources.items())
    workers = workers or store.upload_workers
    size = max(1, min(64, len(items) // (max(1, workers) * 4)))
    uploaded = uploaded_bytes = 0
    shown = Progress("uploading snapshot", len(items))
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="upload")
    futures = {pool.submit(_upload_chunk, store, os.fspath(folder), items[i:i + size]): i for i in range(0, len(items), size)}
    try:
        for future in as_completed(futures):
            counts = future.result()
            shown.advance(len(counts))
            for (sha, _), count in zip(items[futures[future]:futures[future] + size], counts, strict=True):
                if isinstance(count, SourceChangedError):
                    if changed is None:
                        raise count
                    changed[sha] = str(count)
                    continue
                uploaded += count > 0
                uploaded_bytes += count
    except BaseException as exc:
        # An upload error: wait for the running chunks (they end within the store's timeouts). An
        # interrupt (SIGTERM, Ctrl-C; not an Exception): never wait on a request to a frozen endpoint.
        pool.shutdown(wait=isinstance(exc, Exception), cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return uploaded, uploaded_bytes


def stored_objects(store: ObjectStore, manifest_key: str | None) -> frozenset[str]:
    """Content hashes of the objects listed by the committed manifest at ``manifest_key`` (every
    one of them is in ``store``: the commit protocol writes a manifest after its objects); empty
    for ``None``, or a manifest that is not in the store or not readable Parquet (then every
    object is checked: a vouch that cannot be read is no vouch)."""
    if manifest_key is None:
        return frozenset()
    try:
        return frozenset(manifest_hashes(store.get_bytes(manifest_key)))
    except (ObjectNotFoundError, pa.ArrowException):
        return frozenset()


def commit_snapshot(store: ObjectStore, scientist: str, folder: str | Path, records: list[dict] | pa.Table,
                    workers: int | None = None, stored: Collection[str] = frozenset()) -> SnapshotResult:
    """Upload the images of ``records`` (manifest rows, or :func:`snapshot_table`) from ``folder``
    in parallel, then write the manifest (protocol above). ``workers``: upload threads (default
    the store's ``upload_workers``; size an S3 store's connection pool to match). ``stored``:
    content hashes known to be in the store (:func:`stored_objects` of the scientist's previous
    snapshot), neither checked nor uploaded."""
    table = manifest_table(records, SNAPSHOT_SCHEMA)
    hashes = table.column("sha256").to_pylist()
    sources = {sha: path for sha, path in zip(hashes, table.column("path").to_pylist(), strict=True) if sha not in stored}
    changed: dict[str, str] = {}
    uploaded, uploaded_bytes = upload_objects(store, folder, sources, workers, changed) if sources else (0, 0)
    left_out: tuple[tuple[str, str], ...] = ()
    if changed:  # the manifest lists only what is in the store: those images wait for the next run
        keep = pc.invert(pc.is_in(table.column("sha256"), pa.array(list(changed), pa.string())))
        left_out = tuple(sorted((path, changed[sha]) for sha, path in zip(hashes, table.column("path").to_pylist(),
                                                                           strict=True) if sha in changed))
        table = table.filter(keep)
        hashes = table.column("sha256").to_pylist()
    snapshot_id = manifest_id(table, {"scientist": scientist})
    existing = len(set(hashes)) - uploaded
    key = snapshot_manifest_key(scientist, snapshot_id)
    if not store.touch(key):  # an existing manifest is freshened: it is the scientist's latest again
        meta = {"kind": "snapshot", "scientist": scientist, "snapshot_id": snapshot_id, "id_scheme": ID_SCHEME}
        store.put_bytes(key, to_parquet_bytes(table, SNAPSHOT_SCHEMA, meta))
    boxes = pc.sum(pc.list_value_length(table.column("boxes"))).as_py() or 0
    return SnapshotResult(scientist, snapshot_id, key, table.num_rows, boxes, uploaded, uploaded_bytes, existing,
                          len(sources), left_out)


def load_snapshot(store: ObjectStore, manifest_key: str) -> list[dict]:
    """Rows of a snapshot manifest stored at ``manifest_key``, as dicts."""
    return load_snapshot_table(store, manifest_key).to_pylist()


def load_snapshot_table(store: ObjectStore, manifest_key: str) -> pa.Table:
    """A snapshot manifest stored at ``manifest_key`` as an Arrow table (:data:`SNAPSHOT_SCHEMA`),
    checked against its id first: its footer names the scientist and snapshot id of that key, and
    its content hashes to that id (:func:`imgassets.core.versioning.manifest.check_manifest_id`).
    Raises :class:`ManifestError` naming the key otherwise, ``ObjectNotFoundError`` when it is not
    stored."""
    stored, meta = read_with_footer(store.get_bytes(manifest_key))
    scientist, snapshot_id = meta.get("scientist"), meta.get("snapshot_id")
    if not isinstance(scientist, str) or not isinstance(snapshot_id, str) or \
            snapshot_manifest_key(scientist, snapshot_id) != manifest_key:
        raise ManifestError(f"{manifest_key}: its footer names scientist {scientist!r} and snapshot "
                            f"{snapshot_id!r}, not this key: not used")
    table = snapshot_rows_table(stored)
    check_manifest_id(manifest_key, table, {"scientist": scientist}, meta, snapshot_id)
    return table


def snapshot_rows_table(rows: list[dict] | pa.Table) -> pa.Table:
    """A snapshot manifest's rows (dicts or a table) as a table with :data:`SNAPSHOT_SCHEMA` (and
    ``polygons`` when they have it)."""
    if isinstance(rows, pa.Table):
        schema = with_optional(SNAPSHOT_SCHEMA, rows.column_names)
        return rows.select(schema.names).cast(schema)  # Parquet names list items "element"
    return manifest_table(rows, SNAPSHOT_SCHEMA)
