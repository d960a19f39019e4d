"""Model-assisted label review: where a trained model and the labels disagree, on images the model
did not train on (its dataset's val and benchmark splits).

For one image, with the model's predictions at or above ``min_confidence`` (:class:`ReviewSettings`):

* **wrong class**: a labelled box that no prediction of its class overlaps (IoU >= ``match_iou``)
  but a prediction of another class does: the label may name the wrong class;
* **mislocated**: a labelled box whose best prediction of its class overlaps it only partly
  (``mislocated_iou`` <= IoU < ``match_iou``): the box may be shifted or the wrong size;
* **missing box**: a prediction that overlaps no labelled box (IoU < ``mislocated_iou`` with every
  one): an object may be unlabelled.

Each finding carries the prediction's confidence, by which findings are ranked. A model too weak to
judge (benchmark mAP50 below ``min_benchmark_map50``) gives no findings at all (:func:`model_can_judge`).
Boxes are normalized xywh (:func:`imgassets.core.training.evaluate.iou_xywh`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from imgassets.core.training.evaluate import iou_xywh

WRONG_CLASS, MISLOCATED, MISSING_BOX = "wrong_class", "mislocated", "missing_box"


@dataclass(frozen=True)
class ReviewSettings:
    """Thresholds of the review: ``min_confidence`` of a prediction taken as the model's word,
    ``match_iou`` at which a prediction and a label are the same object, ``mislocated_iou`` below
    which they are not the same object at all, ``min_benchmark_map50`` below which the model is
    too weak to judge anyone's labels."""

    min_confidence: float = 0.5
    match_iou: float = 0.5
    mislocated_iou: float = 0.1
    min_benchmark_map50: float = 0.5


@dataclass(frozen=True)
class Disagreement:
    """One disagreement on an image: its ``kind``, the labelled box it concerns (``box``: its index
    in the image's labels; ``None`` for a missing box), the model's ``confidence`` and a sentence."""

    kind: str
    box: int | None
    confidence: float
    reason: str


Labelled = tuple[str, tuple[float, float, float, float]]
Predicted = tuple[str, tuple[float, float, float, float], float]


def _where(box: tuple[float, float, float, float]) -> str:
    return f"at x {box[0]:.2f}, y {box[1]:.2f} (w {box[2]:.2f}, h {box[3]:.2f})"


def review_image(labelled: list[Labelled], predicted: list[Predicted],
                 settings: ReviewSettings = ReviewSettings()) -> list[Disagreement]:
    """The disagreements of one image between its ``labelled`` boxes ``(class name, xywh)`` and the
    model's ``predicted`` boxes ``(class name, xywh, confidence)`` (rules in the module docstring),
    most confident first."""
    confident = [p for p in predicted if p[2] >= settings.min_confidence]
    found: list[Disagreement] = []
    for i, (name, box) in enumerate(labelled):
        same = max(((iou_xywh(box, p[1]), p) for p in confident if p[0] == name), default=(0.0, None), key=lambda t: t[0])
        other = max(((iou_xywh(box, p[1]), p) for p in confident if p[0] != name), default=(0.0, None), key=lambda t: t[0])
        if same[0] >= settings.match_iou:
            continue
        if other[0] >= settings.match_iou:
            cls, _, conf = other[1]
            found.append(Disagreement(WRONG_CLASS, i, conf, f"labelled {name} {_where(box)}; the model sees a {cls} "
                                                            f"there (confidence {conf:.2f}): possibly the wrong class"))
        elif same[0] >= settings.mislocated_iou:
            _, where, conf = same[1]
            found.append(Disagreement(MISLOCATED, i, conf, f"labelled {name} {_where(box)}; the model puts it "
                                                           f"{_where(where)} (IoU {same[0]:.2f}, confidence {conf:.2f}): "
                                                           "possibly mislocated"))
    for cls, box, conf in confident:
        if all(iou_xywh(box, labelled_box) < settings.mislocated_iou for _, labelled_box in labelled):
            found.append(Disagreement(MISSING_BOX, None, conf, f"the model sees a {cls} {_where(box)} (confidence "
                                                               f"{conf:.2f}) and no box is labelled there: possibly "
                                                               "a missing box"))
    return sorted(found, key=lambda d: -d.confidence)


def model_can_judge(benchmark_map50: float | None, settings: ReviewSettings = ReviewSettings()) -> str | None:
    """``None`` when a model with this benchmark mAP50 may judge labels, else why not."""
    if benchmark_map50 is None:
        return "the model has no benchmark score: it cannot judge labels"
    if benchmark_map50 < settings.min_benchmark_map50:
        return (f"the model's benchmark mAP50 {benchmark_map50:.3f} is below {settings.min_benchmark_map50}: "
                "too weak to judge labels, no review")
    return None


