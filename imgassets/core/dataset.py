"""Training datasets: snapshots merged, split, described by a manifest, staged on local disk.

* **Merge**: the rows of each scientist's snapshot manifest. An image whose content hash is already
  in the dataset (the same bytes from another folder or scientist) is kept once: the first by
  (scientist, path).
* **Class map**: the sorted union of the class *names* used by the boxes; ids are positions in it,
  so the same name from two scientists is one class whatever its local id.
* **Split**: deterministic from the content hash: an image is ``val`` when the first 8 hex digits of
  its SHA-256, read as a fraction of 2**32, are below ``val_fraction``. The same bytes always land
  in the same split. With two or more images, at least one is in each split.
* **Stored**: ``datasets/<dataset_id>/manifest.parquet`` and ``datasets/<dataset_id>/data.yaml``.
* **Staged** on local disk by :mod:`imgassets.core.pull` (Ultralytics layout, through a cache).
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from imgassets.core.manifest import DATASET_SCHEMA, boxes_of, content_id, read_parquet_bytes, to_parquet_bytes
from imgassets.core.object_store import ObjectStore

DEFAULT_VAL_FRACTION = 0.2


class EmptyDatasetError(ValueError):
    """The snapshots hold fewer than two images, or no box at all: there is nothing to train on."""


@dataclass(frozen=True)
class DatasetVersion:
    """A merged, split dataset: its id, class names (id = position), rows and source snapshots."""

    dataset_id: str
    class_names: list[str]
    records: list[dict]
    snapshots: dict[str, str]
    duplicates_dropped: int

    @property
    def manifest_key(self) -> str:
        return dataset_manifest_key(self.dataset_id)

    @property
    def data_yaml_key(self) -> str:
        return f"datasets/{self.dataset_id}/data.yaml"

    def count(self, split: str) -> int:
        """Number of images in ``split`` (``train`` or ``val``)."""
        return sum(r["split"] == split for r in self.records)


def split_score(sha256: str) -> float:
    """A number in [0, 1) derived from the content hash; the split compares it to the val fraction."""
    return int(sha256[:8], 16) / 2**32


def assign_splits(hashes: list[str], val_fraction: float) -> dict[str, str]:
    """Content hash -> ``train`` or ``val`` (rule in the module docstring)."""
    splits = {h: "val" if split_score(h) < val_fraction else "train" for h in hashes}
    if len(hashes) >= 2:
        ordered = sorted(hashes, key=split_score)
        if "val" not in splits.values():
            splits[ordered[0]] = "val"
        if "train" not in splits.values():
            splits[ordered[-1]] = "train"
    return splits


def load_snapshot(store: ObjectStore, manifest_key: str) -> list[dict]:
    """Rows of a snapshot manifest stored at ``manifest_key``."""
    frame, _ = read_parquet_bytes(store.get_bytes(manifest_key))
    return [{**row, "boxes": boxes_of(row["boxes"])} for row in frame.to_dict("records")]


def merge_snapshots(snapshots: dict[str, tuple[str, list[dict]]], val_fraction: float = DEFAULT_VAL_FRACTION) -> DatasetVersion:
    """Merge ``{scientist: (snapshot_id, rows)}`` into one :class:`DatasetVersion` (rules above)."""
    seen: set[str] = set()
    merged: list[dict] = []
    dropped = 0
    for scientist in sorted(snapshots):
        snapshot_id, rows = snapshots[scientist]
        for row in sorted(rows, key=lambda r: r["path"]):
            if row["sha256"] in seen:
                dropped += 1
                continue
            seen.add(row["sha256"])
            merged.append({"scientist": scientist, "snapshot_id": snapshot_id, **row})
    if len(merged) < 2:
        raise EmptyDatasetError(f"the snapshots of {', '.join(sorted(snapshots)) or 'no scientist'} hold "
                                f"{len(merged)} valid image(s); a dataset needs at least 2 (one train, one val)")
    class_names = sorted({b["class_name"] for r in merged for b in r["boxes"]})
    if not class_names:
        raise EmptyDatasetError(f"the {len(merged)} images of {', '.join(sorted(snapshots))} have no labelled box")
    class_id = {name: i for i, name in enumerate(class_names)}
    splits = assign_splits([r["sha256"] for r in merged], val_fraction)
    records = [
        {**r, "boxes": [{**b, "class_id": class_id[b["class_name"]]} for b in r["boxes"]], "split": splits[r["sha256"]]}
        for r in merged
    ]
    header = {"class_names": class_names, "val_fraction": val_fraction}
    dataset_id = content_id(records, header)
    return DatasetVersion(dataset_id, class_names, records, {s: snapshots[s][0] for s in sorted(snapshots)}, dropped)


def data_yaml_text(class_names: list[str], root: str | None = None) -> str:
    """Ultralytics ``data.yaml``: ``path`` (when given), ``train``/``val`` image folders, ``names`` dict."""
    doc: dict = {"path": root} if root else {}
    doc.update(train="images/train", val="images/val", nc=len(class_names), names=dict(enumerate(class_names)))
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def store_dataset(store: ObjectStore, dataset: DatasetVersion) -> None:
    """Write the dataset manifest and ``data.yaml`` (skipped when this dataset id is stored)."""
    if store.exists(dataset.manifest_key):
        return
    meta = {"kind": "dataset", "dataset_id": dataset.dataset_id, "class_names": dataset.class_names,
            "snapshots": dataset.snapshots, "duplicates_dropped": dataset.duplicates_dropped}
    store.put_bytes(dataset.data_yaml_key, data_yaml_text(dataset.class_names).encode())
    store.put_bytes(dataset.manifest_key, to_parquet_bytes(dataset.records, DATASET_SCHEMA, meta))


def dataset_manifest_key(dataset_id: str) -> str:
    """Key of a dataset manifest: ``datasets/<dataset_id>/manifest.parquet``."""
    return f"datasets/{dataset_id}/manifest.parquet"


def load_dataset(store: ObjectStore, dataset_id: str) -> DatasetVersion:
    """Read a stored dataset version back (what a training container does before staging)."""
    frame, meta = read_parquet_bytes(store.get_bytes(dataset_manifest_key(dataset_id)))
    records = [{**row, "boxes": boxes_of(row["boxes"])} for row in frame.to_dict("records")]
    return DatasetVersion(dataset_id, list(meta["class_names"]), records, dict(meta["snapshots"]),
                          int(meta.get("duplicates_dropped", 0)))


def yolo_label_text(boxes: list[dict]) -> str:
    """YOLO txt for ``boxes``: one row ``class x_center y_center width height`` per box, 6 decimals."""
    return "".join(
        f"{b['class_id']} {b['x_center']:.6f} {b['y_center']:.6f} {b['width']:.6f} {b['height']:.6f}\n" for b in boxes
    )
