"""Parquet manifests: the immutable description of a snapshot or a dataset.

A manifest has one row per image: ``sha256`` (content hash, names the object at
``objects/sha256/<2>/<64>``), ``path`` (relative to the scientist's folder), ``size_bytes``,
``format`` (sniffed), ``width``/``height`` (pixels, displayed frame), ``phash`` (perceptual hash)
and ``boxes``: a list of
``{class_name, class_id, x_center, y_center, width, height, difficult, truncated, iscrowd}``
(normalized xywh, displayed frame; the flags null when the label format has none). A manifest
with a box drawn as a polygon or oriented box has one more column, last, ``polygons``
(:data:`POLYGONS_FIELD`): per image, one entry per box, its normalized vertices ``[x1, y1, x2, y2,
...]`` or null for a plain box (a manifest without polygons has no such column, so its id is what it
always was). A snapshot manifest with an unlabelled image (:mod:`imgassets.core.labels.unlabelled`)
has one more column after those, ``unlabelled`` (:data:`UNLABELLED_FIELD`, true for such an image;
absent when every image is labelled, so such a manifest's id is what it always was); a dataset
never holds an unlabelled image, nor the column. A snapshot with an image labelled from
pre-annotations has a last column ``provenance`` (:data:`PROVENANCE_FIELD`; absent otherwise); a
dataset does not carry it (it records the flywheel's counts in its footer). Dataset manifests add ``scientist``, ``snapshot_id``, ``group`` (the duplicate group, named by
its smallest content hash) and ``split``. Ids (snapshot id, dataset id) are the first
:data:`ID_LENGTH` hex digits of a SHA-256 over the manifest's values column by column, in a fixed
binary form (:func:`manifest_id`), so the same content always gets the same id, whatever the
Parquet writer or the Arrow chunking.
"""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from imgassets.core.store.hashing import canonical_json
from imgassets.errors import ImgassetsError

ID_LENGTH = 16
ID_SCHEME = 2
"""Version of :func:`manifest_id`'s hashed form, hashed with the header and recorded in every
manifest's footer (``id_scheme``): 2 is the binary column form. A manifest recording no scheme, or
another one, is refused (:func:`check_manifest_id`)."""
METADATA_KEY = b"imgassets"

BOX_TYPE = pa.struct([
    ("class_name", pa.string()), ("class_id", pa.int32()), ("x_center", pa.float64()),
    ("y_center", pa.float64()), ("width", pa.float64()), ("height", pa.float64()),
    ("difficult", pa.int8()), ("truncated", pa.int8()), ("iscrowd", pa.int8()),
])
IMAGE_FIELDS = [
    ("sha256", pa.string()), ("path", pa.string()), ("size_bytes", pa.int64()), ("format", pa.string()),
    ("width", pa.int32()), ("height", pa.int32()), ("phash", pa.string()), ("boxes", pa.list_(BOX_TYPE)),
]
SNAPSHOT_SCHEMA = pa.schema(IMAGE_FIELDS)
POLYGONS_FIELD = pa.field("polygons", pa.list_(pa.list_(pa.float64())))
"""An optional column of a manifest: each box's polygon, aligned with ``boxes``."""
UNLABELLED_FIELD = pa.field("unlabelled", pa.bool_())
"""An optional column of a snapshot manifest: whether the image is unlabelled (never trained on)."""
PROVENANCE_FIELD = pa.field("provenance", pa.struct([("model_id", pa.string()), ("rejected", pa.int32()),
                                                     ("boxes", pa.list_(pa.string()))]))
"""An optional column of a snapshot manifest: for an image whose labels were compared with the
pre-annotations handed out for it (:mod:`imgassets.core.labeling.provenance`), the champion that
proposed them, how many it proposed were deleted, and each box's kind (``accepted``, ``corrected``,
``added``) aligned with ``boxes``; null for any other image."""
OPTIONAL_FIELDS = (POLYGONS_FIELD, UNLABELLED_FIELD, PROVENANCE_FIELD)
"""The optional columns of a manifest, in the order they follow the schema's columns when present."""
DATASET_SCHEMA = pa.schema([("scientist", pa.string()), ("snapshot_id", pa.string()), *IMAGE_FIELDS,
                            ("group", pa.string()), ("split", pa.string())])


class ManifestError(ImgassetsError, ValueError):
    """A stored manifest (snapshot or dataset) that must not be used: its footer records no id
    scheme or another one, its content does not give the id that names it, or a field holds a value
    no imgassets manifest can (a split other than train/val, a content hash that is not 64 hex
    digits, an unknown format). The message names the manifest and the fault."""


def check_manifest_id(key: str, table: pa.Table, header: dict, meta: dict, expected_id: str) -> None:
    """Raise :class:`ManifestError` naming ``key`` unless the manifest's footer ``meta`` records
    ``id_scheme`` :data:`ID_SCHEME` and its ``table`` (with ``header``, as :func:`manifest_id`
    hashes them) gives ``expected_id``, the id that names it. Every manifest is checked, always:
    without it a footer stripped of its scheme would let a row move to another split, or a box
    change, unnoticed (label poisoning through the store)."""
    scheme = meta.get("id_scheme")
    if scheme != ID_SCHEME:
        found = "records no id scheme" if scheme is None else f"records id scheme {scheme!r}"
        raise ManifestError(f"{key}: its footer {found}, not {ID_SCHEME}: its content cannot be checked against "
                            f"its id {expected_id}: not used")
    if manifest_id(table, header) != expected_id:
        raise ManifestError(f"{key}: its content does not match its id {expected_id} (changed after it was "
                            "written): not used")