LabelRow = tuple[str, int, tuple[float, float, float, float], str | None]
"""``(label file, line, xywh, label file sha256)`` of one usable box of a label table."""


def label_rows_by_image(labels) -> dict[str, list[LabelRow]]:
    """The usable boxes of the label table ``labels`` (a scientist's; ``None`` for none) by image
    path, built once so that routing a finding reads only its image's rows."""
    if labels is None or not len(labels):
        return {}
    rows = labels[labels["image_path"].notna() & labels["x_center"].notna() & labels["parse_error"].isna()]
    by_image: dict[str, list[LabelRow]] = {}
    for r in rows.itertuples():
        by_image.setdefault(r.image_path, []).append(
            (r.label_file, int(r.line), (r.x_center, r.y_center, r.width, r.height),
             r.label_sha256 if isinstance(r.label_sha256, str) else None))
    return by_image


def route(record: dict, found: list[Disagreement], rows: list[LabelRow], model_id: str) -> list[dict]:
    """Each disagreement on ``record`` (a dataset row: ``scientist``, ``path``, ``boxes``) as a
    finding naming the scientist's label file and line (of ``rows``, the label table's boxes of this
    image, :func:`label_rows_by_image`: the one whose box is the disagreeing one; a missing box
    names the image's label file with line 0, or the image when it has none), with the label file's
    SHA-256 so a fixed file drops its findings."""
    findings = []
    for item in found:
        label_file, line, sha = (rows[0][0], 0, rows[0][3]) if rows else (record["path"], 0, None)
        if item.box is not None:
            box = record["boxes"][item.box]
            xywh = (box["x_center"], box["y_center"], box["width"], box["height"])
            match = min(rows, key=lambda r: max(abs(a - b) for a, b in zip(r[2], xywh, strict=True)), default=None)
            if match is not None:
                label_file, line, sha = match[0], match[1], match[3]
        findings.append({"file": label_file, "line": line, "image": record["path"], "kind": item.kind,
                         "confidence": round(item.confidence, 4), "reason": f"{record['path']}: {item.reason}",
                         "label_sha256": sha, "model_id": model_id})
    return sorted(findings, key=lambda f: -f["confidence"])


def _review_images(weights: str | Path, images: list[dict], staged_dir: str | Path, imgsz: int,
                   class_names: list[str], label_rows: dict[str, dict[str, list[LabelRow]]], model_id: str,
                   settings: ReviewSettings, reviews: dict[str, list[dict]], batch: int = 16,
                   device: str | None = None) -> None:
    """Predict on ``images`` (dataset rows, pulled under ``staged_dir``) with ``weights``, review
    each against its labels and add the routed findings to ``reviews`` (by scientist).
    ``label_rows``: :func:`label_rows_by_image` of each scientist."""
    from ultralytics import YOLO

    from imgassets.core.training.evaluate import predictions
    from imgassets.core.versioning.checkout import staged_image

    model = YOLO(str(weights))
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        results = model.predict([staged_image(staged_dir, r) for r in chunk], imgsz=imgsz,
                                conf=settings.min_confidence, device=device, verbose=False)
        for record, result in zip(chunk, results, strict=True):
            predicted = [(class_names[c], xywh, p) for c, xywh, p in predictions(result) if c < len(class_names)]
            labelled = [(b["class_name"], (b["x_center"], b["y_center"], b["width"], b["height"])) for b in record["boxes"]]
            found = review_image(labelled, predicted, settings)
            if found:
                rows = label_rows[record["scientist"]].get(record["path"], [])
                reviews[record["scientist"]] += route(record, found, rows, model_id)


def _label_rows(images: list[dict], labels_of: Callable[[str], object]) -> dict[str, dict[str, list[LabelRow]]]:
    return {scientist: label_rows_by_image(labels_of(scientist)) for scientist in sorted({r["scientist"] for r in images})}


def still_standing(findings: list[dict], labels) -> list[dict]:
    """The ``findings`` of a stored review whose label file still has the content it was reviewed
    in (per the scientist's current label table ``labels``): a file fixed since then drops its own."""
    if labels is None or not len(labels):
        return [f for f in findings if f["label_sha256"] is None]
    current = dict(zip(labels["label_file"], labels["label_sha256"], strict=True))
    return [f for f in findings if f["label_sha256"] is None or current.get(f["file"]) == f["label_sha256"]]


