"""Sensor scale benchmark: one tick of the shared-drive sensor over a generated tree, against the
machine's floor for the same walk (``find -type f -printf '%s %T@ %i\\n'``, a stat of every file).

    python benchmarks/sensor_scale.py [--files 100000] [--scientists 50] [--dir /tmp/imgassets-scale]

Prints: files, first tick (all folders new), a no-change tick, a one-file change, cursor bytes,
and each tick's ratio to the find floor measured in the same run. Also used by the scale test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import dagster as dg

from imgassets.defs.resources import LocalObjectStoreResource, SharedDrive
from imgassets.defs.scientist.sensor import shared_drive_sensor


def generate_tree(root: Path, files: int, scientists: int) -> None:
    """``scientists`` folders, ``files`` small files spread over nested sub-folders of 500."""
    per = files // scientists
    for s in range(scientists):
        for i in range(per):
            folder = root / f"scientist_{s:02d}" / f"batch_{i // 500:03d}"
            if i % 500 == 0:
                folder.mkdir(parents=True, exist_ok=True)
            (folder / f"img_{i:06d}.jpg").write_bytes(b"\xff\xd8 tiny \xff\xd9")


def tick(instance: dg.DagsterInstance, root: Path, cursor: str | None, home: Path) -> tuple[dg.SensorResult, float]:
    """One sensor evaluation (settle window 0) and its wall time in seconds; the listings of the
    runs it launches go to the local object store under ``home``."""
    resources = {"shared_drive": SharedDrive(root=str(root), settle_seconds=0),
                 "object_store": LocalObjectStoreResource(home=str(home))}
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    started = time.perf_counter()
    result = shared_drive_sensor(context)
    elapsed = time.perf_counter() - started
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result, elapsed


def find_floor(root: Path) -> float:
    """Seconds for ``find`` to stat every file (the floor for a stat-only walk)."""
    started = time.perf_counter()
    subprocess.run(["find", str(root), "-type", "f", "-printf", "%s %T@ %i\\n"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def run(root: Path, files: int, scientists: int) -> dict:
    """Generate (if needed), then measure the ticks; return the figures."""
    if not root.exists():
        generate_tree(root, files, scientists)
    floor = min(find_floor(root) for _ in range(3))
    with dg.instance_for_test() as instance, tempfile.TemporaryDirectory() as home:
        first, first_s = tick(instance, root, None, Path(home))
        same, same_s = tick(instance, root, first.cursor, Path(home))
        victim = next((root / "scientist_07").rglob("*.jpg"))
        victim.write_bytes(victim.read_bytes() + b"x")
        changed, changed_s = tick(instance, root, same.cursor, Path(home))
    return {
        "files": sum(1 for _ in root.rglob("*.jpg")), "scientists": scientists, "find_floor_s": round(floor, 3),
        "first_tick_s": round(first_s, 3), "first_tick_runs": len(first.run_requests),
        "no_change_tick_s": round(same_s, 3), "no_change_runs": len(same.run_requests),
        "one_change_tick_s": round(changed_s, 3), "one_change_runs": [r.partition_key for r in changed.run_requests],
        "cursor_bytes": len(changed.cursor.encode()),
        "no_change_vs_find": round(same_s / floor, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--scientists", type=int, default=50)
    parser.add_argument("--dir", type=Path, help="tree location (kept); default a temporary folder")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="imgassets-scale-")) / "drive"
    try:
        print(json.dumps(run(root, args.files, args.scientists), indent=2))
    finally:
        if args.dir is None:
            shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
