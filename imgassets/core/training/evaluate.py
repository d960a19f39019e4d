"""Evaluating a model on the validation split, image by image: where it does worst.

For each validation image of a prediction pass (:mod:`imgassets.core.training.staged_model`), predictions (confidence >= ``conf``) are matched greedily to the
labelled boxes of the same class by IoU >= ``iou`` (highest confidence first, each box used once).
Unmatched labelled boxes are *missed* (false negatives), unmatched predictions *spurious* (false
positives). ``errors = missed + spurious`` ranks images; per scientist, the worst ones are where
more or better labels help most (the data flywheel).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from imgassets.core.training.staged_model import Pass
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


def evaluation_frame(model_pass: Pass, conf: float = 0.25, iou: float = 0.5) -> pd.DataFrame:
    """One row per image of ``model_pass`` (a prediction pass over dataset rows,
    :mod:`imgassets.core.training.staged_model`): counts of labelled, predicted (confidence >=
    ``conf``), matched, missed and spurious boxes (:func:`match_boxes` at ``iou``)."""
    rows = []
    for record in model_pass.records:
        predicted = model_pass.of(record).above(conf)
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


def worst_pictures(model_pass: Pass, evaluation: pd.DataFrame, staged_dir: str | Path, count: int = 8,
                   conf: float = 0.25) -> str:
    """Markdown thumbnails of the ``count`` images of ``evaluation`` (:func:`evaluation_frame` of
    ``model_pass``) with the most errors (ties by path), with labelled and predicted boxes
    (:func:`pictures_of`)."""
    worst = evaluation[evaluation["errors"] > 0].sort_values(["errors", "path"], ascending=[False, True]).head(count)
    by_hash = {r["sha256"]: r for r in model_pass.records}
    return pictures_of(model_pass, [by_hash[sha] for sha in worst["sha256"]], staged_dir,
                       [f"{r.missed} missed, {r.spurious} spurious" for r in worst.itertuples()], conf)


def pictures_of(model_pass: Pass, chosen: list[dict], staged_dir: str | Path, notes: list[str],
                conf: float = 0.25) -> str:
    """Markdown thumbnails of the staged images of ``chosen`` (records of ``model_pass``), each
    with its labelled boxes and the pass's predictions (confidence >= ``conf``) drawn in two
    colours (:mod:`imgassets.core.images.thumbnails`), captioned with its scientist, path and ``notes``."""
    from imgassets.core.images.thumbnails import markdown_image, thumbnail

    names = model_pass.class_names
    parts = []
    for record, note in zip(chosen, notes, strict=True):
        labelled = [(b["class_name"], b["x_center"], b["y_center"], b["width"], b["height"]) for b in record["boxes"]]
        predicted = [(f"{names[c] if c < len(names) else c} {p:.2f}", *xywh)
                     for c, xywh, p in model_pass.of(record).above(conf)]
        caption = f"{record['scientist']}/{record['path']}"
        parts.append(f"**{caption}**: {note} (labelled green, predicted magenta)"
                     f"\n\n{markdown_image(caption, thumbnail(staged_image(staged_dir, record), labelled, predicted))}")
    return "\n\n".join(parts)
