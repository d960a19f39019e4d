"""COCO JSON label files (CVAT "COCO 1.0", Label Studio "COCO").

Format: ``{"images": [{"id", "file_name", "width", "height"}], "annotations": [{"id", "image_id",
"category_id", "bbox": [x, y, w, h], "iscrowd"}], "categories": [{"id", "name"}]}``; ``bbox`` in
pixels from the top-left corner, 0-based. Category ids need not be contiguous or start at 0; they
are kept as the class id and the category name is the class name. ``file_name`` may hold
sub-folders; the label table resolves it inside the scientist's folder. ``line`` is the 1-based
position of the annotation in ``annotations``. A JSON file without ``images``/``annotations``/
``categories`` lists is not a COCO file (:func:`is_coco`).
"""

from __future__ import annotations

import json
import math

from imgassets.core.drive import layout
from imgassets.core.labels.formats.record import COCO_XYWH, BoxRecord, file_error


def is_coco(doc: object) -> bool:
    """Whether a parsed JSON document is COCO: an object with ``images``, ``annotations`` and
    ``categories`` lists."""
    return isinstance(doc, dict) and all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories"))


def _is_number(value: object) -> bool:
    """A finite JSON number (``True``/``False`` are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**31


def _annotation_fault(ann: object, info: dict | None) -> str | None:
    """Why COCO annotation ``ann`` (of image ``info``, when found) cannot give a box, or None.
    Checked before any value is used, so a malformed field is a finding, never a crash."""
    if not isinstance(ann, dict):
        return "annotation is not a JSON object"
    if not _is_int(ann.get("image_id")):
        return f"image_id must be an integer, got {json.dumps(ann.get('image_id'))[:40]}"
    if info is None:
        return None  # reported as referring to no image
    if not _is_int(ann.get("category_id")):
        return f"category_id must be an integer, got {json.dumps(ann.get('category_id'))[:40]}"
    if ann.get("iscrowd") not in (None, 0, 1) or isinstance(ann.get("iscrowd"), bool):
        return f"iscrowd must be 0 or 1, got {json.dumps(ann.get('iscrowd'))[:40]}"
    bbox = ann.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        return "bbox must be [x, y, width, height], four numbers"
    for side in ("width", "height"):
        if info.get(side) is not None and not (_is_number(info[side]) and info[side] >= 0):
            return f"its image's {side} must be a number of pixels, got {json.dumps(info[side])[:40]}"
    return None


def parse_coco(doc: dict, label_file: str = "") -> list[BoxRecord]:
    """The box records of a COCO document (:func:`is_coco`): one per annotation, with the image's
    ``file_name`` as ``image_ref`` and its ``width``/``height`` as ``declared_size``, and an ``empty``
    record for each image without annotation (background). Never raises:
    a malformed annotation is a record with its ``error``; malformed categories or images one record
    with ``line`` 0."""
    try:
        categories = {int(c["id"]): str(c["name"]) for c in doc["categories"]}
        images = {int(i["id"]): i for i in doc["images"]}
    except (KeyError, TypeError, ValueError) as exc:
        return [file_error(label_file, layout.COCO, f"categories need id and name, images need id: {exc!r}")]
    records = []
    for number, ann in enumerate(doc["annotations"], start=1):
        image_id = ann.get("image_id") if isinstance(ann, dict) and _is_int(ann.get("image_id")) else None
        info = images.get(image_id) if image_id is not None else None
        ref = str(info.get("file_name", "")) if info else None
        record = BoxRecord(label_file, layout.COCO, number, image_ref=ref)
        fault = _annotation_fault(ann, info)
        if fault or info is None:
            record.error = fault or f"annotation {number} refers to no image in 'images'"
            records.append(record)
            continue
        record.class_id = ann["category_id"]
        record.class_name = categories.get(ann["category_id"])
        record.box, record.box_format = tuple(float(v) for v in ann["bbox"]), COCO_XYWH
        width, height = info.get("width"), info.get("height")
        record.declared_size = ((int(width), int(height)) if all(_is_finite_number(v) and v for v in (width, height))
                                else None)
        record.flags = {"iscrowd": ann.get("iscrowd")}
        records.append(record)
    annotated = {ann["image_id"] for ann in doc["annotations"] if isinstance(ann, dict) and _is_int(ann.get("image_id"))}
    records += [BoxRecord(label_file, layout.COCO, 0, image_ref=str(info["file_name"]), empty=True)
                for image_id, info in images.items()
                if image_id not in annotated and isinstance(info, dict) and info.get("file_name")]
    return records
