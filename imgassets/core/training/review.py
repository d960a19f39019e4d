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
judge (benchmark mAP50 below ``min_benchmark_map50``) gives no findings at all (:func:`why_model_cannot_judge`).
Boxes are normalized xywh (:func:`imgassets.core.training.evaluate.iou_xywh`).
"""

from __future__ import annotations

from dataclasses import dataclass

from imgassets.core.training.evaluate import iou_xywh
from imgassets.core.training.staged_model import Pass

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


DEFAULT_REVIEW = ReviewSettings()
"""The review's default thresholds."""


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


def why_model_cannot_judge(benchmark_map50: float | None, settings: ReviewSettings = ReviewSettings()) -> str | None:
    """Why a model with this benchmark mAP50 may not judge labels, or ``None`` when it may."""
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


def review_pass(model_pass: Pass, label_rows: dict[str, dict[str, list[LabelRow]]], model_id: str,
                settings: ReviewSettings = ReviewSettings()) -> dict[str, list[dict]]:
    """Review each image of ``model_pass`` (a prediction pass over dataset rows,
    :mod:`imgassets.core.training.staged_model`) against its labels: ``{scientist: findings}``
    (:func:`route`), scientists without a finding left out. ``label_rows``:
    :func:`label_rows_by_image` of each scientist of the pass."""
    names = model_pass.class_names
    reviews: dict[str, list[dict]] = {}
    for record in model_pass.records:
        predicted = [(names[c], xywh, p) for c, xywh, p in model_pass.of(record).above(settings.min_confidence)
                     if c < len(names)]
        labelled = [(b["class_name"], (b["x_center"], b["y_center"], b["width"], b["height"])) for b in record["boxes"]]
        found = review_image(labelled, predicted, settings)
        if found:
            rows = label_rows[record["scientist"]].get(record["path"], [])
            reviews.setdefault(record["scientist"], []).extend(route(record, found, rows, model_id))
    return reviews


def still_standing(findings: list[dict], labels) -> list[dict]:
    """The ``findings`` of a stored review whose label file still has the content it was reviewed
    in (per the scientist's current label table ``labels``): a file fixed since then drops its own."""
    if labels is None or not len(labels):
        return [f for f in findings if f["label_sha256"] is None]
    current = dict(zip(labels["label_file"], labels["label_sha256"], strict=True))
    return [f for f in findings if f["label_sha256"] is None or current.get(f["file"]) == f["label_sha256"]]


HELD_OUT = ("val", "benchmark")
"""The splits no model of the dataset trained on: the review judges their images."""


def load_review(store, scientist: str, labels) -> tuple[list[dict], str]:
    """The findings of the scientist's stored review (``reviews/<scientist>.json``) that still stand
    against their current label table ``labels`` (:func:`still_standing`), and who reviewed them
    (or why no model could, or that none has yet)."""
    from imgassets.core.store.keys import review_key
    from imgassets.core.store.sealed import get_record

    key = review_key(scientist)
    if not store.exists(key):
        return [], "no trained model has reviewed these labels yet"
    review = get_record(store, key)
    return still_standing(review["findings"], labels), (
        review["skipped"] or f"model {review['model_id']} (dataset {review['dataset_id']})")


def fold_of(group: str, folds: int) -> int:
    """The fold (0..``folds``-1) of a duplicate group, from its name (a content hash), by hex digits
    the split rule does not read (:func:`imgassets.core.versioning.splits.split_scores` reads the
    first 8): near-duplicates share a fold, as they share a split."""
    return int(group[8:16], 16) % folds
