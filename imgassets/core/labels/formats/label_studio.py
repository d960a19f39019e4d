"""Label Studio JSON exports ("JSON" export of an image project).

Format (https://labelstud.io/guide/export#Label-Studio-JSON-format-of-annotated-tasks): a list of
tasks ``{"id", "data": {"image": <url>}, "file_upload", "annotations": [{"result": [...],
"was_cancelled", "ground_truth"}], "predictions"}``. Each result is ``{"type": "rectanglelabels" |
"polygonlabels", "original_width", "original_height", "image_rotation", "value": {...}}`` with,
in percent (0-100) of the image's width and height, ``x``, ``y``, ``width``, ``height`` and
``rotation`` (degrees clockwise about the rectangle's top-left corner) for a rectangle, or
``points: [[x, y], ...]`` for a polygon, and the class name in ``rectanglelabels``/``polygonlabels``.

The "JSON-MIN" export is read too: a list of ``{"image": <url>, <control name>: [{"x", "y",
"width", "height", "rotation", "rectanglelabels", "original_width", "original_height"}, ...]}``
(polygons with ``points`` and ``polygonlabels``), one annotation per task.

Read per task: the ground-truth annotation if one is marked, else the last one not cancelled
(several annotators' versions are not merged); predictions (model pre-annotations) are not labels.
Other result types (keypoints, brushes, choices) describe no box and are not read. A rotated
rectangle becomes an oriented box, its corners computed in the pixels of ``original_width`` x
``original_height``. ``image_rotation`` other than 0 means the boxes were drawn on a rotated view:
a finding. Images are named by upload: ``/data/upload/<project>/<8 hex>-<name>`` (Label Studio puts
a hash before the uploaded file's name), ``/data/local-files/?d=<path>``, or any URL; a task that
imgassets pushed (:mod:`imgassets.core.labeling.label_studio_client`) also carries the image's path in
the scientist's folder in ``data.path``, tried first; the label table looks for ``<name>`` beside the JSON, in an ``images/`` folder beside it, at the top of the
scientist's folder, then for the one image of that name in the folder. ``line`` is the result's
1-based position among the file's results.
"""

from __future__ import annotations

import math
import posixpath
import re
from urllib.parse import parse_qs, unquote, urlparse

from imgassets.core.drive import layout
from imgassets.core.labels.formats.record import (
    NORMALIZED_XYXY,
    ORIENTED_BOX,
    POLYGON,
    BoxRecord,
    polygon_bbox,
    polygon_fault,
    rotated_rectangle,
)

UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")
"""The hash Label Studio puts before an uploaded file's name."""
SHAPES = {"rectanglelabels": "rectangle", "polygonlabels": "polygon"}


def _is_full_task(task: object) -> bool:
    return isinstance(task, dict) and isinstance(task.get("data"), dict) and "annotations" in task


def _min_results(task: dict) -> list[dict]:
    """The results of a JSON-MIN task: every item of its list fields that names a rectangle or
    polygon class, typed as the full export types them."""
    found = []
    for value in task.values():
        for item in value if isinstance(value, list) else []:
            kind = next((k for k in SHAPES if isinstance(item, dict) and k in item), None)
            if kind:
                found.append({"type": kind, "value": item, "original_width": item.get("original_width"),
                              "original_height": item.get("original_height"),
                              "image_rotation": item.get("image_rotation", 0)})
    return found


def is_label_studio(doc: object) -> bool:
    """Whether a parsed JSON document is a Label Studio export: a list of tasks, each an object with
    ``data`` and ``annotations`` (the "JSON" export), or each an object with an ``image`` name and at
    least one of them with a rectangle or polygon (the "JSON-MIN" export)."""
    if not (isinstance(doc, list) and doc):
        return False
    if all(_is_full_task(t) for t in doc):
        return True
    return (all(isinstance(t, dict) and isinstance(t.get("image"), str) for t in doc)
            and any(_min_results(t) for t in doc))


def image_names(reference: str, file_upload: str | None = None) -> list[str]:
    """The names an image of a task may have on the drive, most likely first: the ``d`` path of a
    local-files URL, the URL's file name without Label Studio's upload hash, then with it."""
    try:
        parsed = urlparse(reference)
        names, path = [unquote(d) for d in parse_qs(parsed.query).get("d", [])], parsed.path
    except ValueError:  # not a URL (an unclosed IPv6 bracket, "http://[::1/x.jpg"): its last path part
        names, path = [], reference
    for name in (posixpath.basename(unquote(path)), file_upload or ""):
        if name:
            names += [UPLOAD_PREFIX.sub("", name), name]
    return list(dict.fromkeys(n for n in names if n))


