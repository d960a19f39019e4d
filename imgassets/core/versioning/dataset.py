"""Training datasets: snapshots merged, split, described by a manifest, staged on local disk.

* **Merge**: the rows of each scientist's snapshot manifest. An image whose content hash is already
  in the dataset (the same bytes from another folder or scientist) is kept once: the first by
  (scientist, path); when the copies carry different boxes, that is a *label conflict*, reported.
* **Duplicate groups**: near-duplicates (perceptual hash, :mod:`imgassets.core.images.duplicates`) are
  grouped; a group is named by its smallest content hash and goes to one split whole.
* **Class map**: the sorted union of the class *names* used by the boxes; ids are positions in it,
  so the same name from two scientists is one class whatever its local id.
* **Split**: by group. A group with an image that was ``val`` in the previous dataset version stays
  ``val`` (``train`` likewise), so an image never moves from val to train when data arrives; a new
  group is ``val`` when the first 8 hex digits of its name, read as a fraction of 2**32, are below
  ``val_fraction``. Without history, at least one group is in each split.
* **Stored**: ``datasets/<dataset_id>/manifest.parquet`` and ``datasets/<dataset_id>/data.yaml``.
* **Staged** on local disk by :mod:`imgassets.core.versioning.pull` (Ultralytics layout, through a cache).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import pyarrow.parquet as pq
import yaml

from imgassets.core.images.duplicates import NEAR_DUPLICATE_DISTANCE, groups, near_duplicate_pairs
from imgassets.core.store.base import ObjectStore
from imgassets.core.store.keys import dataset_data_yaml_key, dataset_manifest_key
from imgassets.core.versioning.manifest import (
    DATASET_SCHEMA,
    ID_SCHEME,
    manifest_id,
    manifest_table,
    read_manifest_rows,
    to_parquet_bytes,
)
from imgassets.errors import ImgassetsError

DEFAULT_VAL_FRACTION = 0.2


class EmptyDatasetError(ImgassetsError, ValueError):
    """The snapshots hold fewer than two images, or no box at all: there is nothing to train on."""


class ManifestError(ImgassetsError, ValueError):
    """A stored dataset manifest that must not be used: its content does not give the id that names
    it, or a field holds a value no imgassets manifest can (a split other than train/val, a content
    hash that is not 64 hex digits, an unknown format). The message names the manifest and the fault."""


DATASET_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
"""A dataset id: :data:`imgassets.core.versioning.manifest.ID_LENGTH` lower-case hex digits."""
SPLITS = ("train", "val")


@dataclass(frozen=True)
class DatasetVersion:
    """A merged, split dataset: its id, class names (id = position), rows and source snapshots."""

    dataset_id: str
    class_names: list[str]
    records: list[dict]
    snapshots: dict[str, str]
    duplicates_dropped: int
    near_duplicates: list[tuple] = field(default_factory=list)
    label_conflicts: list[dict] = field(default_factory=list)
    class_id_conflicts: list[dict] = field(default_factory=list)
    val_fraction: float = DEFAULT_VAL_FRACTION

    @property
    def manifest_key(self) -> str:
        return dataset_manifest_key(self.dataset_id)

    @property
    def data_yaml_key(self) -> str:
        return dataset_data_yaml_key(self.dataset_id)

    def count(self, split: str) -> int:
        """Number of images in ``split`` (``train`` or ``val``)."""
        return sum(r["split"] == split for r in self.records)


def split_score(sha256: str) -> float:
    """A number in [0, 1) derived from the content hash; the split compares it to the val fraction."""
    return int(sha256[:8], 16) / 2**32


def assign_splits(hashes: list[str], val_fraction: float, ensure_both: bool = True) -> dict[str, str]:
    """Content hash -> ``train`` or ``val`` (rule in the module docstring); with ``ensure_both``
    and two or more hashes, at least one lands in each split."""
    splits = {h: "val" if split_score(h) < val_fraction else "train" for h in hashes}
    if ensure_both and len(hashes) >= 2:
        ordered = sorted(hashes, key=split_score)
        if "val" not in splits.values():
            splits[ordered[0]] = "val"
        if "train" not in splits.values():
            splits[ordered[-1]] = "train"
    return splits


def load_snapshot(store: ObjectStore, manifest_key: str) -> list[dict]:
    """Rows of a snapshot manifest stored at ``manifest_key``."""
    return read_manifest_rows(store.get_bytes(manifest_key))[0]


def _box_key(boxes: list[dict]) -> list[tuple]:
    return sorted((b["class_name"], round(b["x_center"], 4), round(b["y_center"], 4), round(b["width"], 4),
                   round(b["height"], 4)) for b in boxes)


def class_id_conflicts(snapshots: dict[str, tuple[str, list[dict]]]) -> list[dict]:
    """Local class ids that name different classes in different scientists' labels:
    ``[{"class_id": 0, "names": {"ana": "cat", "ben": "square"}}]`` (informational: the dataset maps
    classes by name, so these are remapped, but a scientist may have meant the same class)."""
    names: dict[int, dict[str, set[str]]] = {}
    for scientist, (_, rows) in snapshots.items():
        for row in rows:
            for box in row["boxes"]:
                names.setdefault(int(box["class_id"]), {}).setdefault(scientist, set()).add(box["class_name"])
    conflicts = []
    for class_id, by_scientist in sorted(names.items()):
        distinct = {n for ns in by_scientist.values() for n in ns}
        if len(distinct) > 1:
            conflicts.append({"class_id": class_id, "names": {s: sorted(ns) for s, ns in sorted(by_scientist.items())}})
    return conflicts


def assign_group_splits(records: list[dict], val_fraction: float, previous: dict[str, str] | None = None) -> dict[str, str]:
    """Duplicate group -> split. A group holding an image that was ``val`` in the previous dataset
    version is ``val``; one that was ``train`` stays ``train``; a new group follows the content-hash
    rule on its name. So an image never moves from val to train, and a group never straddles."""
    previous = previous or {}
    members: dict[str, list[str]] = {}
    for record in records:
        members.setdefault(record["group"], []).append(record["sha256"])
    splits: dict[str, str] = {}
    fresh: list[str] = []
    for group, hashes in members.items():
        before = {previous[h] for h in hashes if h in previous}
        if before:
            splits[group] = "val" if "val" in before else "train"
        else:
            fresh.append(group)
    splits.update(assign_splits(fresh, val_fraction, ensure_both=not splits))
    return splits


def merge_snapshots(snapshots: dict[str, tuple[str, list[dict]]], val_fraction: float = DEFAULT_VAL_FRACTION,
                    previous_splits: dict[str, str] | None = None,
                    max_distance: int = NEAR_DUPLICATE_DISTANCE) -> DatasetVersion:
    """Merge ``{scientist: (snapshot_id, rows)}`` into one :class:`DatasetVersion` (rules above).
    ``previous_splits`` (content hash -> split of the previous dataset version) keeps splits stable."""
    first: dict[str, dict] = {}
    merged: list[dict] = []
    conflicts: list[dict] = []
    dropped = 0
    for scientist in sorted(snapshots):
        snapshot_id, rows = snapshots[scientist]
        for row in sorted(rows, key=lambda r: r["path"]):
            kept = first.get(row["sha256"])
            if kept is not None:
                dropped += 1
                if _box_key(kept["boxes"]) != _box_key(row["boxes"]):
                    conflicts.append({"sha256": row["sha256"], "kept": f"{kept['scientist']}/{kept['path']}",
                                      "dropped": f"{scientist}/{row['path']}"})
                continue
            record = {"scientist": scientist, "snapshot_id": snapshot_id, **row}
            first[row["sha256"]] = record
            merged.append(record)
    if len(merged) < 2:
        raise EmptyDatasetError(f"the snapshots of {', '.join(sorted(snapshots)) or 'no scientist'} hold "
                                f"{len(merged)} valid image(s); a dataset needs at least 2 (one train, one val)")
    class_names = sorted({b["class_name"] for r in merged for b in r["boxes"]})
    if not class_names:
        raise EmptyDatasetError(f"the {len(merged)} images of {', '.join(sorted(snapshots))} have no labelled box")
    class_id = {name: i for i, name in enumerate(class_names)}
    near = near_duplicate_pairs({r["sha256"]: r["phash"] for r in merged if r.get("phash")}, max_distance)
    group_of = groups([r["sha256"] for r in merged], near)
    for record in merged:
        record["group"] = group_of[record["sha256"]]
    splits = assign_group_splits(merged, val_fraction, previous_splits)
    records = [
        {**r, "boxes": [{**b, "class_id": class_id[b["class_name"]]} for b in r["boxes"]], "split": splits[r["group"]]}
        for r in merged
    ]
    header = {"class_names": class_names, "val_fraction": val_fraction}
    dataset_id = manifest_id(manifest_table(records, DATASET_SCHEMA), header)
    return DatasetVersion(dataset_id, class_names, records, {s: snapshots[s][0] for s in sorted(snapshots)}, dropped,
                          near_duplicates=near, label_conflicts=conflicts,
                          class_id_conflicts=class_id_conflicts(snapshots), val_fraction=val_fraction)


def split_leaks(records: list[dict], max_distance: int = NEAR_DUPLICATE_DISTANCE) -> list[str]:
    """Every pair of images in different splits that are exact or near-duplicates, recomputed from
    the records' content and perceptual hashes (the leakage proof): one sentence each."""
    split_of: dict[str, set[str]] = {}
    for record in records:
        split_of.setdefault(record["sha256"], set()).add(record["split"])
    leaks = [f"{sha[:12]}… is in both splits" for sha, splits in split_of.items() if len(splits) > 1]
    by_sha = {r["sha256"]: r for r in records}
    for a, b, distance in near_duplicate_pairs({r["sha256"]: r["phash"] for r in records if r.get("phash")}, max_distance):
        if by_sha[a]["split"] != by_sha[b]["split"]:
            leaks.append(f"{by_sha[a]['scientist']}/{by_sha[a]['path']} ({by_sha[a]['split']}) and "
                         f"{by_sha[b]['scientist']}/{by_sha[b]['path']} ({by_sha[b]['split']}) are near-duplicates "
                         f"(distance {distance})")
    return leaks


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
            "snapshots": dataset.snapshots, "duplicates_dropped": dataset.duplicates_dropped,
            "near_duplicates": [list(p) for p in dataset.near_duplicates], "label_conflicts": dataset.label_conflicts,
            "class_id_conflicts": dataset.class_id_conflicts, "val_fraction": dataset.val_fraction,
            "id_scheme": ID_SCHEME}
    store.put_bytes(dataset.data_yaml_key, data_yaml_text(dataset.class_names).encode())
    store.put_bytes(dataset.manifest_key, to_parquet_bytes(dataset.records, DATASET_SCHEMA, meta))


