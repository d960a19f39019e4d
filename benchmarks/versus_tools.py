"""imgassets against DVC, rclone and the machine's own floors, on one generated tree, in one run.

    python benchmarks/versus_tools.py [--images 4000] [--scientists 4] [--size 640x480]
        [--duplicates 0.05] [--change 0.01] [--dir DIR] [--write docs/benchmarks.md]

Measured side by side (every figure in seconds, every ratio from this run):

* floors: ``find`` stat walk; ``sha256sum`` of every file (all cores, ``xargs -P``); a strict
  JPEG decode of every image in a bare loop on one core (libjpeg-turbo via simplejpeg,
  ``strict=True``: warnings are errors) divided by the number of cores; ``cp -al`` of the tree
  (the hardlink floor) and ``cp -r`` (the copy floor: a store must hold its own bytes);
* archival: snapshot of an already-indexed tree into a local store (hash + store, no decode),
  against ``dvc add`` + ``dvc push`` to a local remote and ``rclone copy`` to a local folder;
* cold ingest: image index + label table + snapshot of every scientist into an empty store,
  against the sum of its floors (walk + hash + decode + copy);
* no-change rescan: a sensor tick plus the incremental image index of the listing the sensor
  stored for the run it launched (as that run would index it), against ``find`` and ``dvc status``
  (each the best of :data:`REPEATS`);
* a change of ``--change`` of the images (half modified, half new): sensor tick + incremental
  index (of the tick's listings) + label table + snapshot, each timed, against ``dvc add`` +
  ``dvc push`` of the same change and against the cold ingest; and its floor in this design, the
  part no table work can save: the tick, the index of the change (the changed images' strict
  decode) and pandera's per-call cost (validating one row) once per scientist;
* dataset pull: cold (empty cache) and warm (cached objects), against ``cp -al`` (and the cold
  one against ``cp -r``) of the pulled dataset.

Floors other than the one-core decode, the no-change rescan and ``dvc status`` are the best of
:data:`REPEATS` runs.

DVC (``dvc``, from PyPI; ``$DVC`` names the executable) and rclone (Debian's package) are used
when installed; a missing tool is reported, not faked. Our side runs the functional core
(``imgassets.core``), the same functions the Dagster assets call, plus one real sensor tick.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd
import simplejpeg

from benchmarks.generated_tree import TreeSpec, apply_change, generate_tree
from benchmarks.sensor_scale import find_floor, tick
from imgassets.core.drive.listing import load_listing
from imgassets.core.drive.walk import list_scientists
from imgassets.core.images.index import update_image_index
from imgassets.core.labels.checks import schema_failures
from imgassets.core.labels.table import build_label_table
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning.dataset import merge_snapshots
from imgassets.core.versioning.dataset_store import store_dataset
from imgassets.core.versioning.pull import pull_dataset
from imgassets.core.versioning.snapshot import commit_snapshot, load_snapshot, snapshot_table, stored_objects

TARGETS = {
    "archival_vs_dvc": ("dvc add+push / imgassets archival", ">=", 5.0),
    "archival_vs_rclone": ("rclone copy / imgassets archival", ">=", 1.0),
    "validation_vs_decode_floor": ("decode floor (all cores) / image index", ">=", 0.8),
    "cold_ingest_vs_floors": ("cold ingest / sum of its floors", "<=", 1.5),
    "rescan_vs_find": ("no-change rescan / find", "<=", 3.0),
    "rescan_vs_dvc_status": ("no-change rescan / dvc status", "<", 1.0),
    "change_vs_cold": ("1% change / cold ingest", "<=", 1 / 30),
    "warm_pull_vs_cp_al": ("warm pull / cp -al", "<=", 3.0),
}


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """``fn()`` and its wall time in seconds."""
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def shell(command: list[str] | str, cwd: Path | None = None) -> float:
    """Run a command (a list, or a string for ``bash -c``), output discarded; its wall seconds.
    Raises ``CalledProcessError`` with the command's stderr when it fails."""
    args = ["bash", "-c", command] if isinstance(command, str) else command
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise subprocess.CalledProcessError(done.returncode, args, stderr=done.stderr)
    return time.perf_counter() - started


