"""COCO JSON label files (CVAT "COCO 1.0", Label Studio "COCO").

Format: ``{"images": [{"id", "file_name", "width", "height"}], "annotations": [{"id", "image_id",
"category_id", "bbox": [x, y, w, h], "iscrowd"}], "categories": [{"id", "name"}]}``; ``bbox`` in
pixels from the top-left corner, 0-based. Category ids need not be contiguous or start at 0; they
are kept as the class id and the category name is the class name. ``file_name`` may hold
sub-folders; it is resolved against the JSON's folder, then the scientist's folder, and a name that
would leave the scientist's folder (``..``, absolute paths) is rejected. ``line`` is the 1-based
position of the annotation in ``annotations``. A JSON file without ``images``/``annotations``/
``categories`` lists is not a COCO file and is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class CocoFile:
    """Parsed COCO: categories, images by id, annotations; ``error`` for a file-level problem."""

    categories: dict[int, str] = field(default_factory=dict)
    images: dict[int, dict] = field(default_factory=dict)
    annotations: list[dict] = field(default_factory=list)
    error: str | None = None
    is_coco: bool = True


def parse_coco(data: bytes) -> CocoFile:
    """Parse COCO JSON bytes; never raises (problems go in ``error``; ``is_coco`` False for JSON
    that is not COCO at all)."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return CocoFile(error=f"not valid UTF-8 JSON: {exc}")
    if not (isinstance(doc, dict) and all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories"))):
        return CocoFile(is_coco=False)
    parsed = CocoFile()
    try:
        parsed.categories = {int(c["id"]): str(c["name"]) for c in doc["categories"]}
        parsed.images = {int(i["id"]): i for i in doc["images"]}
    except (KeyError, TypeError, ValueError) as exc:
        parsed.error = f"categories need id and name, images need id: {exc!r}"
        return parsed
    parsed.annotations = doc["annotations"]
    return parsed


def coco_to_xywh(bbox: list[float], width: int, height: int) -> tuple[float, float, float, float]:
    """Normalized (x_center, y_center, width, height) of a COCO ``[x, y, w, h]`` pixel box."""
    x, y, w, h = (float(v) for v in bbox)
    return (x + w / 2) / width, (y + h / 2) / height, w / width, h / height
