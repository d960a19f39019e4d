"""The real graph at the users' sizes: every stage's cost against its floor, and its growth.

    python -m benchmarks.graph_scale [--sizes 25000 100000 500000] [--scientists 20] [--size 320x240]
        [--drives DIR] [--dir DIR] [--reference 4000] [--change-images 40] [--training-start MAX_IMAGES]
        [--write FILE]

For each size, a generated drive (:mod:`benchmarks.generated_tree`, kept under ``--drives`` and
reused when it is there) goes through the graph as ``imgassets run`` runs it: a persistent Dagster
instance under a fresh home, one ``scientist_job`` run per scientist folder, then ``training_job``
with only ``training_dataset`` and its checks selected (training itself is measured apart:
``--training-start``). Every step's time is read from the instance's step statistics. Printed:

* ``ingest_vs_floor``: the scientists' runs (wall) against the sum of the ingest floors on all
  cores: ``find`` stat walk, ``sha256sum`` of every file (``xargs -P``), one strict libjpeg-turbo
  decode of every image (simplejpeg, on one core, divided by the cores); and against them plus
  ``cp -r`` of every scientist's images (``ingest_vs_floor_with_copy``: the copy into the store);
* ``dataset_vs_ingest``: ``training_dataset`` and its checks against the sum of the scientists'
  ingest steps;
* ``growth``: each stage's seconds per image, divided by the previous size's, per doubling;
* ``peak_rss_gib``: the largest resident set of the process that ran the graph and of any of its
  children (the image index's worker pool), from ``getrusage``; the graph, each change and the
  training start each run in a fresh interpreter, as the daemon's runs do;
* the change path: ``--change-images`` new and modified images in two folders, then one real
  sensor tick and the runs it launches (the changed folders' ``scientist_job``), against the
  cold ingest, and against the same change on a ``--reference``-image drive (4 folders) measured
  in the same run; a change of ``--change-fraction`` of the images (in the same two folders)
  against the cold ingest; then one more run of a changed folder with nothing changed
  (``rerun_s``: the cost of any run of that folder, Dagster's steps and events and the reads of
  its kept tables), and the change beyond its tick and such runs against the cold ingest;
* ``--training-start MAX_IMAGES`` (sizes up to it): from the staged dataset to Ultralytics' first training batch, with the
  label caches the pull wrote, against plain Ultralytics on the same folder with them removed
  (its scan), and against Ultralytics started again on the caches its scan wrote (its floor).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.generated_tree import TreeSpec, encode_image, generate_tree, write_file
from benchmarks.sensor_scale import find_floor, tick
from benchmarks.versus_tools import floor_decode_one_core, floor_sha256, machine, shell

REFERENCE_IMAGES = 4000
DATASET_STEPS = ("training_dataset", "training_dataset_no_split_leakage", "training_dataset_duplicate_labels_agree",
                 "training_dataset_class_ids_consistent")


def drive_for(drives: Path, images: int, spec: TreeSpec) -> Path:
    """The generated drive of ``images`` images under ``drives`` (generated once, then reused)."""
    root = drives / f"drive_{images}_{spec.scientists}_{spec.width}x{spec.height}"
    done = root / ".generated"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        generate_tree(root, TreeSpec(images=images, scientists=spec.scientists, width=spec.width,
                                     height=spec.height, seed=spec.seed))
        done.write_text("ok\n")
    return root


def change_in_folders(root: Path, folders: list[str], count: int, seed: int, width: int, height: int) -> int:
    """Modify ``count // 2`` images (new content, same path) and add ``count - count // 2`` new ones,
    with their labels, spread over ``folders``; return the images changed."""
    rng = np.random.default_rng(seed)
    changed = 0
    for number in range(count):
        folder = root / folders[number % len(folders)]
        batch = folder / "images" / "batch_000"
        name = f"img_{number // len(folders):06d}" if number < count // 2 else f"change_{seed}_{number:06d}"
        data, label = encode_image(rng, width, height)
        write_file(batch / f"{name}.jpg", data)
        write_file(folder / "labels" / "batch_000" / f"{name}.txt", label.encode())
        changed += 1
    return changed


def floors(root: Path, scratch: Path) -> dict[str, float]:
    """The ingest floors of the drive at ``root`` on every core (module docstring), in seconds; and
    ``cp -r`` of its images into ``scratch`` (removed after), the copy any store must make."""
    cores = os.cpu_count() or 1
    images = sorted(root.glob("*/images/*/*.jpg"))
    figures = {"find_s": min(find_floor(root) for _ in range(2)),
               "sha256sum_s": min(floor_sha256(root, cores) for _ in range(2)),  # the first run may read from disk
               "decode_1core_s": floor_decode_one_core(images)}
    figures["decode_floor_s"] = figures["decode_1core_s"] / cores
    figures["ingest_floor_s"] = figures["find_s"] + figures["sha256sum_s"] + figures["decode_floor_s"]
    scratch.mkdir(parents=True)
    figures["copy_s"] = sum(shell(["cp", "-r", str(folder / "images"), str(scratch / folder.name)])
                            for folder in sorted(root.iterdir()) if (folder / "images").is_dir())
    shutil.rmtree(scratch)
    figures["ingest_floor_with_copy_s"] = figures["ingest_floor_s"] + figures["copy_s"]
    return figures


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """``{step key: seconds}`` of a finished run, from the instance's step statistics."""
    return {s.step_key: (s.end_time or s.start_time) - s.start_time for s in instance.get_run_step_stats(run_id)
            if s.start_time is not None}