REPEATS = 3


def drop_outputs(*paths: Path) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def best_copy(command: list[str], source: Path, target: Path) -> float:
    """The best of :data:`REPEATS` runs of ``command source target`` (e.g. ``cp -al``) into a
    fresh ``target``, removed afterwards: seconds."""
    times = []
    for _ in range(REPEATS):
        times.append(shell([*command, str(source), str(target)]))
        drop_outputs(target)
    return min(times)


# --- floors -------------------------------------------------------------------------------------

def floor_sha256(root: Path, cores: int) -> float:
    """``sha256sum`` of every file on every core."""
    return shell(f"find '{root}' -type f -print0 | xargs -0 -n 256 -P {cores} sha256sum > /dev/null")


def floor_decode_one_core(images: list[Path]) -> float:
    """Read and strictly decode every image in a bare loop on one core (libjpeg-turbo, warnings
    are errors). Raises if one does not decode: the floor is measured on a clean tree."""
    started = time.perf_counter()
    for path in images:
        simplejpeg.decode_jpeg(path.read_bytes(), strict=True)
    return time.perf_counter() - started


# --- imgassets (the functional core the assets call) ------------------------------------------

def index_all(root: Path, previous: dict | None = None, listings: dict | None = None) -> dict:
    """``update_image_index`` of every scientist (incremental when ``previous`` indexes are given;
    of the sensor's ``listings`` instead of a walk when given)."""
    previous, listings = previous or {}, listings or {}
    return {s: update_image_index(root / s, previous.get(s), listing=listings.get(s)).index for s in list_scientists(root)}


def sensor_listings(store: LocalObjectStore, cursor: str) -> dict:
    """The listing each scientist's run indexes: the one the sensor stored for the fingerprint its
    cursor last launched (what ``image_index`` loads from the run's fingerprint tag)."""
    return {s: load_listing(store, s, launched) for s, (launched, *_) in json.loads(cursor).items() if launched}


def label_all(root: Path, indexes: dict, previous: dict | None = None) -> dict:
    """``build_label_table`` of every scientist (reusing the rows of unchanged YOLO files of the
    ``previous`` label tables when given)."""
    return {s: build_label_table(root / s, index, (previous or {}).get(s)) for s, index in indexes.items()}


def snapshot_all(root: Path, store: LocalObjectStore, indexes: dict, labels: dict, previous: dict | None = None) -> dict:
    """``commit_snapshot`` of every scientist (checking only objects their ``previous`` manifest
    keys do not list, as ``image_snapshot`` does with the snapshot lineage gives it); their manifest keys."""
    previous = previous or {}
    return {s: commit_snapshot(store, s, root / s, snapshot_table(indexes[s], labels[s]),
                               stored=stored_objects(store, previous.get(s))).manifest_key for s in indexes}


def ingest(root: Path, store: LocalObjectStore, previous: tuple[dict, dict, dict] = ({}, {}, {}),
           listings: dict | None = None) -> tuple[dict, dict, dict]:
    """Image index, label table and snapshot of every scientist, incremental on the ``previous``
    (indexes, label tables, manifest keys): (indexes, label tables, manifest keys)."""
    indexes = index_all(root, previous[0], listings)
    labels = label_all(root, indexes, previous[1])
    return indexes, labels, snapshot_all(root, store, indexes, labels, previous[2])


def schema_call_floor(labels: pd.DataFrame) -> float:
    """Seconds of the label table's pandera validation (:func:`~imgassets.core.labels.checks.schema_failures`)
    on one row of ``labels``: the cost of a call whatever the table's length (best of :data:`REPEATS`;
    0 for a table with no rows)."""
    if not len(labels):
        return 0.0
    row = labels.iloc[:1].reset_index(drop=True)
    return min(timed(lambda: schema_failures(row))[1] for _ in range(REPEATS))


def sensor_tick(instance: dg.DagsterInstance, root: Path, cursor: str | None, home: Path) -> tuple[str, float, int]:
    """One real ``shared_drive_sensor`` evaluation (listings stored under ``home``): (new cursor,
    seconds, runs requested)."""
    result, seconds = tick(instance, root, cursor, home)
    return result.cursor, seconds, len(result.run_requests)


