"""A dataset version in the object store: its manifest, ``data.yaml`` and near-duplicate pairs
written (:func:`store_dataset`) and read back verified against the id (:func:`load_dataset`).

* **Stored**: ``datasets/<dataset_id>/manifest.parquet``, ``datasets/<dataset_id>/data.yaml`` and
  ``datasets/<dataset_id>/near_duplicates.parquet`` (:data:`PAIRS_SCHEMA`: every near-duplicate pair
  the merge found, each pair once) and, when the merge linked frames,
  ``datasets/<dataset_id>/sequences.parquet`` (:data:`~imgassets.core.versioning.sequences.LINKS_SCHEMA`).
"""

from __future__ import annotations

import io
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from imgassets.core.store.base import ObjectStore
from imgassets.core.store.keys import (
    dataset_manifest_key,
    dataset_near_duplicates_key,
)
from imgassets.core.versioning.dataset import DatasetVersion
from imgassets.core.versioning.manifest import (
    DATASET_SCHEMA,
    ID_SCHEME,
    ManifestError,
    check_manifest_id,
    read_with_footer,
    to_parquet_bytes,
    with_optional,
)
from imgassets.core.versioning.sequences import load_links, store_links
from imgassets.core.versioning.splits import DEFAULT_VAL_FRACTION, SPLITS, ULTRALYTICS_SPLIT

DATASET_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
"""A dataset id: :data:`imgassets.core.versioning.manifest.ID_LENGTH` lower-case hex digits."""


PAIRS_SCHEMA = pa.schema([("sha256_a", pa.string()), ("sha256_b", pa.string()), ("distance", pa.int8())])
"""Near-duplicate pairs: two content hashes (``sha256_a`` < ``sha256_b``) and their perceptual-hash distance in bits."""


def data_yaml_text(class_names: list[str], root: str | None = None) -> str:
    """Ultralytics ``data.yaml``: ``path`` (when given), ``train``/``val`` image folders, the
    benchmark split as ``test`` (where Ultralytics' ``val(split="test")`` looks), ``names`` dict."""
    doc: dict = {"path": root} if root else {}
    doc.update({ULTRALYTICS_SPLIT[split]: f"images/{split}" for split in SPLITS})
    doc.update(nc=len(class_names), names=dict(enumerate(class_names)))
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def pairs_table(pairs: list[tuple]) -> pa.Table:
    """Near-duplicate pairs ``(sha256_a, sha256_b, distance)`` as a :data:`PAIRS_SCHEMA` table."""
    a, b, distance = zip(*pairs, strict=True) if pairs else ((), (), ())
    return pa.table({"sha256_a": pa.array(a, pa.string()), "sha256_b": pa.array(b, pa.string()),
                     "distance": pa.array(distance, pa.int8())}, schema=PAIRS_SCHEMA)


def store_dataset(store: ObjectStore, dataset: DatasetVersion) -> None:
    """Write the near-duplicate pairs, ``data.yaml`` and, last, the dataset manifest (a dataset is
    stored once its manifest is: skipped when this dataset id's manifest already is)."""
    if store.exists(dataset.manifest_key):
        return
    meta = {"kind": "dataset", "dataset_id": dataset.dataset_id, "class_names": dataset.class_names,
            "snapshots": dataset.snapshots, "duplicates_dropped": dataset.duplicates_dropped,
            "near_duplicate_pairs": len(dataset.near_duplicates), "sequence_links": len(dataset.sequence_links),
            "sequence_rules": dataset.sequence_rules,
            "label_conflicts": dataset.label_conflicts,
            "class_id_conflicts": dataset.class_id_conflicts, "val_fraction": dataset.val_fraction,
            "benchmark_fraction": dataset.benchmark_fraction, "retracted_images": dataset.retracted_images,
            "unlabelled_images": dataset.unlabelled_images, "flywheel": dataset.flywheel,
            "class_registry": dataset.class_registry, "id_scheme": ID_SCHEME}
    store.put_bytes(dataset.near_duplicates_key, to_parquet_bytes(pairs_table(dataset.near_duplicates), PAIRS_SCHEMA,
                                                                 {"dataset_id": dataset.dataset_id}))
    store_links(store, dataset.dataset_id, dataset.sequence_links)
    store.put_bytes(dataset.data_yaml_key, data_yaml_text(dataset.class_names).encode())
    store.put_bytes(dataset.manifest_key, to_parquet_bytes(dataset.table, DATASET_SCHEMA, meta))