def in_child(function, *args) -> dict:
    """``function(*args)`` in a fresh interpreter (``spawn``), as a run launched by the daemon
    would be: nothing this process imported or allocated counts, and its peak memory is its own."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:  # not daemonic: it may fork
        return pool.submit(_then_release_pools, function, *args).result()


def _then_release_pools(function, *args) -> dict:
    """``function(*args)``, then imgassets' worker pools stopped: a multiprocessing child ends
    without running ``atexit`` hooks, and would wait for the pools' workers forever."""
    from imgassets.core.worker_pool import shutdown_pools

    try:
        return function(*args)
    finally:
        shutdown_pools()


def peak_rss_gib() -> dict[str, float]:
    """Largest resident set so far of this process and of its largest child, GiB (Linux: KiB units)."""
    return {"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20}


def graph_run(root: Path, home: Path) -> dict:
    """Run every scientist, then the dataset and its checks, as ``imgassets run`` does, in a fresh
    home; return wall seconds and per-step seconds."""
    import dagster as dg

    from imgassets.cli.home import open_instance, prepare_environment
    from imgassets.cli.run import QUIET_LOGS, run_scientist, run_tags
    from imgassets.core.drive.walk import scientist_folders
    from imgassets.defs.partitions import scientists as scientists_partitions

    prepare_environment(root, home)
    from imgassets.definitions import defs  # after the environment: resources name its variables
    names, _ = scientist_folders(root)
    figures: dict = {"steps": {}}
    with open_instance(Path(os.environ["DAGSTER_HOME"])) as instance:
        instance.add_dynamic_partitions(scientists_partitions.name, names)
        started = time.perf_counter()
        for name in names:
            outcome, _ = run_scientist(defs, instance, name)
            if not outcome.success:
                raise RuntimeError(f"scientist {name}: {outcome.error or outcome.blocked_by}")
            for step, seconds in step_seconds(instance, outcome.run_id).items():
                figures["steps"][step] = figures["steps"].get(step, 0.0) + seconds
        figures["ingest_wall_s"] = time.perf_counter() - started
        started = time.perf_counter()
        result = defs.resolve_job_def("training_job").execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET_LOGS, tags=run_tags(),
            asset_selection=[dg.AssetKey("training_dataset")])
        figures["dataset_wall_s"] = time.perf_counter() - started
        if not result.success:
            raise RuntimeError("training_dataset failed")
        figures["steps"].update(step_seconds(instance, result.run_id))
        figures["dataset_id"] = result.output_for_node("training_dataset")["dataset_id"]
    figures["ingest_steps_s"] = sum(s for k, s in figures["steps"].items() if k not in DATASET_STEPS)
    figures["dataset_steps_s"] = sum(figures["steps"].get(k, 0.0) for k in DATASET_STEPS)
    figures["peak_rss_gib"] = peak_rss_gib()
    return figures


