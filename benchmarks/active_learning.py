"""Does the labeling queue help? Queue against random, on the same pool, the same budget, the same
training, the same benchmark images; and what the queue's scoring costs against plain ``predict``.

**Experiment** (``--seeds``): a pool of demo scenes (:func:`imgassets.core.drive.demo.draw_scene`,
``--pool`` images, some drawn on a dark or noisy background, up to three shapes each) is split into a
labelled start (``--start`` images), an unlabelled rest, and ``--benchmark`` held-out images with
their labels. A champion is trained on the start (the demo preset: 60 epochs at 128 px, or
``--epochs``); the labeling queue (:func:`imgassets.core.labeling.queue.rank_queue`, the champion's
scores from :class:`imgassets.core.labeling.scoring.ChampionScorer`) picks ``--budget`` images and
``random`` picks as many; each pick is "labelled" (its hidden labels revealed) and a model is
trained from scratch on start + picks with the same settings; both are scored on the benchmark
images by Ultralytics' ``val`` (mAP50-95). Printed: each seed's numbers, the mean and spread of
queue and random, and the pre-annotation acceptance rate: the share of the picked images' hidden
boxes that the champion proposed (same class, IoU at least 0.5, confidence at least 0.25).

**Throughput** (``--throughput N``): N images of 640 x 480 scored by ``ChampionScorer.score`` (boxes
and embedding from one forward pass) against plain Ultralytics ``predict`` over the same arrays with
the same batch, in one run: images per second of each and their ratio (goal: at least 0.9).

    .venv/bin/python -m benchmarks.active_learning --seeds 3
    .venv/bin/python -m benchmarks.active_learning --throughput 2000 --seeds 0
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageFilter

CLASSES = ("circle", "square", "triangle")


def _pool(count: int, seed: int) -> list[tuple[Image.Image, list[tuple]]]:
    """``count`` demo scenes (image, boxes), a fifth of them darkened and a fifth blurred: the queue
    has easy and hard images to choose between."""
    from imgassets.core.drive.demo import draw_scene

    rng = random.Random(seed)
    scenes = []
    for i in range(count):
        scene = draw_scene(rng, size=(128, 96))
        image = scene.image
        if i % 5 == 1:
            image = image.point(lambda v: v // 3)
        elif i % 5 == 2:
            image = image.filter(ImageFilter.GaussianBlur(1.5))
        scenes.append((image, scene.boxes))
    return scenes


def _write(root: Path, split: str, scenes: list[tuple[int, tuple]]) -> None:
    ids = {name: i for i, name in enumerate(CLASSES)}
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for index, (image, boxes) in scenes:
        image.save(root / "images" / split / f"{index:05d}.png")
        (root / "labels" / split / f"{index:05d}.txt").write_text(
            "".join(f"{ids[n]} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for n, x, y, w, h in boxes))


def _dataset(root: Path, train: list, val: list, benchmark: list) -> Path:
    _write(root, "train", train)
    _write(root, "val", val)
    _write(root, "benchmark", benchmark)
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(root), "train": "images/train", "val": "images/val",
                                    "test": "images/benchmark", "names": dict(enumerate(CLASSES))}))
    return data


def _train(data: Path, workdir: Path, epochs: int, imgsz: int) -> Path:
    from imgassets.core.training.train import TrainingSettings, train_yolo

    settings = TrainingSettings(epochs=epochs, imgsz=imgsz, batch=8, workers=0, plots=False)
    return train_yolo(data, settings, workdir).best_weights


def _benchmark_map(weights: Path, data: Path, imgsz: int, workdir: Path) -> float:
    from ultralytics import YOLO

    metrics = YOLO(str(weights)).val(data=str(data), split="test", imgsz=imgsz, batch=16, plots=False, verbose=False,
                                     project=str(workdir), name="val", exist_ok=True, workers=0)
    return float(metrics.box.map)


def _bgr(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


def _iou(a: tuple, b: tuple) -> float:
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _acceptance(picked: list[str], scores: dict, hidden: dict[str, list[tuple]]) -> float:
    """Share of the picked images' hidden boxes the champion proposed (same class, IoU >= 0.5)."""
    from imgassets.core.labeling.queue import PRELABEL_CONFIDENCE

    found = total = 0
    for sha in picked:
        proposals = [(CLASSES[b["class_id"]], (b["x_center"], b["y_center"], b["width"], b["height"]))
                     for b in scores[sha].boxes if b["confidence"] >= PRELABEL_CONFIDENCE]
        for name, *xywh in hidden[sha]:
            total += 1
            found += any(p == name and _iou(tuple(xywh), box) >= 0.5 for p, box in proposals)
    return found / total if total else 0.0


