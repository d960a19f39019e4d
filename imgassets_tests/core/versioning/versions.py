"""Small real stores for the version tests: snapshots committed from real JPEG files, datasets merged
from them, both logged as the pipeline logs them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from imgassets.core.store.hashing import sha256_bytes
from imgassets.core.store.keys import DATASET_LOG_PREFIX, snapshot_log_prefix
from imgassets.core.versioning.dataset import DatasetVersion, merge_snapshots
from imgassets.core.versioning.dataset_store import store_dataset
from imgassets.core.versioning.refs import log_version, write_latest_ref
from imgassets.core.versioning.snapshot import SnapshotResult, commit_snapshot, load_snapshot_table
from imgassets_tests.conftest import jpeg_bytes


def image(name: str) -> bytes:
    """The JPEG called ``name`` in these tests: the same name, the same bytes."""
    r, g, b = hashlib.sha256(name.encode()).digest()[:3]
    return jpeg_bytes(color=(r, g, b))


def box(class_name: str = "cat", x: float = 0.5) -> dict:
    return {"class_name": class_name, "class_id": 0, "x_center": x, "y_center": 0.5, "width": 0.2, "height": 0.2,
            "difficult": None, "truncated": None, "iscrowd": None}


def commit(store, folder: Path, scientist: str, images: dict[str, list[dict]]) -> SnapshotResult:
    """Commit ``{image name: boxes}`` as ``scientist``'s snapshot (files written under
    ``folder/<scientist>/images``), and log it as ``image_snapshot`` does."""
    root = folder / scientist
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, boxes in sorted(images.items()):
        data = image(name)
        (root / "images" / f"{name}.jpg").write_bytes(data)
        rows.append({"sha256": sha256_bytes(data), "path": f"images/{name}.jpg", "size_bytes": len(data),
                     "format": "JPEG", "width": 64, "height": 48, "phash": None, "boxes": boxes})
    result = commit_snapshot(store, scientist, root, rows)
    log_version(store, snapshot_log_prefix(scientist), result.snapshot_id)
    return result


def build(store, snapshots: dict[str, SnapshotResult], previous: DatasetVersion | None = None,
          **merge_args) -> DatasetVersion:
    """Merge, store, log and point ``latest`` at a dataset of ``snapshots``, as ``training_dataset`` does."""
    dataset = merge_snapshots({s: (r.snapshot_id, load_snapshot_table(store, r.manifest_key)) for s, r in snapshots.items()},
                              previous_splits=previous.splits_by_hash() if previous else None,
                              previous_class_names=previous.class_names if previous else None,
                              previous_id=previous.dataset_id if previous else "", **merge_args)
    store_dataset(store, dataset)
    write_latest_ref(store, dataset.dataset_id)
    log_version(store, DATASET_LOG_PREFIX, dataset.dataset_id)
    return dataset


def content_hash(name: str) -> str:
    return sha256_bytes(image(name))
