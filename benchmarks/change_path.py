"""The change path stage by stage: a fresh change each round, so every round does the work a real
change does (repeating one call on the same inputs only measures the reuse paths).

    python -m benchmarks.change_path [--images 4000] [--scientists 4] [--change 0.01] [--rounds 3]

Generates a tree, ingests it cold, then for each round applies a new change of ``--change`` of the
images (half modified, half new; a new seed each round) and times, summed over the scientists: the
sensor tick (walk, fingerprints, listings stored), the incremental image index of the tick's
listing, the label table, the manifest (:func:`~imgassets.core.versioning.snapshot.snapshot_table`, with the
blocking label checks) and the commit (existence checks of new objects, uploads, manifest). Prints
one line per round (milliseconds) and the ratio of the round to the cold ingest. A round that
includes a full garbage collection of this process (about 130 ms with Dagster loaded, here) shows
as a spike in whichever stage it fell in.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import dagster as dg

from benchmarks.generated_tree import TreeSpec, apply_change, generate_tree
from benchmarks.versus_tools import ingest, sensor_listings, sensor_tick
from imgassets.core.drive.walk import list_scientists
from imgassets.core.images.index import update_image_index
from imgassets.core.labels.table import build_label_table
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning.snapshot import commit_snapshot, snapshot_table, stored_objects

STAGES = ("tick", "index", "labels", "manifest", "commit")


def run(work: Path, spec: TreeSpec, change: float, rounds: int) -> dict:
    """Generate the tree under ``work``, ingest it cold, then apply ``rounds`` changes; return
    ``{"cold_s": seconds, "rounds": [{stage: seconds, "total_s": ..., "vs_cold": ...}],
    "manifests": {scientist: the last manifest key}}`` (manifests in ``work/store``)."""
    drive, store = work / "drive", LocalObjectStore(work / "store")
    generate_tree(drive, spec)
    started = time.perf_counter()
    indexes, labels, manifests = ingest(drive, store)
    cold_s = time.perf_counter() - started
    result: dict = {"cold_s": round(cold_s, 3), "rounds": []}
    with dg.instance_for_test() as instance:
        cursor, _, _ = sensor_tick(instance, drive, None, work / "sensor")
        listing_store = LocalObjectStore(work / "sensor" / "objects")
        for number in range(rounds):
            apply_change(drive, change, spec.seed + 100 * (number + 1), spec.width, spec.height)
            cursor, tick_s, _ = sensor_tick(instance, drive, cursor, work / "sensor")
            times = dict.fromkeys(STAGES, 0.0)
            times["tick"] = tick_s
            listings = sensor_listings(listing_store, cursor)
            for scientist in list_scientists(drive):
                folder = drive / scientist
                marks = [time.perf_counter()]
                indexes[scientist] = update_image_index(folder, indexes[scientist], listing=listings.get(scientist)).index
                marks.append(time.perf_counter())
                labels[scientist] = build_label_table(folder, indexes[scientist], labels[scientist])
                marks.append(time.perf_counter())
                table = snapshot_table(indexes[scientist], labels[scientist])
                marks.append(time.perf_counter())
                stored = stored_objects(store, manifests[scientist])
                manifests[scientist] = commit_snapshot(store, scientist, folder, table, stored=stored).manifest_key
                marks.append(time.perf_counter())
                for stage, (a, b) in zip(STAGES[1:], zip(marks, marks[1:], strict=False), strict=True):
                    times[stage] += b - a
            total = sum(times.values())
            result["rounds"].append({**{k: round(v, 4) for k, v in times.items()}, "total_s": round(total, 4),
                                     "vs_cold": round(total / cold_s, 4)})
    result["manifests"] = manifests
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=TreeSpec.images)
    parser.add_argument("--scientists", type=int, default=TreeSpec.scientists)
    parser.add_argument("--change", type=float, default=0.01, help="fraction of images changed per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imgassets-change-") as work:
        result = run(Path(work), TreeSpec(images=args.images, scientists=args.scientists), args.change, args.rounds)
    print(f"cold ingest {result['cold_s']:.2f} s")
    for number, row in enumerate(result["rounds"]):
        stages = " ".join(f"{k} {row[k] * 1000:.0f}" for k in STAGES)
        print(f"round {number}: {stages} | total {row['total_s'] * 1000:.0f} ms, {row['vs_cold']:.3f} of cold")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