def _annotation(task: dict) -> dict | None:
    listed = task.get("annotations")
    annotations = [a for a in listed if isinstance(a, dict) and not a.get("was_cancelled")] \
        if isinstance(listed, list) else []
    truth = [a for a in annotations if a.get("ground_truth")]
    return (truth or annotations or [None])[-1]


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(value)
    return float(value)


def _fill(record: BoxRecord, result: dict) -> None:
    """Fill ``record`` from one rectangle or polygon result (in place)."""
    value = result.get("value") if isinstance(result.get("value"), dict) else {}
    kind = result.get("type")
    names = value.get(kind)
    record.class_name = str(names[0]).strip() or None if isinstance(names, list) and names else None
    try:
        size = (int(_number(result["original_width"])), int(_number(result["original_height"])))
        record.declared_size = size if all(size) else None
    except (KeyError, ValueError):
        record.declared_size = None
    if result.get("image_rotation") not in (None, 0):
        record.error = (f"drawn on a view of the image rotated {result.get('image_rotation')} degrees "
                        "(image_rotation): its coordinates are of the rotated view; label the unrotated image")
        return
    try:
        if kind == "rectanglelabels":
            x, y, w, h = (_number(value[k]) for k in ("x", "y", "width", "height"))
            rotation = _number(value.get("rotation") or 0) % 360
            if rotation:
                if record.declared_size is None:
                    record.error = "a rotated rectangle needs original_width and original_height"
                    return
                width, height = record.declared_size
                corners = rotated_rectangle(x * width / 100, y * height / 100, w * width / 100, h * height / 100,
                                            rotation, about_center=False)
                record.polygon = tuple(v / (width if i % 2 == 0 else height) for i, v in enumerate(corners))
                record.box, record.shape = polygon_bbox(record.polygon), ORIENTED_BOX
            else:
                record.box = (x / 100, y / 100, (x + w) / 100, (y + h) / 100)
        else:
            values = [_number(v) / 100 for point in value["points"] for v in point]
            fault = polygon_fault(values)
            if fault:
                record.error = fault
                return
            record.polygon, record.box, record.shape = tuple(values), polygon_bbox(values), POLYGON
    except (KeyError, TypeError, ValueError):
        record.error = (f"a {SHAPES[kind]} needs numeric " +
                        ("x, y, width and height" if kind == "rectanglelabels" else "points [[x, y], ...]"))
        return
    if record.class_name is None:
        record.error = f"{kind} without a class name"


def parse_label_studio(tasks: list, label_file: str = "") -> list[BoxRecord]:
    """The box records of a Label Studio export (:func:`is_label_studio`): one per rectangle or
    polygon result of each task's chosen annotation, ``box_format`` normalized corners, the task's
    likeliest image name on the drive as ``image_ref`` and its :func:`image_names` (beside the JSON,
    in ``images/`` beside it, at the top) as ``image_candidates``; an ``empty`` record for a task
    whose chosen annotation draws no rectangle or polygon (background; a task without annotation,
    predictions only, gives none: nobody has labelled it). Never raises."""
    folder = posixpath.dirname(label_file)
    records: list[BoxRecord] = []
    position = 0
    for task in tasks:
        if _is_full_task(task):
            annotation = _annotation(task)
            results = annotation.get("result") if annotation else None
            data = task["data"]
        else:  # JSON-MIN: the image and the results at the top of the task
            results, data = _min_results(task), task
        reference = next((v for k, v in data.items() if k == "image" and isinstance(v, str)),
                         next((v for v in data.values() if isinstance(v, str)), ""))
        names = image_names(reference, task.get("file_upload") if isinstance(task.get("file_upload"), str) else None)
        candidates = tuple(posixpath.normpath(posixpath.join(base, name)) for name in names
                           for base in (folder, posixpath.join(folder, "images"), "") if base or name)
        path = data.get("path") if isinstance(data.get("path"), str) else None
        if path and not path.startswith("/"):  # imgassets' own tasks: the image's path in the scientist's folder
            candidates = (posixpath.normpath(path), *candidates)
        inside = tuple(c for c in candidates if not c.startswith(".."))
        shapes = [r for r in (results if isinstance(results, list) else [])
                  if isinstance(r, dict) and r.get("type") in SHAPES]
        for result in shapes:
            position += 1
            record = BoxRecord(label_file, layout.LABEL_STUDIO, position, box_format=NORMALIZED_XYXY,
                               image_ref=names[0] if names else None, image_candidates=inside)
            _fill(record, result)
            records.append(record)
        if not shapes and isinstance(results, list) and names:  # annotated, and nothing drawn: background
            records.append(BoxRecord(label_file, layout.LABEL_STUDIO, 0, image_ref=names[0], image_candidates=inside,
                                     empty=True))
    return records

