"""The lineage index: a lookup reads one shard (plus what it does not cover) and always equals
reading every manifest."""

from __future__ import annotations

import hashlib
import random

from imgassets.core.store.local import LocalObjectStore
from imgassets.core.training.models import lineage
from imgassets.core.versioning import lineage_index
from imgassets.core.versioning.dataset import merge_snapshots
from imgassets.core.versioning.dataset_store import store_dataset
from imgassets.core.versioning.lineage_index import (
    manifest_keys,
    manifest_rows,
    manifests_holding,
    update_lineage_index,
)
from imgassets.core.versioning.manifest import SNAPSHOT_SCHEMA, to_parquet_bytes


def _rows(scientist: str, version: int, count: int) -> list[dict]:
    rng = random.Random(f"{scientist}-{version}")
    return [{"sha256": hashlib.sha256(f"{scientist}-{i}-{version if i % 5 == 0 else 0}".encode()).hexdigest(),
             "path": f"images/{i:04d}.jpg", "size_bytes": 1, "format": "JPEG", "width": 8, "height": 8,
             "phash": f"{rng.getrandbits(64):016x}",
             "boxes": [{"class_name": "cat", "class_id": 0, "x_center": 0.5, "y_center": 0.5, "width": 0.1,
                        "height": 0.1, "difficult": None, "truncated": None, "iscrowd": None}]} for i in range(count)]


def _store_snapshot(store: LocalObjectStore, scientist: str, version: int, count: int = 40) -> tuple[str, list[dict]]:
    snapshot_id = hashlib.sha256(f"{scientist}{version}".encode()).hexdigest()[:16]
    rows = _rows(scientist, version, count)
    store.put_bytes(f"snapshots/{scientist}/{snapshot_id}.parquet",
                    to_parquet_bytes(rows, SNAPSHOT_SCHEMA, {"scientist": scientist, "snapshot_id": snapshot_id}))
    return snapshot_id, rows


def _full_scan(store: LocalObjectStore, sha256: str) -> list[dict]:
    """What the index must equal: every manifest read in full."""
    import pyarrow as pa
    import pyarrow.compute as pc

    found = pa.concat_tables([manifest_rows(store, k) for k in manifest_keys(store)])
    found = found.filter(pc.equal(found.column("sha256"), sha256))
    return found.sort_by([("manifest_key", "ascending"), ("path", "ascending")]).drop_columns(["sha256"]).to_pylist()


def test_lookups_equal_a_full_scan_before_after_and_between_updates(tmp_path, monkeypatch):
    store = LocalObjectStore(tmp_path / "store")
    snapshots = {s: _store_snapshot(store, s, 1) for s in ("ana", "ben", "cho")}
    dataset = merge_snapshots(snapshots, 0.3)
    store_dataset(store, dataset)
    probes = [r["sha256"] for _, rows in snapshots.values() for r in rows[:8]]
    assert all(manifests_holding(store, sha) == _full_scan(store, sha) for sha in probes)  # no index yet
    assert update_lineage_index(store) == 4 and update_lineage_index(store) == 0
    assert {k.split("/")[0] for k in store.list_keys("lineage/")} == {"lineage"}
    assert len(list(store.list_keys("lineage/"))) == 256
    _store_snapshot(store, "ana", 2)  # not indexed yet: read directly
    read = []
    original = lineage_index.manifest_rows
    monkeypatch.setattr(lineage_index, "manifest_rows", lambda s, k: read.append(k) or original(s, k))
    for sha in probes:
        assert manifests_holding(store, sha) == _full_scan(store, sha)
    assert set(read) == {k for k in manifest_keys(store) if "/ana/" in k and k.endswith(f"{_id('ana', 2)}.parquet")}
    ana = snapshots["ana"][1][0]["sha256"]
    traced = lineage(store, ana)
    assert [s["scientist"] for s in traced.snapshots] == ["ana"] and traced.datasets[0]["dataset_id"] == dataset.dataset_id
    assert traced.datasets[0]["split"] in ("train", "val")


def _id(scientist: str, version: int) -> str:
    return hashlib.sha256(f"{scientist}{version}".encode()).hexdigest()[:16]


def test_an_interrupted_update_leaves_lookups_right(tmp_path, monkeypatch):
    """An update that dies after writing some shards: the rest still list the manifest as not
    covered, so lookups read it directly, and the next update completes the index."""
    store = LocalObjectStore(tmp_path / "store")
    _, rows = _store_snapshot(store, "ana", 1)
    update_lineage_index(store)
    _, more = _store_snapshot(store, "ana", 2)
    written = []
    put = store.put_bytes

    def dying(key, data, sha256=None):
        if len(written) == 100:
            raise OSError("disk full")
        written.append(key)
        put(key, data, sha256)

    monkeypatch.setattr(store, "put_bytes", dying)
    try:
        update_lineage_index(store)
    except OSError:
        pass
    monkeypatch.setattr(store, "put_bytes", put)
    for row in rows + more:
        assert manifests_holding(store, row["sha256"]) == _full_scan(store, row["sha256"])
    assert update_lineage_index(store) == 1
    for row in more:
        assert manifests_holding(store, row["sha256"]) == _full_scan(store, row["sha256"])
