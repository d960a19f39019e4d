"""``model_evaluation``'s work (:func:`imgassets.core.training.challenger.evaluate_challenger`: benchmark
scores overall, per class and per scientist, the per-image evaluation of val, pictures, the label
review) against one Ultralytics ``YOLO.val`` over the same held-out images, measured in the same run
on the same machine; goal: at most 1.3 times. Beside it, the passes the evaluation made before it
was one pass (predict val; val the benchmark, then each scientist's benchmark images; predict the
benchmark; predict val and benchmark again for the review), replayed with plain Ultralytics calls.

The drive is the demo's generator at ``--per-scientist`` images for each of its three scientists; a
smoke model (1 epoch at ``--imgsz``) is trained first (its quality does not matter to the timing; the review's floor is
lowered so that the review runs).

    .venv/bin/python -m benchmarks.evaluation_pass --per-scientist 400 --imgsz 320
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def _val(model, staged: Path, records: list[dict], class_names: list[str], imgsz: int, workdir: Path, name: str):
    from imgassets.core.versioning.checkout import staged_image

    listing = workdir / f"{name}.txt"
    listing.write_text("".join(f"{staged_image(staged, r)}\n" for r in records))
    data = workdir / f"{name}.yaml"
    data.write_text(yaml.safe_dump({"path": str(staged), "train": "images/train", "val": "images/val",
                                    "test": str(listing), "names": dict(enumerate(class_names))}))
    return model.val(data=str(data), split="test", imgsz=imgsz, batch=16, plots=False, verbose=False,
                     project=str(workdir), name=name, exist_ok=True, workers=0)


def _predict(model, staged: Path, records: list[dict], imgsz: int) -> int:
    from imgassets.core.versioning.checkout import staged_image

    boxes = 0
    for start in range(0, len(records), 16):
        chunk = records[start:start + 16]
        boxes += sum(len(r.boxes) for r in model.predict([staged_image(staged, r) for r in chunk], imgsz=imgsz,
                                                          conf=0.25, verbose=False))
    return boxes


def follow(call) -> tuple[list[str], int]:
    """How ``call()`` follows the model through the core: the calls from one imgassets.core module
    into another, each edge once, in the order first taken, and how many times weights were loaded
    (Ultralytics ``Model.__init__``)."""
    import sys

    edges: list[str] = []
    loads = 0

    def profile(frame, event, arg):
        nonlocal loads
        if event != "call":
            return
        name = frame.f_globals.get("__name__", "")
        if name == "ultralytics.engine.model" and frame.f_code.co_name == "__init__":
            loads += 1
        caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back else ""
        if name.startswith("imgassets.core.") and caller.startswith("imgassets.core.") and name != caller:
            edge = f"{caller.removeprefix('imgassets.core.')} -> {name.removeprefix('imgassets.core.')}"
            if edge not in edges:
                edges.append(edge)

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return edges, loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-scientist", type=int, default=400)
    parser.add_argument("--imgsz", type=int, default=320, help="the size the model is trained and judged at")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    from imgassets.core.drive.demo import build_demo_drive
    from imgassets.core.store.local import LocalObjectStore
    from imgassets.core.training.challenger import EvaluationPolicy, evaluate_challenger
    from imgassets.core.training.models import list_models
    from imgassets.core.training.review import ReviewSettings
    from imgassets.core.versioning.dataset_store import load_dataset
    from imgassets.core.versioning.pull import pull_dataset

    with tempfile.TemporaryDirectory(prefix="imgassets-bench-eval-") as tmp:
        work = Path(tmp)
        drive, home = build_demo_drive(work / "drive", images_per_scientist=args.per_scientist), work / "home"
        env = {**os.environ, "IMGASSETS_TRAINING_PRESET": "smoke", "IMGASSETS_REVIEW_MIN_MAP50": "0"}
        subprocess.run([sys.executable, "-m", "imgassets.cli", "run", "--shared-root", str(drive), "--home", str(home),
                        "--smoke", "--imgsz", str(args.imgsz)],
                       env=env, check=True, capture_output=True)
        store = LocalObjectStore(home / "objects")
        [record] = list_models(store)
        dataset = load_dataset(store, record["dataset_id"])
        staged = pull_dataset(store, dataset.dataset_id, work / "staged", work / "cache").data_yaml.parent
        imgsz = record["settings"]["imgsz"]
        model = {"model_id": record["model_id"], "dataset_id": record["dataset_id"],
                 "model_key": record["keys"]["best.pt"], "imgsz": imgsz}
        held = [r for r in dataset.records if r["split"] in ("val", "benchmark")]
        benchmark = [r for r in held if r["split"] == "benchmark"]
        val = [r for r in held if r["split"] == "val"]
        weights = work / "best.pt"
        store.get_file(model["model_key"], weights)
        policy = EvaluationPolicy(review=ReviewSettings(min_benchmark_map50=0.0))

        start = time.perf_counter()
        _val(YOLO(str(weights)), staged, held, dataset.class_names, imgsz, work, "reference")
        reference = time.perf_counter() - start

        start = time.perf_counter()
        judged = evaluate_challenger(store, dataset, staged, model, policy)
        ours = time.perf_counter() - start
        edges, loads = follow(lambda: evaluate_challenger(store, dataset, staged, model, policy))

        start = time.perf_counter()  # the passes before: each a fresh load of the weights, as the code did
        _predict(YOLO(str(weights)), staged, val, imgsz)
        _val(YOLO(str(weights)), staged, benchmark, dataset.class_names, imgsz, work, "b-all")
        for i, scientist in enumerate(sorted({r["scientist"] for r in benchmark})):
            _val(YOLO(str(weights)), staged, [r for r in benchmark if r["scientist"] == scientist],
                 dataset.class_names, imgsz, work, f"b-{i}")
        _predict(YOLO(str(weights)), staged, benchmark, imgsz)
        _predict(YOLO(str(weights)), staged, held, imgsz)
        before = time.perf_counter() - start

        print(f"held-out images: {len(held)} (val {len(val)}, benchmark {len(benchmark)}), imgsz {imgsz}, "
              f"review findings {len(judged.review.ranked)}")
        print(f"weights loaded {loads} time(s); calls between core modules, each once, in order:")
        print("\n".join(f"  {edge}" for edge in edges))
        print("| work | seconds | / one Ultralytics val |")
        print("|---|---:|---:|")
        print(f"| one Ultralytics val over val + benchmark | {reference:.2f} | 1.00 |")
        print(f"| evaluate_challenger (one pass) | {ours:.2f} | {ours / reference:.2f} |")
        print(f"| the passes before (replayed) | {before:.2f} | {before / reference:.2f} |")


if __name__ == "__main__":
    main()