def change_run(root: Path, home: Path, count: int, seed: int, spec: TreeSpec) -> dict:
    """A change of ``count`` images in two folders of the ingested drive at ``root`` (home
    ``home``): one sensor tick and the scientist runs it requests; seconds."""
    from imgassets.cli.home import open_instance, prepare_environment
    from imgassets.cli.run import run_scientist

    prepare_environment(root, home)
    from imgassets.definitions import defs  # after the environment: resources name its variables

    with open_instance(Path(os.environ["DAGSTER_HOME"])) as instance:
        cursor = tick(instance, root, None, home / "sensor")[0].cursor  # the drive as ingested
        folders = sorted(p.name for p in root.iterdir() if p.is_dir())[:2]
        change_in_folders(root, folders, count, seed, spec.width, spec.height)
        started = time.perf_counter()
        result, tick_s = tick(instance, root, cursor, home / "sensor")
        launched = sorted({r.partition_key for r in result.run_requests})
        for name in launched:
            outcome, _ = run_scientist(defs, instance, name)
            if not outcome.success:
                raise RuntimeError(f"scientist {name} after the change: {outcome.error or outcome.blocked_by}")
        change_s = time.perf_counter() - started
        started = time.perf_counter()
        run_scientist(defs, instance, launched[0])  # nothing changed since: what any run of this folder costs
        return {"change_s": change_s, "tick_s": tick_s, "runs": launched, "rerun_s": time.perf_counter() - started}


def training_start(home: Path, dataset_id: str, work: Path) -> dict:
    """Pull the dataset (from the store under ``home``) into ``work``, then seconds from
    ``YOLO.train`` to its first batch, with the pull's label caches and (plain Ultralytics) without
    them, then with the caches Ultralytics' own scan just wrote (the floor: what Ultralytics does
    per image even with a cache); each run stops at its first batch, after one unmeasured start.
    Also the pull's own seconds (cold cache)."""
    from ultralytics import YOLO

    from imgassets.core.store.local import LocalObjectStore
    from imgassets.core.versioning.pull import pull_dataset
    from imgassets.settings import local_objects

    started = time.perf_counter()
    data_yaml = str(pull_dataset(LocalObjectStore(local_objects(home)), dataset_id, work / "staged", work / "cache").data_yaml)
    pull_s = time.perf_counter() - started

    class FirstBatch(Exception):
        pass

    def until_first_batch(work: Path) -> float:
        model = YOLO("yolov8n.yaml")
        started = time.perf_counter()

        def stop(trainer) -> None:
            raise FirstBatch

        model.add_callback("on_train_batch_start", stop)
        try:
            model.train(data=data_yaml, epochs=1, imgsz=64, batch=16, workers=0, device="cpu", project=str(work),
                        name="start", exist_ok=True, verbose=False, plots=False, val=False, amp=False)
        except FirstBatch:
            return time.perf_counter() - started
        raise RuntimeError("training ended before its first batch")

    labels = Path(data_yaml).parent / "labels"
    until_first_batch(work / "train-warm-up")  # Ultralytics' lazy imports and first-call costs, paid by neither
    ours = until_first_batch(work / "train-ours")
    for cache in labels.glob("*.cache"):
        cache.unlink()
    plain = until_first_batch(work / "train-plain")  # scans, and writes its own caches
    own_cache = until_first_batch(work / "train-own-cache")
    return {"pull_s": pull_s, "ours_s": ours, "plain_s": plain, "ratio": ours / plain,
            "own_cache_s": own_cache, "vs_own_cache": ours / own_cache}


def run(sizes: list[int], spec: TreeSpec, drives: Path, work: Path, change_images: int, change_fraction: float,
        training_up_to: int, reference_images: int = REFERENCE_IMAGES) -> dict:
    """Measure every size (module docstring), and ``reference_images`` in 4 folders; return the figures."""
    result: dict = {"machine": machine(), "image_size": f"{spec.width}x{spec.height}",
                    "scientists": spec.scientists, "reference_images": reference_images, "sizes": {}}
    reference = drive_for(drives, reference_images, TreeSpec(images=reference_images, scientists=4, width=spec.width,
                                                             height=spec.height, seed=spec.seed))
    for images in [reference_images, *sizes]:
        source = reference if images == reference_images else drive_for(drives, images, spec)
        root = work / f"drive_{images}"  # a hardlinked copy: the change writes new files, never the source
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(source, root, copy_function=os.link)
        figures = floors(root, work / "copy-floor")
        home = work / f"home_{images}"
        figures.update(in_child(graph_run, root, home))
        figures.update({f"change_{k}": v for k, v in in_child(change_run, root, home, change_images, images,
                                                              spec).items()})
        share = max(2, int(images * change_fraction))
        figures.update({f"share_{k}": v for k, v in in_child(change_run, root, home, share, images + 1, spec).items()})
        figures["share_images"] = share
        if images != reference_images and images <= training_up_to:
            figures["training_start"] = in_child(training_start, home, figures["dataset_id"], work / f"train_{images}")
        figures["ingest_vs_floor"] = figures["ingest_wall_s"] / figures["ingest_floor_s"]
        figures["ingest_vs_floor_with_copy"] = figures["ingest_wall_s"] / figures["ingest_floor_with_copy_s"]
        figures["dataset_vs_ingest"] = figures["dataset_steps_s"] / figures["ingest_steps_s"]
        figures["change_vs_cold"] = figures["change_change_s"] / figures["ingest_wall_s"]
        figures["share_vs_cold"] = figures["share_change_s"] / figures["ingest_wall_s"]
        beyond = figures["share_change_s"] - figures["share_tick_s"] - len(figures["share_runs"]) * figures["share_rerun_s"]
        figures["share_beyond_runs_vs_cold"] = beyond / figures["ingest_wall_s"]
        result["sizes"][images] = figures
        print(json.dumps({images: {k: v for k, v in figures.items() if k != "steps"}}, default=str), flush=True)
        shutil.rmtree(work / f"home_{images}" / "cache", ignore_errors=True)
    ref = result["sizes"][reference_images]
    ordered = sorted(sizes)
    for images in ordered:
        f = result["sizes"][images]
        f["change_vs_4k"] = f["change_change_s"] / ref["change_change_s"]
    for smaller, larger in zip(ordered, ordered[1:], strict=False):
        a, b = result["sizes"][smaller], result["sizes"][larger]
        doublings = np.log2(larger / smaller)
        b["growth_per_doubling"] = {
            stage: round(float((b[key] / larger) / (a[key] / smaller)) ** (1 / doublings), 3)
            for stage, key in (("ingest", "ingest_wall_s"), ("dataset", "dataset_steps_s"))}
    return result