def with_optional(schema: pa.Schema, columns: list[str]) -> pa.Schema:
    """``schema`` with each of :data:`OPTIONAL_FIELDS` that ``columns`` (a manifest's) hold appended, in order."""
    for optional in OPTIONAL_FIELDS:
        if optional.name in columns and optional.name not in schema.names:
            schema = schema.append(optional)
    return schema


def manifest_table(records: list[dict] | pa.Table, schema: pa.Schema) -> pa.Table:
    """Manifest rows as an Arrow table with ``schema`` (a table is returned as it is; rows of which
    one has a value in an optional column, ``polygons`` or a true ``unlabelled``, get that column too)."""
    if isinstance(records, pa.Table):
        return records
    present = [f.name for f in OPTIONAL_FIELDS if any(r.get(f.name) for r in records)]
    return pa.Table.from_pylist(records, schema=with_optional(schema, present))


def manifest_id(table: pa.Table, header: dict) -> str:
    """Id of a manifest: :data:`ID_LENGTH` hex digits of one SHA-256 over the canonical JSON of its
    ``header`` (e.g. the scientist) and column names, then each column's Arrow type, null mask and
    values in a fixed binary form (:func:`_hash_column`): little-endian numbers, strings as their
    lengths and UTF-8 bytes, a list column as its per-row lengths then its flattened values, a
    struct as each field in turn. So the same values give the same id whatever the Arrow chunking
    or slicing, and moving a box to another image changes it."""
    digest = hashlib.sha256()
    _hash_part(digest, canonical_json({"header": header, "columns": table.column_names, "scheme": ID_SCHEME}).encode())
    for column in table.columns:
        _hash_column(digest, column.combine_chunks())
    return digest.hexdigest()[:ID_LENGTH]


def _hash_part(digest: hashlib._Hash, data: bytes | memoryview) -> None:
    """Feed ``data`` length-prefixed (8 bytes, little-endian), so parts never run into each other."""
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(data)


def _hash_column(digest: hashlib._Hash, array: pa.Array) -> None:
    """Feed one column: its type, null mask and values (see :func:`manifest_id`); null slots are
    hashed as zero, empty or no items, whatever bytes the Arrow buffers hold under them; a column
    without nulls has an empty null mask."""
    kind = array.type
    _hash_part(digest, str(kind).encode())
    nulls = array.is_null().to_numpy(zero_copy_only=False).astype(np.uint8).tobytes() if array.null_count else b""
    _hash_part(digest, nulls)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        _hash_part(digest, pc.fill_null(pc.list_value_length(array), 0).to_numpy().astype("<i8").tobytes())
        _hash_column(digest, pc.list_flatten(array))
    elif pa.types.is_struct(kind):
        for child in array.flatten():
            _hash_column(digest, child)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        filled = pc.fill_null(array, "")
        offsets = np.frombuffer(filled.buffers()[1], dtype=np.int64 if pa.types.is_large_string(kind) else np.int32)
        offsets = offsets[filled.offset:filled.offset + len(filled) + 1]
        _hash_part(digest, np.diff(offsets).astype("<i8").tobytes())
        data = filled.buffers()[2]
        _hash_part(digest, memoryview(data)[offsets[0]:offsets[-1]] if data is not None and len(filled) else b"")
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        values = pc.fill_null(array, False if pa.types.is_boolean(kind) else 0).to_numpy(zero_copy_only=False)
        _hash_part(digest, values.astype(values.dtype.newbyteorder("<")).tobytes())
    else:  # any other type: its values as canonical JSON
        _hash_part(digest, canonical_json(array.to_pylist()).encode())


def to_parquet_bytes(records: list[dict] | pa.Table, schema: pa.Schema, metadata: dict) -> bytes:
    """Serialise manifest rows (dicts, or a table with ``schema``); ``metadata`` is stored as JSON in the footer."""
    table = manifest_table(records, schema)
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def read_parquet_bytes(data: bytes) -> tuple[pd.DataFrame, dict]:
    """Rows (a DataFrame, ``boxes`` as lists of dicts) and the JSON footer metadata of a manifest."""
    table, meta = read_with_footer(data)
    return table.to_pandas(), meta


def footer(schema: pa.Schema) -> dict:
    """The JSON footer (:data:`METADATA_KEY`) of a manifest's (or any of this store's Parquet
    objects') schema; ``{}`` when it has none."""
    return json.loads((schema.metadata or {}).get(METADATA_KEY, b"{}"))


def read_with_footer(data: bytes, columns: list[str] | None = None) -> tuple[pa.Table, dict]:
    """A Parquet object's table (only ``columns`` when given) and its JSON footer: the one reader of
    the store's Parquet objects with a footer (manifests, lineage shards)."""
    table = pq.read_table(io.BytesIO(data), columns=columns)
    return table, footer(table.schema)


def read_footer(data: bytes) -> dict:
    """Only the JSON footer of a Parquet object (its schema is read, no column)."""
    return footer(pq.read_schema(io.BytesIO(data)))


def manifest_columns(data: bytes, columns: list[str]) -> pa.Table:
    """Only ``columns`` of a manifest (Parquet reads the others not at all). Raises
    ``pyarrow.ArrowInvalid`` naming a column the manifest lacks."""
    return pq.read_table(io.BytesIO(data), columns=columns)


def manifest_hashes(data: bytes) -> list[str]:
    """The ``sha256`` column of a manifest (its objects' content hashes), read without the rest."""
    return manifest_columns(data, ["sha256"]).column("sha256").to_pylist()
