"""Where each box came from: labels that arrive for an image the champion pre-labelled, compared with
the pre-annotations handed to the labeling tool.

Every pre-annotation imgassets hands out (``imgassets prelabel``, ``imgassets label push``) is
recorded per scientist by the image's content hash, with the champion that proposed it
(:func:`record_prelabels`, ``labeling/prelabels/<scientist>.json``). When the image's labels arrive,
each usable box of the label table is matched to those pre-annotations (greedily, highest IoU
first, one to one) and classified (:data:`KINDS`):

* ``accepted``: same class and IoU at least :data:`ACCEPTED_IOU` (unchanged, up to the rounding of
  an export format: YOLO's 6 decimals, CVAT's hundredths of a pixel);
* ``corrected``: matched (IoU at least :data:`MATCH_IOU`) but moved, resized or given another class;
* ``added``: no pre-annotation near it (the annotator drew it);

and each pre-annotation left unmatched was ``rejected`` (deleted). A box of an image never
pre-labelled has no provenance. The label table holds each box's kind (``provenance``) and the
image's rejected count and champion (:data:`PRELABELLED`, in its ``attrs``); the snapshot manifest
keeps them per image (:data:`imgassets.core.versioning.manifest.PROVENANCE_FIELD`).

The *acceptance rate* of a champion is the share of its pre-annotations accepted unchanged; the
boxes it *saved* are those (an annotator drew none of them). A low rate on a class says where the
model is weak; a rate near 1 on a scientist whose pre-labelled images the label review finds wrong
says the pre-annotations were accepted without looking (:func:`rubber_stamp_findings`).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from imgassets.core.labeling.queue import LabelingQueue
from imgassets.core.labels.checks import Finding
from imgassets.core.labels.table import PRELABELLED, prelabelled_images, usable_boxes
from imgassets.core.store.base import ObjectNotFoundError, ObjectStore
from imgassets.core.store.keys import labeling_prelabels_key
from imgassets.core.store.sealed import get_record, put_record
from imgassets.errors import Reason

ACCEPTED, CORRECTED, ADDED, REJECTED = "accepted", "corrected", "added", "rejected"
KINDS = (ACCEPTED, CORRECTED, ADDED)
"""The provenance of a box of the label table (a rejected pre-annotation is not a box)."""
ACCEPTED_IOU = 0.95
MATCH_IOU = 0.5
RUBBER_STAMP_ACCEPTANCE = 0.95
RUBBER_STAMP_REVIEW_RATE = 0.2
RUBBER_STAMP_MIN_BOXES = 20
"""A scientist's pre-annotations look accepted without looking when at least this many were
proposed, at least :data:`RUBBER_STAMP_ACCEPTANCE` of them were accepted unchanged, and the label
review finds at least :data:`RUBBER_STAMP_REVIEW_RATE` of the pre-labelled images it judged wrong."""


def load_prelabels(store: ObjectStore, scientist: str) -> dict[str, dict]:
    """The pre-annotations handed out for ``scientist``'s images: ``{sha256: {"model_id", "boxes"}}``
    (boxes as the queue's ``prelabels``); empty when none were."""
    try:
        return dict(get_record(store, labeling_prelabels_key(scientist)).get("images") or {})
    except ObjectNotFoundError:
        return {}


def record_prelabels(store: ObjectStore, queue: LabelingQueue) -> int:
    """Record the pre-annotations of ``queue``'s entries as handed out (an image handed out again by
    a later champion keeps the later one's); return how many images are recorded for the scientist."""
    images = load_prelabels(store, queue.scientist)
    for entry in queue.entries:
        images[entry["sha256"]] = {"model_id": queue.model_id, "boxes": entry["prelabels"]}
    put_record(store, labeling_prelabels_key(queue.scientist), {"scientist": queue.scientist, "images": images})
    return len(images)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (n x 4, normalized xywh) with every box of ``b`` (m x 4): n x m."""
    def corners(x: np.ndarray) -> tuple[np.ndarray, ...]:
        return x[:, 0] - x[:, 2] / 2, x[:, 1] - x[:, 3] / 2, x[:, 0] + x[:, 2] / 2, x[:, 1] + x[:, 3] / 2

    ax0, ay0, ax1, ay1 = (v[:, None] for v in corners(a))
    bx0, by0, bx1, by1 = (v[None, :] for v in corners(b))
    inter = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None) * \
        np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def classify(labelled: list[tuple[str, tuple]], proposed: list[tuple[str, tuple]]) -> tuple[list[str], int]:
    """(the kind of each of ``labelled`` (``(class name, xywh)``), the number of ``proposed`` left
    unmatched: rejected), by the module's rule."""
    kinds = [ADDED] * len(labelled)
    if not labelled or not proposed:
        return kinds, len(proposed)
    iou = _iou(np.array([b for _, b in labelled], float), np.array([b for _, b in proposed], float))
    used_label, used_prop = set(), set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        i, j = divmod(int(flat), len(proposed))
        if iou[i, j] < MATCH_IOU:
            break
        if i in used_label or j in used_prop:
            continue
        used_label.add(i)
        used_prop.add(j)
        same = labelled[i][0] == proposed[j][0] and iou[i, j] >= ACCEPTED_IOU
        kinds[i] = ACCEPTED if same else CORRECTED
    return kinds, len(proposed) - len(used_prop)


def with_provenance(table: pd.DataFrame, prelabels: dict[str, dict]) -> pd.DataFrame:
    """``table`` (a scientist's label table) with ``provenance`` set on the usable boxes of every
    image handed out with pre-annotations (``prelabels``: :func:`load_prelabels`) and labelled since,
    null elsewhere, and the images' champion and rejected count in ``attrs[PRELABELLED]``. In place."""
    table["provenance"] = pd.array([pd.NA] * len(table), dtype="string")
    compared: dict[str, dict] = {}
    if prelabels and len(table):
        usable = usable_boxes(table)
        rows = table[usable & table["image_sha256"].isin(list(prelabels)).to_numpy(bool)]
        for (path, sha), group in rows.groupby(["image_path", "image_sha256"], sort=True):
            handed = prelabels[sha]
            labelled = [(str(c), (x, y, w, h)) for c, x, y, w, h in
                        group[["class_name", "x_center", "y_center", "width", "height"]].itertuples(index=False)]
            proposed = [(b["class_name"], (b["x_center"], b["y_center"], b["width"], b["height"]))
                        for b in handed.get("boxes") or []]
            kinds, rejected = classify(labelled, proposed)
            table.loc[group.index, "provenance"] = kinds
            compared[path] = {"model_id": handed.get("model_id") or "", "rejected": rejected}
    table.attrs[PRELABELLED] = json.dumps(compared, sort_keys=True)
    return table


def provenance_summary(table: pd.DataFrame) -> dict:
    """Per champion (model id): the pre-labelled ``images``, their boxes by kind (``accepted``,
    ``corrected``, ``added``, ``rejected``), ``proposed`` (pre-annotations handed out: accepted +
    corrected + rejected), ``acceptance_rate`` (accepted / proposed), ``boxes_saved`` (accepted)
    and ``by_class`` (``{class: {"proposed", "accepted", "acceptance_rate"}}``, by the labelled
    class); empty when no image was pre-labelled."""
    images = prelabelled_images(table)
    if not images:
        return {}
    rows = table[table["provenance"].notna().to_numpy(bool)] if "provenance" in table.columns else table.iloc[:0]
    model_of = {path: info.get("model_id", "") for path, info in images.items()}
    summary: dict[str, dict] = {}
    for path, info in images.items():
        entry = summary.setdefault(model_of[path], {"images": 0, ACCEPTED: 0, CORRECTED: 0, ADDED: 0, REJECTED: 0,
                                                    "by_class": {}})
        entry["images"] += 1
        entry[REJECTED] += int(info.get("rejected", 0))
    for row in rows[["image_path", "class_name", "provenance"]].itertuples(index=False):
        entry = summary[model_of.get(row.image_path, "")]
        entry[row.provenance] += 1
        if row.provenance != ADDED:
            by_class = entry["by_class"].setdefault(str(row.class_name), {"proposed": 0, "accepted": 0})
            by_class["proposed"] += 1
            by_class["accepted"] += row.provenance == ACCEPTED
    for entry in summary.values():
        entry["proposed"] = entry[ACCEPTED] + entry[CORRECTED] + entry[REJECTED]
        entry["acceptance_rate"] = round(entry[ACCEPTED] / entry["proposed"], 4) if entry["proposed"] else None
        entry["boxes_saved"] = entry[ACCEPTED]
        for counts in entry["by_class"].values():
            counts["acceptance_rate"] = round(counts["accepted"] / counts["proposed"], 4)
    return summary


def rubber_stamp_findings(scientist: str, table: pd.DataFrame, review: list[dict]) -> list[Finding]:
    """One finding per champion whose pre-annotations of ``scientist``'s images look accepted without
    looking (thresholds above): accepted nearly all unchanged, while the label review's standing
    findings (``review``: dicts with an ``image`` path) fall on many of the pre-labelled images."""
    findings = []
    images = prelabelled_images(table)
    flagged = {f.get("image") for f in review}
    for model_id, entry in provenance_summary(table).items():
        rate = entry["acceptance_rate"]
        mine = [p for p, info in images.items() if info.get("model_id", "") == model_id]
        wrong = sum(p in flagged for p in mine)
        if (entry["proposed"] >= RUBBER_STAMP_MIN_BOXES and rate is not None and rate >= RUBBER_STAMP_ACCEPTANCE
                and mine and wrong / len(mine) >= RUBBER_STAMP_REVIEW_RATE):
            findings.append(Finding(scientist, 0, f"{entry[ACCEPTED]} of {entry['proposed']} pre-annotations of champion "
                                                  f"{model_id} accepted unchanged ({rate:.0%}), yet the label review "
                                                  f"disagrees with the labels of {wrong} of those {len(mine)} images: "
                                                  "were they checked?", Reason.PRELABELS_RUBBER_STAMPED))
    return findings
