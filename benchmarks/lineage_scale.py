"""Lineage of one image on a store of many snapshot versions: the index against reading every manifest.

    python -m benchmarks.lineage_scale [--scientists 50] [--versions 20] [--images 2000]

Writes ``--scientists`` x ``--versions`` snapshot manifests of ``--images`` rows each into a local
store (each version changes a fifth of its scientist's images, as new data does), one dataset
manifest per version over every scientist, then times: the index built from nothing, its update after one more snapshot, one lookup through the
index (:func:`imgassets.core.training.models.lineage`), and the same lookup by reading every
manifest (what ``imgassets lineage`` did before the index). Prints seconds and the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from imgassets.core.store.local import LocalObjectStore
from imgassets.core.training.models import lineage
from imgassets.core.versioning.lineage_index import manifest_keys, manifest_rows, update_lineage_index
from imgassets.core.versioning.manifest import SNAPSHOT_SCHEMA, to_parquet_bytes

BOX = [{"class_name": "cat", "class_id": 0, "x_center": 0.5, "y_center": 0.5, "width": 0.1, "height": 0.1,
        "difficult": None, "truncated": None, "iscrowd": None}]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build(store: LocalObjectStore, scientists: int, versions: int, images: int) -> str:
    """Write the manifests; return the content hash of one image present in every version."""
    for s in range(scientists):
        for v in range(versions):
            hashes = [sha(f"{s}-{i}-{v if i % 5 == v % 5 else 0}") for i in range(images)]
            table = pa.table({"sha256": hashes, "path": [f"images/{i:06d}.jpg" for i in range(images)],
                              "size_bytes": [1] * images, "format": ["JPEG"] * images, "width": [320] * images,
                              "height": [240] * images, "phash": ["0" * 16] * images, "boxes": [BOX] * images},
                             schema=SNAPSHOT_SCHEMA)
            snapshot_id = sha(f"{s}/{v}")[:16]
            store.put_bytes(f"snapshots/scientist_{s:02d}/{snapshot_id}.parquet",
                            to_parquet_bytes(table, SNAPSHOT_SCHEMA, {"scientist": f"scientist_{s:02d}",
                                                                      "snapshot_id": snapshot_id}))
    return sha("0-1-0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scientists", type=int, default=50)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--images", type=int, default=2000, help="rows per snapshot manifest")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalObjectStore(Path(tmp))
        probe = build(store, args.scientists, args.versions, args.images)
        started = time.perf_counter()
        update_lineage_index(store)
        update_s = time.perf_counter() - started
        build(store, 1, args.versions + 1, args.images)  # one more version of scientist_00
        started = time.perf_counter()
        update_lineage_index(store)
        incremental_s = time.perf_counter() - started
        started = time.perf_counter()
        found = lineage(store, probe)
        lookup_s = time.perf_counter() - started
        started = time.perf_counter()
        scanned = sum(int((manifest_rows(store, k).column("sha256").to_numpy(zero_copy_only=False) == probe).sum())
                      for k in manifest_keys(store))
        scan_s = time.perf_counter() - started
    if scanned != len(found.snapshots):
        raise SystemExit(f"the index found {len(found.snapshots)} snapshots, a full scan {scanned}")
    print(json.dumps({"manifests": args.scientists * args.versions, "rows": args.scientists * args.versions * args.images,
                      "index_build_s": round(update_s, 2),
                      "index_update_one_manifest_s": round(incremental_s, 2), "lookup_s": round(lookup_s, 3),
                      "full_scan_s": round(scan_s, 2), "lookup_vs_scan": round(lookup_s / scan_s, 4),
                      "snapshots_found": len(found.snapshots)}))


if __name__ == "__main__":
    main()