def _stored_pairs(store: ObjectStore, dataset_id: str) -> list[tuple]:
    """The dataset's near-duplicate pairs, from its ``near_duplicates.parquet``."""
    table = pq.read_table(io.BytesIO(store.get_bytes(dataset_near_duplicates_key(dataset_id))))
    return list(zip(*(table.column(c).to_pylist() for c in PAIRS_SCHEMA.names), strict=True))


def load_dataset(store: ObjectStore, dataset_id: str) -> DatasetVersion:
    """Read a stored dataset version back (what a training container does before staging), after
    :func:`verify_manifest`. Raises :class:`ManifestError` for a malformed id or a manifest that
    fails verification, ``ObjectNotFoundError`` when it (or its pairs) is not stored."""
    if not DATASET_ID_PATTERN.match(dataset_id):
        raise ManifestError(f"{dataset_id!r} is not a dataset id (16 hex digits)")
    stored, meta = read_with_footer(store.get_bytes(dataset_manifest_key(dataset_id)))
    schema = with_optional(DATASET_SCHEMA, stored.column_names)
    table = stored.select(schema.names).cast(schema)  # Parquet names list items "element"
    verify_manifest(dataset_id, table, meta)
    return DatasetVersion(dataset_id, list(meta["class_names"]), table, dict(meta["snapshots"]),
                          int(meta.get("duplicates_dropped", 0)),
                          near_duplicates=_stored_pairs(store, dataset_id),
                          sequence_links=load_links(store, dataset_id),
                          sequence_rules=dict(meta.get("sequence_rules") or {}),
                          label_conflicts=list(meta.get("label_conflicts", [])),
                          class_id_conflicts=list(meta.get("class_id_conflicts", [])),
                          val_fraction=float(meta.get("val_fraction", DEFAULT_VAL_FRACTION)),
                          benchmark_fraction=float(meta.get("benchmark_fraction", 0.0)),
                          retracted_images=int(meta.get("retracted_images", 0)),
                          unlabelled_images=dict(meta.get("unlabelled_images") or {}),
                          flywheel=dict(meta.get("flywheel") or {}),
                          class_registry=meta.get("class_registry"))


def verify_manifest(dataset_id: str, table: pa.Table, meta: dict) -> None:
    """Check a dataset manifest (its ``table`` with the dataset schema, and footer ``meta``) before
    it is used: its content hashes to ``dataset_id`` (:func:`imgassets.core.versioning.manifest.manifest_id`,
    over the class names and the val fraction recorded in the footer), and every row has a split in
    :data:`SPLITS`, a 64-hex content hash and a supported format, so no value can lead a pull
    outside its destination. A footer without ``id_scheme`` is refused
    (:func:`~imgassets.core.versioning.manifest.check_manifest_id`). Raises :class:`ManifestError`
    naming the manifest and the fault (for a field, the first faulty row, from 1, and its value)."""
    from imgassets.core.images.inspect import SUPPORTED_FORMATS

    key = dataset_manifest_key(dataset_id)
    if not isinstance(meta.get("class_names"), list) or not isinstance(meta.get("snapshots"), dict):
        raise ManifestError(f"{key}: footer has no class_names list or snapshots map")
    header = {"class_names": meta["class_names"], "val_fraction": meta.get("val_fraction", DEFAULT_VAL_FRACTION)}
    check_manifest_id(key, table, header, meta, dataset_id)
    rules = (("split", pc.is_in(table.column("split"), pa.array(SPLITS)), f"not one of {', '.join(SPLITS)}"),
             ("sha256", pc.match_substring_regex(table.column("sha256"), r"^[0-9a-f]{64}$"), "not 64 hex digits"),
             ("format", pc.is_in(table.column("format"), pa.array(list(SUPPORTED_FORMATS))), "not a supported format"))
    names = {"split": "split", "sha256": "content hash", "format": "format"}
    for column, ok, reason in rules:
        bad = np.flatnonzero(~pc.fill_null(ok, False).to_numpy(zero_copy_only=False))
        if len(bad):
            value = table.column(column)[int(bad[0])].as_py()
            raise ManifestError(f"{key}: row {int(bad[0]) + 1} has {names[column]} {value!r}, {reason}")


def yolo_label_text(boxes: list[dict]) -> str:
    """YOLO txt for ``boxes``: one row ``class x_center y_center width height`` per box, 6 decimals."""
    return "".join(
        f"{b['class_id']} {b['x_center']:.6f} {b['y_center']:.6f} {b['width']:.6f} {b['height']:.6f}\n" for b in boxes
    )
