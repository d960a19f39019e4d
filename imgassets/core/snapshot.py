"""Image snapshots: a scientist's valid images in the object store plus an immutable manifest.

Commit protocol (all or nothing): every image is uploaded first to its content-addressed key
(skipped when the object already exists), and the manifest ``snapshots/<scientist>/<id>.parquet``
is written last, atomically. A run that fails midway leaves objects but no manifest, so the
snapshot does not exist and the next run uploads only what is missing. Before upload, each file
is hashed again: a file that changed since the image index read it is refused, never stored under
a stale hash. Source files are only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from imgassets.core.hashing import sha256_bytes
from imgassets.core.image_index import valid_images
from imgassets.core.label_checks import blocking_findings
from imgassets.core.manifest import SNAPSHOT_SCHEMA, content_id, to_parquet_bytes
from imgassets.core.object_store import ObjectStore, content_key


class SnapshotError(RuntimeError):
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


def manifest_key(scientist: str, snapshot_id: str) -> str:
    """Key of a snapshot manifest: ``snapshots/<scientist>/<snapshot_id>.parquet``."""
    return f"snapshots/{scientist}/{snapshot_id}.parquet"


def snapshot_records(index: pd.DataFrame, labels: pd.DataFrame) -> list[dict]:
    """Manifest rows (sorted by path) for the valid images of ``index`` with their boxes.

    Raises :class:`SnapshotError` when ``labels`` has blocking findings: bad labels never reach a
    snapshot, even when the asset checks were skipped.
    """
    findings = blocking_findings(labels)
    if findings:
        listed = "; ".join(str(f) for f in findings[:5])
        raise SnapshotError(f"{len(findings)} label problems block the snapshot: {listed}")
    boxes: dict[str, list[dict]] = {}
    for row in labels[labels["image_path"].notna()].sort_values(["label_file", "line"]).itertuples():
        boxes.setdefault(row.image_path, []).append({
            "class_name": row.class_name, "class_id": int(row.class_id), "x_center": float(row.x_center),
            "y_center": float(row.y_center), "width": float(row.width), "height": float(row.height)})
    return [
        {"sha256": r.sha256, "path": r.path, "size_bytes": int(r.size_bytes), "format": r.format,
         "width": int(r.width), "height": int(r.height), "boxes": boxes.get(r.path, [])}
        for r in valid_images(index).sort_values("path").itertuples()
    ]


def commit_snapshot(store: ObjectStore, scientist: str, folder: str | Path, records: list[dict]) -> SnapshotResult:
    """Upload the images of ``records`` from ``folder``, then write the manifest (protocol above)."""
    folder = Path(folder)
    snapshot_id = content_id(records, {"scientist": scientist})
    uploaded = uploaded_bytes = existing = 0
    for record in records:
        key = content_key(record["sha256"])
        if store.exists(key):
            existing += 1
            continue
        source = folder / record["path"]
        data = source.read_bytes()
        if sha256_bytes(data) != record["sha256"]:
            raise SnapshotError(f"{source}: file changed since it was indexed; run the image index again")
        store.put_bytes(key, data)
        uploaded += 1
        uploaded_bytes += len(data)
    key = manifest_key(scientist, snapshot_id)
    if not store.exists(key):
        meta = {"kind": "snapshot", "scientist": scientist, "snapshot_id": snapshot_id}
        store.put_bytes(key, to_parquet_bytes(records, SNAPSHOT_SCHEMA, meta))
    return SnapshotResult(scientist, snapshot_id, key, len(records), sum(len(r["boxes"]) for r in records),
                          uploaded, uploaded_bytes, existing)