# --- the other tools --------------------------------------------------------------------------

def dvc_executable() -> str | None:
    """``$DVC``, or ``dvc`` on the PATH, or None when DVC is not installed. Raises ``SystemExit``
    naming the variable when ``$DVC`` is set but names no executable (a typo is not "n/a")."""
    configured = os.environ.get("DVC")
    if not configured:
        return shutil.which("dvc")
    found = shutil.which(configured)
    if found is None:
        raise SystemExit(f"$DVC={configured!r} is not an executable file or a command on the PATH")
    return found


def dvc_init(workspace: Path, remote: Path, dvc: str) -> None:
    """A DVC project without Git in ``workspace``, pushing to the local folder ``remote``."""
    shell([dvc, "init", "--no-scm", "-q"], cwd=workspace)
    shell([dvc, "remote", "add", "-d", "local", str(remote)], cwd=workspace)
    shell([dvc, "config", "core.analytics", "false"], cwd=workspace)


def dvc_add_push(workspace: Path, dvc: str) -> float:
    """``dvc add <every scientist>`` then ``dvc push``: seconds."""
    scientists = [p.name for p in sorted(workspace.glob("scientist_*")) if p.is_dir()]
    return shell([dvc, "add", "-q", *scientists], cwd=workspace) + shell([dvc, "push", "-q"], cwd=workspace)