def experiment(seed: int, pool: int, start: int, benchmark: int, budget: int, epochs: int, imgsz: int,
               workdir: Path) -> dict:
    """One seed: queue and random picks from the same champion; benchmark mAP50-95 of each retrained model."""
    from imgassets.core.images.duplicates import perceptual_hash
    from imgassets.core.labeling.queue import Candidate, random_order, rank_queue
    from imgassets.core.labeling.scoring import ChampionScorer

    scenes = list(enumerate(_pool(pool, seed)))
    random.Random(seed).shuffle(scenes)
    bench, labelled, rest = scenes[:benchmark], scenes[benchmark:benchmark + start], scenes[benchmark + start:]
    val_count = max(4, start // 5)
    val, train = labelled[:val_count], labelled[val_count:]
    t0 = time.perf_counter()
    champion = _train(_dataset(workdir / "start", train, val, bench), workdir / "start_run", epochs, imgsz)
    start_map = _benchmark_map(champion, workdir / "start" / "data.yaml", imgsz, workdir / "start_run")
    scorer = ChampionScorer(champion, imgsz, device="cpu")
    keys = {f"{index:064x}": (index, scene) for index, scene in rest}
    scores = {s.sha256: s for s in scorer.score([(k, _bgr(scene[0])) for k, (_, scene) in keys.items()])}
    candidates = [Candidate(k, f"{i:05d}.png", 128, 96, perceptual_hash(scene[0])) for k, (i, scene) in keys.items()]
    queue = rank_queue("bench", candidates, scores, {}, {}, top=budget, class_names=list(CLASSES))
    queued = [e["sha256"] for e in queue.entries]
    randomly = random_order(list(keys), seed)[:budget]
    hidden = {k: scene[1] for k, (_, scene) in keys.items()}
    result = {"seed": seed, "start_mAP50-95": start_map, "acceptance_queue": _acceptance(queued, scores, hidden),
              "acceptance_random": _acceptance(randomly, scores, hidden)}
    for arm, picks in (("queue", queued), ("random", randomly)):
        added = [keys[k] for k in picks]
        data = _dataset(workdir / arm, train + added, val, bench)
        weights = _train(data, workdir / f"{arm}_run", epochs, imgsz)
        result[f"{arm}_mAP50-95"] = _benchmark_map(weights, data, imgsz, workdir / f"{arm}_run")
    result["seconds"] = time.perf_counter() - t0
    return result


def throughput(count: int, weights: Path | None, workdir: Path, batch: int = 16) -> dict:
    """Images per second of ChampionScorer.score and of plain predict on the same ``count`` 640x480 arrays."""
    from ultralytics import YOLO

    from imgassets.core.drive.demo import draw_scene
    from imgassets.core.labeling.scoring import ChampionScorer

    if weights is None:
        model = YOLO("yolov8n.yaml")
        weights = workdir / "untrained.pt"
        model.save(str(weights))
    rng = random.Random(0)
    arrays = [_bgr(draw_scene(rng, size=(640, 480)).image) for _ in range(min(count, 256))]
    images = [(f"{i:064x}", arrays[i % len(arrays)]) for i in range(count)]
    plain = YOLO(str(weights))
    scorer = ChampionScorer(weights, 640, device="cpu")
    plain.predict([a for _, a in images[:batch]], imgsz=640, batch=batch, device="cpu", verbose=False)  # warm both
    scorer.score(images[:batch])
    t0 = time.perf_counter()
    for start in range(0, count, batch):
        plain.predict([a for _, a in images[start:start + batch]], imgsz=640, conf=0.05, batch=batch, device="cpu",
                      verbose=False)
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorer.score(images)
    t_scorer = time.perf_counter() - t0
    return {"images": count, "predict_images_per_s": count / t_plain, "scorer_images_per_s": count / t_scorer,
            "ratio": t_plain / t_scorer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pool", type=int, default=600)
    parser.add_argument("--start", type=int, default=40)
    parser.add_argument("--benchmark", type=int, default=150)
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--throughput", type=int, default=0, help="also time scoring N 640x480 images")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    results = []
    with tempfile.TemporaryDirectory(prefix="imgassets-al-") as tmp:
        for seed in range(args.seeds):
            result = experiment(seed, args.pool, args.start, args.benchmark, args.budget, args.epochs, args.imgsz,
                                Path(tmp) / f"seed{seed}")
            results.append(result)
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}, flush=True)
        if results:
            for arm in ("queue", "random"):
                values = [r[f"{arm}_mAP50-95"] for r in results]
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                print(f"{arm}: benchmark mAP50-95 mean {statistics.mean(values):.4f}, sd {spread:.4f} over "
                      f"{len(values)} seed(s)")
            gains = [r["queue_mAP50-95"] - r["random_mAP50-95"] for r in results]
            print(f"queue - random: mean {statistics.mean(gains):+.4f}, per seed {[round(g, 4) for g in gains]}")
            print(f"pre-annotation acceptance (hidden boxes the champion proposed): queue picks "
                  f"{statistics.mean(r['acceptance_queue'] for r in results):.3f}, random picks "
                  f"{statistics.mean(r['acceptance_random'] for r in results):.3f}")
        if args.throughput:
            found = throughput(args.throughput, None, Path(tmp))
            print(f"throughput at 640x480, {found['images']} images: predict {found['predict_images_per_s']:.1f} img/s, "
                  f"scorer (boxes + embedding, one pass) {found['scorer_images_per_s']:.1f} img/s: "
                  f"ratio {found['ratio']:.2f} (goal >= 0.9)")


if __name__ == "__main__":
    main()
