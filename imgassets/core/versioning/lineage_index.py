"""The lineage index: which snapshot and dataset manifests hold an image, without reading them all.

Manifests are immutable, so an index of them is derived data that can only fall behind, never be
wrong. It is kept next to the manifests, sharded by the first two hex digits of the content hash:
``lineage/<2 hex>.parquet`` holds, for every indexed manifest, the rows of the images whose hash
starts with those digits (:data:`INDEX_SCHEMA`), sorted by hash; its footer lists the manifest
keys it covers. A lookup lists the manifest keys (one listing per prefix), reads the one shard of
the hash and reads directly only the manifests the shard does not cover yet, so a lookup is right
whether or not the index has been updated (or an update was interrupted, or two updates raced:
each shard is replaced whole, and the loser's manifests are simply read directly next time).

:func:`update_lineage_index` adds the manifests not yet covered (the dataset build calls it once per
build); its cost follows the index's size, a lookup's follows one shard's.
"""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from imgassets.core.store.base import ObjectNotFoundError, ObjectStore
from imgassets.core.store.keys import DATASETS_PREFIX, SNAPSHOTS_PREFIX, lineage_shard_key, snapshot_of_key
from imgassets.core.versioning.manifest import METADATA_KEY, read_with_footer

INDEX_SCHEMA = pa.schema([("sha256", pa.string()), ("manifest_key", pa.string()), ("kind", pa.string()),
                          ("id", pa.string()), ("scientist", pa.string()), ("path", pa.string()), ("split", pa.string())])
"""One row per image per manifest: content hash, the manifest's key, ``snapshot`` or ``dataset``,
the snapshot or dataset id, the scientist, the image's path in the scientist's folder and, for a
dataset, its split (null for a snapshot)."""
SHARD_DIGITS = 2


def manifest_keys(store: ObjectStore) -> list[str]:
    """Every snapshot and dataset manifest key in the store, sorted."""
    snapshots = (k for k in store.list_keys(SNAPSHOTS_PREFIX) if snapshot_of_key(k))
    datasets = (k for k in store.list_keys(DATASETS_PREFIX) if k.endswith("/manifest.parquet"))
    return sorted([*snapshots, *datasets])


def manifest_rows(store: ObjectStore, key: str) -> pa.Table:
    """The :data:`INDEX_SCHEMA` rows of the manifest at ``key`` (only its hash, path, scientist and
    split columns are read)."""
    dataset = key.startswith(DATASETS_PREFIX)
    columns = ["sha256", "path", "scientist", "split"] if dataset else ["sha256", "path"]
    stored, meta = read_with_footer(store.get_bytes(key), columns)
    rows = len(stored)

    def constant(value: str | None) -> pa.Array:
        return pa.array([value] * rows, pa.string())

    return pa.table({
        "sha256": stored.column("sha256"), "manifest_key": constant(key),
        "kind": constant("dataset" if dataset else "snapshot"),
        "id": constant(meta.get("dataset_id") if dataset else meta.get("snapshot_id")),
        "scientist": stored.column("scientist") if dataset else constant(meta.get("scientist") or key.split("/")[1]),
        "path": stored.column("path"), "split": stored.column("split") if dataset else constant(None),
    }, schema=INDEX_SCHEMA)


def _present_rows(store: ObjectStore, keys: list[str]) -> dict[str, pa.Table]:
    """:func:`manifest_rows` of each of ``keys`` that is still there: a manifest listed and then
    deleted before it is read was collected by a concurrent garbage collection (it was not
    retained), so it holds nothing a lookup must find."""
    found = {}
    for key in keys:
        try:
            found[key] = manifest_rows(store, key)
        except ObjectNotFoundError:
            continue
    return found


def _read_shard(store: ObjectStore, prefix: str) -> tuple[pa.Table, set[str]]:
    """A shard's rows and the manifest keys it covers (empty when it is not written yet)."""
    try:
        table, meta = read_with_footer(store.get_bytes(lineage_shard_key(prefix)))
    except ObjectNotFoundError:
        return INDEX_SCHEMA.empty_table(), set()
    covered = meta.get("covers", [])
    return table.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA), set(covered)


def update_lineage_index(store: ObjectStore) -> int:
    """Add every manifest not yet in the index to its shards; return how many were added (a manifest
    a concurrent garbage collection deleted between the listing and its read is skipped)."""
    keys = manifest_keys(store)
    shards = {f"{n:02x}": _read_shard(store, f"{n:02x}") for n in range(16 ** SHARD_DIGITS)}
    listed = sorted({k for k in keys for _, covered in shards.values() if k not in covered})
    rows = _present_rows(store, listed)
    missing = sorted(rows)
    if not missing:
        return 0
    added = pa.concat_tables(list(rows.values()))
    prefixes = pc.utf8_slice_codeunits(added.column("sha256"), 0, SHARD_DIGITS)
    for prefix, (table, covered) in shards.items():
        new = [k for k in missing if k not in covered]
        if not new:  # this shard was written by an update that stopped before the others
            continue
        rows = added.filter(pc.and_(pc.equal(prefixes, prefix),
                                    pc.is_in(added.column("manifest_key"), pa.array(new, pa.string()))))
        merged = pa.concat_tables([table, rows]).sort_by([("sha256", "ascending"), ("manifest_key", "ascending")])
        merged = merged.replace_schema_metadata({METADATA_KEY: json.dumps({"covers": sorted(covered | set(new))}).encode()})
        sink = io.BytesIO()
        pq.write_table(merged, sink)
        store.put_bytes(lineage_shard_key(prefix), sink.getvalue())
    return len(missing)


def manifests_holding(store: ObjectStore, sha256: str) -> list[dict]:
    """Every manifest row of the image ``sha256``: ``{manifest_key, kind, id, scientist, path,
    split}`` dicts sorted by manifest key, from its shard and the manifests it does not cover."""
    table, covered = _read_shard(store, sha256[:SHARD_DIGITS])
    parts = [table.filter(pc.equal(table.column("sha256"), sha256))]
    for rows in _present_rows(store, [k for k in manifest_keys(store) if k not in covered]).values():
        parts.append(rows.filter(pc.equal(rows.column("sha256"), sha256)))
    found = pa.concat_tables(parts).sort_by([("manifest_key", "ascending"), ("path", "ascending")])
    return found.drop_columns(["sha256"]).to_pylist()