def machine() -> str:
    """CPU model, cores, memory and OS, one line."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.platform()}, Python {platform.python_version()}"


# --- the run ------------------------------------------------------------------------------------

def run(work: Path, spec: TreeSpec, change: float) -> dict:
    """Generate the tree under ``work`` and measure everything; return figures and ratios."""
    cores = os.cpu_count() or 1
    drive, out = work / "drive", work / "out"
    figures: dict[str, float | str | int] = {}
    images, figures["generate_s"] = timed(lambda: generate_tree(drive, spec))
    figures["images"], figures["files"] = len(images), sum(1 for p in drive.rglob("*") if p.is_file())
    figures["bytes"] = sum(p.stat().st_size for p in drive.rglob("*") if p.is_file())

    # Floors: the best of REPEATS runs (file creation times here swing 5x between runs), so a
    # ratio against a floor never flatters us.
    figures["find_s"] = min(find_floor(drive) for _ in range(REPEATS))
    figures["sha256sum_s"] = min(floor_sha256(drive, cores) for _ in range(REPEATS))
    figures["decode_1core_s"] = floor_decode_one_core(images)
    figures["decode_floor_s"] = figures["decode_1core_s"] / cores
    out.mkdir(parents=True)
    figures["cp_al_s"] = best_copy(["cp", "-al"], drive, out / "cp-al")
    figures["cp_r_s"] = best_copy(["cp", "-r"], drive, out / "cp-r")

    # Cold ingest, split into its stages, into an empty store.
    store = LocalObjectStore(out / "store")
    indexes, figures["index_cold_s"] = timed(lambda: index_all(drive))
    labels, figures["labels_s"] = timed(lambda: label_all(drive, indexes))
    manifests, figures["snapshot_cold_s"] = timed(lambda: snapshot_all(drive, store, indexes, labels))
    figures["cold_ingest_s"] = figures["index_cold_s"] + figures["labels_s"] + figures["snapshot_cold_s"]
    figures["ingest_floor_s"] = figures["find_s"] + figures["sha256sum_s"] + figures["decode_floor_s"] + figures["cp_r_s"]

    # Archival of the already-indexed tree (hash + store, no decode) into a second empty store.
    archive = LocalObjectStore(out / "archive")
    _, figures["archival_s"] = timed(lambda: snapshot_all(drive, archive, indexes, labels))
    if shutil.which("rclone"):
        figures["rclone_copy_s"] = shell(["rclone", "copy", "--config", "/dev/null", str(drive), str(out / "rclone")])
    dvc = dvc_executable()
    dvc_workspace = out / "dvc-workspace"
    if dvc:
        shell(["cp", "-al", str(drive), str(dvc_workspace)])  # DVC writes .dvc files next to the data
        dvc_init(dvc_workspace, out / "dvc-remote", dvc)
        figures["dvc_add_push_s"] = dvc_add_push(dvc_workspace, dvc)

    sensor_home = out / "sensor"  # the sensor's object store, where it keeps listings
    listing_store = LocalObjectStore(sensor_home / "objects")
    with dg.instance_for_test() as instance:
        cursor, figures["first_tick_s"], _ = sensor_tick(instance, drive, None, sensor_home)
        # No-change rescan: a tick that launches nothing, and the incremental index; the best of
        # REPEATS (it changes nothing, so it repeats exactly, like the floors and dvc status).
        rescans = []
        for _ in range(REPEATS):
            cursor, tick_s, runs = sensor_tick(instance, drive, cursor, sensor_home)
            assert runs == 0, "a no-change tick launched runs"
            indexes, index_s = timed(lambda i=indexes, c=cursor: index_all(drive, i, sensor_listings(listing_store, c)))
            rescans.append((tick_s + index_s, tick_s, index_s))
        figures["rescan_s"], figures["rescan_tick_s"], figures["rescan_index_s"] = min(rescans)
        if dvc:
            figures["dvc_status_s"] = min(shell([dvc, "status", "-q"], cwd=dvc_workspace) for _ in range(REPEATS))

        # A change of `change` of the images: the same change in the DVC workspace.
        modified, added = apply_change(drive, change, spec.seed, spec.width, spec.height)
        figures["changed_images"] = modified + added
        if dvc:  # the same seed makes the same change (new files, new inodes: the drive is untouched)
            apply_change(dvc_workspace, change, spec.seed, spec.width, spec.height)
            figures["dvc_change_s"] = dvc_add_push(dvc_workspace, dvc)
        cursor, figures["change_tick_s"], runs = sensor_tick(instance, drive, cursor, sensor_home)
        previous_manifests = manifests
        indexes, figures["change_index_s"] = timed(
            lambda i=indexes: index_all(drive, i, sensor_listings(listing_store, cursor)))
        labels, figures["change_labels_s"] = timed(lambda p=labels: label_all(drive, indexes, p))
        manifests, figures["change_snapshot_s"] = timed(
            lambda: snapshot_all(drive, store, indexes, labels, previous_manifests))
        figures["change_s"] = sum(figures[f"change_{stage}_s"] for stage in ("tick", "index", "labels", "snapshot"))
        figures["change_runs"] = runs
        # What a change costs before any table work could be saved: the tick, the index of the
        # changed files (their strict decode), and pandera's per-call cost once per scientist.
        figures["schema_call_s"] = schema_call_floor(next(iter(labels.values())))
        figures["change_floor_s"] = (figures["change_tick_s"] + figures["change_index_s"]
                                     + len(labels) * figures["schema_call_s"])

    # Dataset pull: cold (empty cache), warm (cache filled by the cold pull), against cp -al.
    dataset = merge_snapshots({s: (key, load_snapshot(store, key)) for s, key in manifests.items()})
    store_dataset(store, dataset)
    _, figures["pull_cold_s"] = timed(lambda: pull_dataset(store, dataset.dataset_id, out / "pull-cold", out / "cache"))
    _, figures["pull_warm_s"] = timed(lambda: pull_dataset(store, dataset.dataset_id, out / "pull-warm", out / "cache"))
    figures["pull_cp_al_s"] = best_copy(["cp", "-al"], out / "pull-cold", out / "pull-cp-al")
    figures["pull_cp_r_s"] = best_copy(["cp", "-r"], out / "pull-cold", out / "pull-cp-r")
    figures["dataset_images"] = len(dataset.records)
    return {"machine": machine(), "spec": spec.__dict__, "change": change, "figures": _rounded(figures),
            "ratios": ratios(figures)}


RATIOS = {
    "archival_vs_dvc": ("dvc_add_push_s", "archival_s"),
    "archival_vs_rclone": ("rclone_copy_s", "archival_s"),
    "validation_vs_decode_floor": ("decode_floor_s", "index_cold_s"),
    "cold_ingest_vs_floors": ("cold_ingest_s", "ingest_floor_s"),
    "rescan_vs_find": ("rescan_s", "find_s"),
    "rescan_vs_dvc_status": ("rescan_s", "dvc_status_s"),
    "tick_vs_find": ("rescan_tick_s", "find_s"),  # a no-change tick alone launches no run
    "change_vs_cold": ("change_s", "cold_ingest_s"),
    "change_vs_dvc": ("change_s", "dvc_change_s"),
    "change_floor_vs_cold": ("change_floor_s", "cold_ingest_s"),  # tick + index + per-call schema checks
    "warm_pull_vs_cp_al": ("pull_warm_s", "pull_cp_al_s"),
    "cold_pull_vs_cp_r": ("pull_cold_s", "pull_cp_r_s"),
}
"""Each ratio: (numerator figure, denominator figure)."""


def _significant(value: float) -> float:
    """``value`` to 3 significant digits (a small ratio or time keeps its digits; 3 decimals would zero it)."""
    return float(f"{value:.3g}")


def ratios(f: dict) -> dict[str, float | None]:
    """The ratios of :data:`RATIOS`, to 3 significant digits (None where a tool was not installed)."""
    return {key: _significant(f[a] / f[b]) if a in f and b in f and f[b] else None for key, (a, b) in RATIOS.items()}


def _rounded(figures: dict) -> dict:
    return {k: _significant(v) if isinstance(v, float) else v for k, v in figures.items()}


def verdicts(result: dict) -> list[tuple[str, float | None, str, bool | None]]:
    """(what, measured ratio, target, met?) for every target; met is None when not measured."""
    rows = []
    for key, (what, op, bound) in TARGETS.items():
        value = result["ratios"].get(key)
        met = None if value is None else {">=": value >= bound, "<=": value <= bound, "<": value < bound}[op]
        rows.append((what, value, f"{op} {bound:.3g}", met))
    return rows


def markdown(result: dict) -> str:
    """The results as the Markdown section written to ``docs/benchmarks.md``."""
    spec, f = result["spec"], result["figures"]
    lines = [
        "## imgassets against DVC, rclone and the machine's floors (`benchmarks/versus_tools.py`)", "",
        f"Machine: {result['machine']}.", "",
        f"Tree: {f['images']} JPEGs ({spec['width']}x{spec['height']}, {spec['duplicate_fraction']:.0%} byte duplicates) "
        f"over {spec['scientists']} scientists, {f['files']} files, {f['bytes'] / 2**20:.0f} MiB; "
        f"change: {f['changed_images']} images ({result['change']:.0%}).", "",
        "| target | measured | target | met |", "|---|---|---|---|",
    ]
    def shown(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3g}"

    for what, value, target, met in verdicts(result):
        lines.append(f"| {what} | {shown(value)} | {target} | {'n/a' if met is None else ('yes' if met else '**no**')} |")
    lines += ["", "| other ratio | measured |", "|---|---|"]
    lines += [f"| {k} | {shown(v)} |" for k, v in result["ratios"].items() if k not in TARGETS]
    lines += ["", "| figure | seconds or count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in f.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=TreeSpec.images)
    parser.add_argument("--scientists", type=int, default=TreeSpec.scientists)
    parser.add_argument("--size", default=f"{TreeSpec.width}x{TreeSpec.height}", help="WIDTHxHEIGHT in pixels")
    parser.add_argument("--duplicates", type=float, default=TreeSpec.duplicate_fraction)
    parser.add_argument("--change", type=float, default=0.01, help="fraction of images changed (default 0.01)")
    parser.add_argument("--dir", type=Path, help="work folder (must not exist; kept); default a temporary folder")
    parser.add_argument("--write", type=Path, help="write the Markdown results to this file")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    spec = TreeSpec(args.images, args.scientists, width, height, args.duplicates)
    work = args.dir or Path(tempfile.mkdtemp(prefix="imgassets-bench-"))
    try:
        result = run(work, spec, args.change)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    print(markdown(result))
    if args.write:
        args.write.write_text(markdown(result))


if __name__ == "__main__":
    main()