def load_dataset(store: ObjectStore, dataset_id: str) -> DatasetVersion:
    """Read a stored dataset version back (what a training container does before staging), after
    :func:`verify_manifest`. Raises :class:`ManifestError` for a malformed id or a manifest that
    fails verification, ``ObjectNotFoundError`` when it is not stored."""
    if not DATASET_ID_PATTERN.match(dataset_id):
        raise ManifestError(f"{dataset_id!r} is not a dataset id (16 hex digits)")
    data = store.get_bytes(dataset_manifest_key(dataset_id))
    records, meta = read_manifest_rows(data)
    verify_manifest(dataset_id, data, records, meta)
    return DatasetVersion(dataset_id, list(meta["class_names"]), records, dict(meta["snapshots"]),
                          int(meta.get("duplicates_dropped", 0)),
                          near_duplicates=[tuple(p) for p in meta.get("near_duplicates", [])],
                          label_conflicts=list(meta.get("label_conflicts", [])),
                          class_id_conflicts=list(meta.get("class_id_conflicts", [])),
                          val_fraction=float(meta.get("val_fraction", DEFAULT_VAL_FRACTION)))


def verify_manifest(dataset_id: str, data: bytes, records: list[dict], meta: dict) -> None:
    """Check the manifest ``data`` (its rows ``records`` and footer ``meta``) before it is used:
    its content hashes to ``dataset_id`` (:func:`imgassets.core.versioning.manifest.manifest_id`, over the
    class names and the val fraction recorded in the footer), and every row has a split in
    :data:`SPLITS`, a 64-hex content hash and a supported format, so no value can lead a pull
    outside its destination. A manifest whose footer records no ``id_scheme`` was written by an
    earlier version, whose ids were hashed another way: it is checked field by field only (its
    images are still verified by their content hashes when pulled). Raises :class:`ManifestError`."""
    from imgassets.core.images.inspect import SUPPORTED_FORMATS

    key = dataset_manifest_key(dataset_id)
    if not isinstance(meta.get("class_names"), list) or not isinstance(meta.get("snapshots"), dict):
        raise ManifestError(f"{key}: footer has no class_names list or snapshots map")
    header = {"class_names": meta["class_names"], "val_fraction": meta.get("val_fraction", DEFAULT_VAL_FRACTION)}
    table = pq.read_table(io.BytesIO(data)).select(DATASET_SCHEMA.names).cast(DATASET_SCHEMA)  # Parquet names list items "element"
    if manifest_id(table, header) != dataset_id and meta.get("id_scheme") is not None:
        raise ManifestError(f"{key}: its content does not match its id {dataset_id} (changed after it was "
                            "written): not used")
    for number, record in enumerate(records, start=1):
        if record.get("split") not in SPLITS:
            raise ManifestError(f"{key}: row {number} has split {record.get('split')!r}, not one of {', '.join(SPLITS)}")
        if not re.fullmatch(r"[0-9a-f]{64}", str(record.get("sha256"))):
            raise ManifestError(f"{key}: row {number} has content hash {record.get('sha256')!r}, not 64 hex digits")
        if record.get("format") not in SUPPORTED_FORMATS:
            raise ManifestError(f"{key}: row {number} has format {record.get('format')!r}, not a supported format")


def yolo_label_text(boxes: list[dict]) -> str:
    """YOLO txt for ``boxes``: one row ``class x_center y_center width height`` per box, 6 decimals."""
    return "".join(
        f"{b['class_id']} {b['x_center']:.6f} {b['y_center']:.6f} {b['width']:.6f} {b['height']:.6f}\n" for b in boxes
    )
