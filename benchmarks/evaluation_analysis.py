"""What the benchmark analysis adds to ``model_evaluation``: the error types (TIDE), COCO's
reference mAP, the slices with their paired bootstrap intervals, the confusion matrix and the
images' quality signals (:func:`imgassets.core.training.benchmark_analysis.analyse_benchmark`,
challenger beside champion) against the prediction passes they read (the challenger's and the
champion's over the same benchmark images: :meth:`StagedModel.predict`), measured in the same run
at each size; goal: the analysis at most 0.15 times the passes (``model_evaluation`` also predicts
val, so its own ratio is lower still).

The images are the demo's generator (640x480 scenes of 1-3 shapes) staged as a pull places them;
the models are trained demo models (``--weights``: challenger and champion; one file serves as
both), so that their candidate boxes are a real model's (a model with random weights keeps none).

    imgassets run --home /tmp/bench-home          # the demo: its champion's weights
    .venv/bin/python -m benchmarks.evaluation_analysis --weights /tmp/bench-home/objects/models/*/*/best.pt \
        --sizes 1000 10000
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path


def _stage(root: Path, count: int, seed: int) -> list[dict]:
    """``count`` demo scenes written where a pull puts benchmark images, and their dataset rows."""
    from imgassets.core.drive.demo import CLASSES, draw_scene

    rng = random.Random(seed)
    folder = root / "images" / "benchmark"
    folder.mkdir(parents=True, exist_ok=True)
    (root / "labels" / "benchmark").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(count):
        scene = draw_scene(rng, size=(640, 480))
        sha = f"{i:064x}"
        scene.image.save(folder / f"{sha}.jpg", quality=90)
        ids = {n: k for k, n in enumerate(CLASSES)}
        (root / "labels" / "benchmark" / f"{sha}.txt").write_text(
            "".join(f"{ids[n]} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for n, x, y, w, h in scene.boxes))
        records.append({"sha256": sha, "scientist": ("ana", "ben", "chloe")[i % 3], "path": f"{i}.jpg",
                        "split": "benchmark", "format": "JPEG", "boxes": []})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--imgsz", type=int, default=128, help="the size the demo models are trained at")
    parser.add_argument("--weights", type=Path, nargs="+", required=True, help="challenger [champion] .pt files")
    args = parser.parse_args()
    from imgassets.core.drive.demo import CLASSES
    from imgassets.core.training.benchmark_analysis import analyse_benchmark
    from imgassets.core.training.staged_model import StagedModel

    print(f"{'images':>7} {'passes s':>9} {'analysis s':>10} {'ratio':>6}  (goal <= 0.15)")
    with tempfile.TemporaryDirectory(prefix="imgassets-bench-") as tmp:
        workdir = Path(tmp)
        weights = [args.weights[0], args.weights[-1]]
        for size in args.sizes:
            staged = workdir / f"staged{size}"
            records = _stage(staged, size, seed=size)
            started = time.perf_counter()
            challenger = StagedModel(weights[0], staged, list(CLASSES), args.imgsz).predict(records)
            champion = StagedModel(weights[1], staged, list(CLASSES), args.imgsz).predict(records)
            passes = time.perf_counter() - started
            started = time.perf_counter()
            analysis = analyse_benchmark(challenger, staged, champion)
            spent = time.perf_counter() - started
            print(f"{size:>7} {passes:>9.1f} {spent:>10.1f} {spent / passes:>6.3f}  "
                  f"({len(analysis.slices)} slices, {sum(len(challenger.of(r).detections) for r in records)} boxes)",
                  flush=True)


if __name__ == "__main__":
    main()
