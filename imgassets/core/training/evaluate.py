"""Evaluating a model on the validation split, image by image: where it does worst.

For each validation image, predictions (confidence >= ``conf``) are matched greedily to the
labelled boxes of the same class by IoU >= ``iou`` (highest confidence first, each box used once).
Unmatched labelled boxes are *missed* (false negatives), unmatched predictions *spurious* (false
positives). ``errors = missed + spurious`` ranks images; per scientist, the worst ones are where
more or better labels help most (the data flywheel).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from imgassets.core.versioning.checkout import staged_image

EVALUATION_COLUMNS = ["scientist", "path", "sha256", "labelled", "predicted", "matched", "missed", "spurious", "errors"]


def iou_xywh(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two normalized (x_center, y_center, width, height) boxes."""
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def match_boxes(labelled: list[tuple[int, tuple]], predicted: list[tuple[int, tuple, float]], iou: float = 0.5) -> tuple[int, int, int]:
    """(matched, missed, spurious) for ``labelled`` ``(class, xywh)`` and ``predicted``
    ``(class, xywh, confidence)`` boxes (rule in the module docstring)."""
    free = list(range(len(labelled)))
    matched = 0
    for cls, box, _ in sorted(predicted, key=lambda p: -p[2]):
        best, best_iou = None, iou
        for i in free:
            if labelled[i][0] == cls:
                overlap = iou_xywh(labelled[i][1], box)
                if overlap >= best_iou:
                    best, best_iou = i, overlap
        if best is not None:
            free.remove(best)
            matched += 1
    return matched, len(labelled) - matched, len(predicted) - matched


def predictions(result) -> list[tuple[int, tuple, float]]:
    """An Ultralytics result's boxes as ``(class id, normalized xywh, confidence)``."""
    return [(int(c), tuple(float(v) for v in xywh), float(p))
            for c, xywh, p in zip(result.boxes.cls, result.boxes.xywhn, result.boxes.conf, strict=True)]


def evaluate_model(weights: str | Path, records: list[dict], staged_dir: str | Path, imgsz: int,
                   conf: float = 0.25, iou: float = 0.5, batch: int = 16, device: str | None = None,
                   split: str = "val") -> pd.DataFrame:
    """One row per image of ``split`` (``val`` or ``benchmark``) in ``records`` (a dataset version's
    rows), staged under ``staged_dir``: counts of labelled, predicted, matched, missed and spurious
    boxes. ``device``: Ultralytics' (``cpu``, ``0``...); ``None`` picks the GPU when torch sees one,
    else the CPU."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    model = YOLO(str(weights))
    val = [r for r in records if r["split"] == split]
    rows = []
    for start in range(0, len(val), batch):
        chunk = val[start:start + batch]
        paths = [staged_image(staged_dir, r) for r in chunk]
        for record, result in zip(chunk, model.predict(paths, imgsz=imgsz, conf=conf, device=device, verbose=False), strict=True):
            predicted = predictions(result)
            labelled = [(int(b["class_id"]), (b["x_center"], b["y_center"], b["width"], b["height"])) for b in record["boxes"]]
            matched, missed, spurious = match_boxes(labelled, predicted, iou)
            rows.append({"scientist": record["scientist"], "path": record["path"], "sha256": record["sha256"],
                         "labelled": len(labelled), "predicted": len(predicted), "matched": matched,
                         "missed": missed, "spurious": spurious, "errors": missed + spurious})
    return pd.DataFrame(rows, columns=EVALUATION_COLUMNS)


def worst_images(evaluation: pd.DataFrame, per_scientist: int = 10) -> pd.DataFrame:
    """The ``per_scientist`` images with the most errors for each scientist (ties: by path); an
    image without an error is never among them."""
    ordered = evaluation[evaluation["errors"] > 0].sort_values(["scientist", "errors", "path"], ascending=[True, False, True])
    return ordered.groupby("scientist", sort=True).head(per_scientist).reset_index(drop=True)


def worst_pictures(weights: str | Path, records: list[dict], staged_dir: str | Path, imgsz: int,
                   evaluation: pd.DataFrame, class_names: list[str], count: int = 8, conf: float = 0.25,
                   device: str | None = None) -> str:
    """Markdown thumbnails of the ``count`` images of ``evaluation`` with the most errors (ties by
    path), with labelled and predicted boxes (:func:`pictures_of`)."""
    worst = evaluation[evaluation["errors"] > 0].sort_values(["errors", "path"], ascending=[False, True]).head(count)
    by_hash = {r["sha256"]: r for r in records}
    return pictures_of(weights, [by_hash[sha] for sha in worst["sha256"]], staged_dir, imgsz, class_names,
                       [f"{r.missed} missed, {r.spurious} spurious" for r in worst.itertuples()], conf, device)


def pictures_of(weights: str | Path, chosen: list[dict], staged_dir: str | Path, imgsz: int, class_names: list[str],
                notes: list[str], conf: float = 0.25, device: str | None = None) -> str:
    """Markdown thumbnails of the staged images of ``chosen`` (dataset rows), each with its labelled
    boxes and the model's predictions (confidence >= ``conf``) drawn in two colours
    (:mod:`imgassets.core.images.thumbnails`), captioned with its scientist, path and ``notes``."""
    if not chosen:
        return ""
    from ultralytics import YOLO

    from imgassets.core.images.thumbnails import markdown_image, thumbnail

    results = YOLO(str(weights)).predict([staged_image(staged_dir, r) for r in chosen], imgsz=imgsz, conf=conf,
                                         device=device, verbose=False)
    parts = []
    for record, note, result in zip(chosen, notes, results, strict=True):
        labelled = [(b["class_name"], b["x_center"], b["y_center"], b["width"], b["height"]) for b in record["boxes"]]
        predicted = [(f"{class_names[c] if c < len(class_names) else c} {p:.2f}", *xywh) for c, xywh, p in predictions(result)]
        caption = f"{record['scientist']}/{record['path']}"
        parts.append(f"**{caption}**: {note} (labelled green, predicted magenta)"
                     f"\n\n{markdown_image(caption, thumbnail(staged_image(staged_dir, record), labelled, predicted))}")
    return "\n\n".join(parts)