def markdown(result: dict) -> str:
    """The figures as the table in ``docs/benchmarks.md``."""
    lines = [f"Machine: {result['machine']}; {result['image_size']} JPEGs over {result['scientists']} scientists.", "",
             "| images | floors s | ingest s | ingest / floors | ingest / floors with copy | dataset s "
             "| dataset / ingest steps | growth (ingest, dataset) | change s | change / cold "
             f"| change / same at {result['reference_images']:,} | 1% change / cold | no-change run s "
             "| 1% change beyond tick and no-change runs / cold | peak RSS GiB (self, child) "
             "| training start / plain | training start / Ultralytics' own cache |",
             "|" + "---|" * 17]
    for images, f in sorted(result["sizes"].items()):
        growth = f.get("growth_per_doubling", {})
        start = f.get("training_start", {})
        lines.append(
            f"| {images:,} | {f['ingest_floor_s']:.1f} | {f['ingest_wall_s']:.1f} | {f['ingest_vs_floor']:.2f} "
            f"| {f['ingest_vs_floor_with_copy']:.2f} | {f['dataset_steps_s']:.1f} | {f['dataset_vs_ingest']:.3f} "
            f"| {growth.get('ingest', '')} {growth.get('dataset', '')} | {f['change_change_s']:.2f} "
            f"| {f['change_vs_cold']:.4f} | {f.get('change_vs_4k', 1):.2f} | {f['share_vs_cold']:.4f} "
            f"| {f['share_rerun_s']:.2f} | {f['share_beyond_runs_vs_cold']:.4f} "
            f"| {f['peak_rss_gib']['self']:.2f}, {f['peak_rss_gib']['children']:.2f} "
            f"| {format(start['ratio'], '.3f') if start else ''} | {format(start['vs_own_cache'], '.2f') if start else ''} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25000, 100000, 500000])
    parser.add_argument("--scientists", type=int, default=20)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT in pixels")
    parser.add_argument("--drives", type=Path, default=Path("/tmp/imgassets-drives"),
                        help="where generated drives are kept and reused")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/imgassets-graph-scale"), help="work folder (emptied)")
    parser.add_argument("--reference", type=int, default=REFERENCE_IMAGES,
                        help="images of the reference drive (4 folders) the fixed-size change is compared with")
    parser.add_argument("--change-images", type=int, default=40, help="the fixed-size change (default 40 images)")
    parser.add_argument("--change-fraction", type=float, default=0.01, help="the proportional change (default 0.01)")
    parser.add_argument("--training-start", type=int, default=0, metavar="MAX_IMAGES",
                        help="also time the start of training, at the sizes up to MAX_IMAGES (it pulls the dataset)")
    parser.add_argument("--write", type=Path, help="write the Markdown table to this file")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    spec = TreeSpec(scientists=args.scientists, width=width, height=height)
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    result = run(args.sizes, spec, args.drives, args.dir, args.change_images, args.change_fraction, args.training_start,
                 args.reference)
    table = markdown(result)
    print(table)
    if args.write:
        args.write.write_text(table)
    json.dump(result, sys.stderr, default=str)


if __name__ == "__main__":
    main()