HELD_OUT = ("val", "benchmark")


def review_dataset(weights: str | Path, records: list[dict], staged_dir: str | Path, imgsz: int,
                   class_names: list[str], labels_of: Callable[[str], object], model_id: str,
                   settings: ReviewSettings = ReviewSettings(), batch: int = 16,
                   device: str | None = None) -> dict[str, list[dict]]:
    """Review every held-out image (val, benchmark) of ``records`` (a dataset version's rows,
    pulled under ``staged_dir``) with ``weights`` (trained on that version's train split, named
    ``model_id``): ``{scientist: findings}`` (:func:`route`, most confident first), every scientist
    of ``records`` listed. ``labels_of(scientist)``: that scientist's label table, or ``None``."""
    held = [r for r in records if r["split"] in HELD_OUT]
    reviews: dict[str, list[dict]] = {scientist: [] for scientist in sorted({r["scientist"] for r in records})}
    _review_images(weights, held, staged_dir, imgsz, class_names, _label_rows(held, labels_of), model_id, settings,
                   reviews, batch, device)
    return {scientist: sorted(found, key=lambda f: -f["confidence"]) for scientist, found in reviews.items()}


def load_review(store, scientist: str, labels) -> tuple[list[dict], str]:
    """The findings of the scientist's stored review (``reviews/<scientist>.json``) that still stand
    against their current label table ``labels`` (:func:`still_standing`), and who reviewed them
    (or why no model could, or that none has yet)."""
    from imgassets.core.store.keys import review_key
    from imgassets.core.store.records import get_record

    key = review_key(scientist)
    if not store.exists(key):
        return [], "no trained model has reviewed these labels yet"
    review = get_record(store, key)
    return still_standing(review["findings"], labels), (
        review["skipped"] or f"model {review['model_id']} (dataset {review['dataset_id']})")


def fold_of(group: str, folds: int) -> int:
    """The fold (0..``folds``-1) of a duplicate group, from its name (a content hash), by hex digits
    the split rule does not read (:func:`imgassets.core.versioning.dataset.split_scores` reads the
    first 8): near-duplicates share a fold, as they share a split."""
    return int(group[8:16], 16) % folds


def kfold_review(records: list[dict], staged_dir: str | Path, class_names: list[str], training, folds: int,
                 workdir: str | Path, labels_of: Callable[[str], object], model_id: str,
                 settings: ReviewSettings = ReviewSettings(), device: str | None = None) -> tuple[dict[str, list[dict]], list[dict]]:
    """Out-of-sample review of the train split: its images in ``folds`` folds by duplicate group
    (:func:`fold_of`); for each fold a model is trained (``training``: the
    :class:`~imgassets.core.training.train.TrainingSettings` of the dataset's model) on the other
    folds' images of the pulled dataset under ``staged_dir`` (validated on this fold) and reviews
    this fold, so every train image is judged by a model that did not train on it. Returns
    ``({scientist: findings}, [{fold, trained_on, reviewed}])``; findings name ``<model_id>/fold<k>``."""
    from imgassets.core.training.train import train_yolo
    from imgassets.core.versioning.checkout import staged_image

    train = [r for r in records if r["split"] == "train"]
    label_rows = _label_rows(train, labels_of)
    reviews: dict[str, list[dict]] = {scientist: [] for scientist in sorted({r["scientist"] for r in records})}
    runs = []
    for k in range(folds):
        held = [r for r in train if fold_of(r["group"], folds) == k]
        rest = [r for r in train if fold_of(r["group"], folds) != k]
        if not held or not rest:
            runs.append({"fold": k, "trained_on": len(rest), "reviewed": 0})
            continue
        folder = Path(workdir) / f"fold{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, rows in (("train", rest), ("val", held)):
            (folder / f"{name}.txt").write_text("".join(f"{staged_image(staged_dir, r)}\n" for r in rows))
        data = folder / "data.yaml"
        data.write_text(yaml.safe_dump({"path": str(Path(staged_dir).resolve()), "train": str(folder / "train.txt"),
                                        "val": str(folder / "val.txt"), "names": dict(enumerate(class_names))}))
        result = train_yolo(data, training, folder)
        _review_images(result.best_weights, held, staged_dir, training.imgsz, class_names, label_rows,
                       f"{model_id}/fold{k}", settings, reviews, device=device)
        runs.append({"fold": k, "trained_on": len(rest), "reviewed": len(held)})
    return reviews, runs
