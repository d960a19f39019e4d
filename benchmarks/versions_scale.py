"""Dataset versions at the users' sizes: the semantic diff of two versions, and garbage collection.

    python -m benchmarks.versions_scale [--images 100000 250000 500000] [--objects 100000 500000]

**Diff**: two dataset manifests of N images (20 scientists, 1-3 boxes an image); the second
version removes 1% of the images, adds 1% and re-labels 1%. Times :func:`diff_versions` against
the reference measured in the same run: reading the two manifests from Parquet (what any tool
comparing them must do). Prints seconds and the ratio per size: the ratio stays flat when the diff
grows as the reading does (linear).

**Garbage collection**: a local store of N content objects (empty files: the plan never reads
content) listed by 10 scientists' snapshot manifests, two versions each (the older one
unretained, each version a tenth of its objects different), one dataset per latest version. Times
:func:`plan_gc` against the reference of a bare listing of the same store (``list_objects``), and
counts the listings the plan made (one).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from imgassets.core.store.keys import content_key
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning.diff import diff_versions
from imgassets.core.versioning.gc import plan_gc
from imgassets.core.versioning.manifest import BOX_TYPE, DATASET_SCHEMA, SNAPSHOT_SCHEMA, to_parquet_bytes
from imgassets.core.versioning.refs import log_version

CLASSES = ["car", "person", "bike", "bus", "truck", "dog"]


def hashes(prefix: str, n: int) -> list[str]:
    return [hashlib.sha256(f"{prefix}{i}".encode()).hexdigest() for i in range(n)]


def manifest(shas: list[str], seed: int, schema: pa.Schema = DATASET_SCHEMA) -> pa.Table:
    """A manifest of ``shas`` with 1-3 random boxes an image (same ``seed``, same boxes)."""
    rng = np.random.default_rng(seed)
    n = len(shas)
    counts = rng.integers(1, 4, n)
    total = int(counts.sum())
    boxes = pa.StructArray.from_arrays(
        [pa.array(np.array(CLASSES, dtype=object)[rng.integers(0, len(CLASSES), total)], pa.string()),
         pa.array(rng.integers(0, len(CLASSES), total), pa.int32()),
         *(pa.array(rng.random(total)) for _ in range(4)),
         pa.nulls(total, pa.int8()), pa.nulls(total, pa.int8()), pa.nulls(total, pa.int8())], fields=list(BOX_TYPE))
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32())
    columns = {"scientist": pa.array([f"scientist_{i % 20:02d}" for i in range(n)]),
               "snapshot_id": pa.array(["0" * 16] * n), "sha256": pa.array(shas),
               "path": pa.array([f"images/{i:07d}.jpg" for i in range(n)]), "size_bytes": pa.array([1000] * n),
               "format": pa.array(["JPEG"] * n), "width": pa.array([640] * n, pa.int32()),
               "height": pa.array([480] * n, pa.int32()), "phash": pa.array(["0" * 16] * n),
               "boxes": pa.ListArray.from_arrays(offsets, boxes), "group": pa.array(shas),
               "split": pa.array(np.where(np.arange(n) % 5 == 0, "val", "train").astype(object))}
    table = pa.table({f.name: columns[f.name] for f in DATASET_SCHEMA}, schema=DATASET_SCHEMA)
    return table.select(schema.names).cast(schema)


def bench_diff(n: int) -> tuple[float, float]:
    """(seconds to read both manifests, seconds to diff them) for N images."""
    shas = hashes("img", n + n // 100)
    a = manifest(shas[:n], 1)
    kept = a.slice(n // 100)  # 1% removed
    relabel = manifest(kept.column("sha256").to_pylist()[: n // 100], 2)  # 1% re-labelled
    added = manifest(shas[n:], 3)  # 1% added
    b = pa.concat_tables([relabel, kept.slice(n // 100), added])
    blobs = [to_parquet_bytes(t, DATASET_SCHEMA, {"kind": "dataset"}) for t in (a, b)]
    start = time.perf_counter()
    a_read, b_read = (pq.read_table(io.BytesIO(blob)) for blob in blobs)
    read = time.perf_counter() - start
    start = time.perf_counter()
    result = diff_versions(a_read.cast(DATASET_SCHEMA), b_read.cast(DATASET_SCHEMA), "dataset", "a", "b", CLASSES, CLASSES)
    diffed = time.perf_counter() - start
    totals = result.totals()
    assert (totals["added"], totals["removed"]) == (n // 100, n // 100), totals
    assert totals["relabelled"] >= n // 100 * 0.95, totals  # random boxes may repeat for a few
    return read, diffed


def bench_gc(n: int, root: Path) -> tuple[float, float, int, int]:
    """(seconds to list the store, seconds to plan, listings made, objects planned for deletion)."""
    store = LocalObjectStore(root)
    per = n // 10
    for s in range(10):
        old, new = hashes(f"{s}-old-", per), hashes(f"{s}-new-", per // 10)
        latest = new + old[per // 10:]
        for version, shas in enumerate((old, latest)):
            rows = manifest(shas, s, SNAPSHOT_SCHEMA)
            snapshot_id = hashlib.sha256(f"{s}/{version}".encode()).hexdigest()[:16]
            store.put_bytes(f"snapshots/scientist_{s:02d}/{snapshot_id}.parquet", to_parquet_bytes(
                rows, SNAPSHOT_SCHEMA, {"scientist": f"scientist_{s:02d}", "snapshot_id": snapshot_id}))
            log_version(store, f"refs/log/snapshots/scientist_{s:02d}/", snapshot_id, stamp_ns=version + 1)
        for sha in set(old) | set(new):
            path = root / content_key(sha)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    past = time.time() - 7 * 86400
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), (past, past))
    start = time.perf_counter()
    listed = sum(1 for _ in store.list_objects(""))
    listing = time.perf_counter() - start

    class Counting:
        calls = 0

        def __getattr__(self, name):
            return getattr(store, name)

        def list_objects(self, prefix):
            Counting.calls += 1
            return store.list_objects(prefix)

    start = time.perf_counter()
    plan = plan_gc(Counting(), keep_datasets=1, keep_snapshots=1, grace_hours=24)
    planned = time.perf_counter() - start
    assert listed == plan.listed
    return listing, planned, Counting.calls, len(plan.delete)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[100_000, 250_000, 500_000])
    parser.add_argument("--objects", type=int, nargs="+", default=[100_000, 500_000])
    args = parser.parse_args()
    print("diff of two dataset versions (1% added, 1% removed, 1% re-labelled)")
    print(f"{'images':>9} {'read both (s)':>14} {'diff (s)':>9} {'diff/read':>10}")
    for n in args.images:
        read, diffed = bench_diff(n)
        print(f"{n:>9} {read:>14.2f} {diffed:>9.2f} {diffed / read:>10.2f}")
    print("garbage collection plan (10 scientists, 2 snapshots each, the older unretained)")
    print(f"{'objects':>9} {'list (s)':>9} {'plan (s)':>9} {'plan/list':>10} {'listings':>9} {'to delete':>10}")
    for n in args.objects:
        with tempfile.TemporaryDirectory() as tmp:
            listing, planned, calls, doomed = bench_gc(n, Path(tmp))
        print(f"{n:>9} {listing:>9.2f} {planned:>9.2f} {planned / listing:>10.2f} {calls:>9} {doomed:>10}")


if __name__ == "__main__":
    main()
