"""YOLO txt label files: detection, segmentation and oriented-box rows (Ultralytics).

Formats (https://docs.ultralytics.com/datasets/), one object per row, fields separated by
whitespace, the class an integer id into the class map, coordinates normalized to [0, 1] by the
displayed image width and height:

* detection: ``class x_center y_center width height``;
* segmentation: ``class x1 y1 x2 y2 ... xn yn`` (n >= 3 polygon vertices);
* oriented box (OBB): ``class x1 y1 x2 y2 x3 y3 x4 y4``, the four corners.

A polygon row gives its axis-aligned bounding box, as Ultralytics does when a detector trains on
segments (``segments2boxes``), and keeps its vertices; a file whose vertex rows all have four points
is read as oriented boxes, any other as polygons. A file mixing detection rows and vertex rows is a
finding on each row of the kind its first row is not (Ultralytics would read the detection rows as
two-point polygons). An empty file (or a missing one) means a background image with no objects.
Tolerated: a UTF-8 BOM, CRLF line ends, a missing trailing newline, blank lines.
"""

from __future__ import annotations

import math
from dataclasses import replace

from imgassets.core.drive import layout
from imgassets.core.labels.formats.record import (
    BOX,
    NORMALIZED_XYXY,
    ORIENTED_BOX,
    POLYGON,
    YOLO_XYWH,
    BoxRecord,
    polygon_bbox,
    polygon_fault,
)

MAX_CLASS_ID = 2**31 - 1
"""Largest class id (manifests store class ids as 32-bit integers)."""


def parse_yolo_line(text: str, line: int, label_file: str = "", image_path: str | None = None) -> BoxRecord:
    """Parse one row (1-based number ``line``) of ``label_file``, paired with ``image_path``. Never
    raises: problems go in ``error``. A row of 5 fields is a box; 7 or more (odd) a polygon."""
    fields = text.split()
    box = polygon = error = class_id = None
    shape = BOX
    if len(fields) != 5 and (len(fields) < 7 or len(fields) % 2 == 0):
        error = (f"expected 5 columns `class x_center y_center width height` or a polygon "
                 f"`class x1 y1 x2 y2 ...` (3 or more points), got {len(fields)} columns")
    else:
        try:
            class_value = float(fields[0])
            coords = [float(v) for v in fields[1:]]
        except ValueError:
            error = f"non-numeric value in {text.strip()[:80]!r}"
        else:
            if not all(math.isfinite(v) for v in coords):
                error = f"non-finite coordinate in {text.strip()[:80]!r}"
            elif len(fields) == 5:
                box = tuple(coords)
            elif (error := polygon_fault(coords)) is None:
                box, polygon = polygon_bbox(coords), tuple(coords)
                shape = ORIENTED_BOX if len(coords) == 8 else POLYGON
            if error is None:
                if not class_value.is_integer():
                    error = f"class id {fields[0][:40]} is not an integer"
                elif not 0 <= class_value <= MAX_CLASS_ID:
                    error = f"class id {fields[0][:40]} is out of range (0 to {MAX_CLASS_ID})"
                else:
                    class_id = int(class_value)
    return BoxRecord(label_file, layout.YOLO, line, class_id=class_id, box=box,
                     box_format=YOLO_XYWH if polygon is None else NORMALIZED_XYXY, polygon=polygon,
                     shape=shape, image_path=image_path, error=error)


def _unmix(records: list[BoxRecord]) -> list[BoxRecord]:
    """The rows of one file, with every vertex row an oriented box when all have four points, else
    a polygon, and each row of the other kind than the file's first row with coordinates marked."""
    vertex = [r for r in records if r.polygon is not None]
    if not vertex:
        return records
    shape = ORIENTED_BOX if all(len(r.polygon) == 8 for r in vertex) else POLYGON
    first = next(r for r in records if r.box is not None)
    kind, other = ("detection", "polygon") if first.polygon is None else ("polygon", "detection")
    out = []
    for r in records:
        if r.polygon is not None and r.shape != shape:
            r = replace(r, shape=shape)
        if r.box is not None and r.error is None and (r.polygon is None) != (first.polygon is None):
            r = replace(r, error=f"a {other} row in a file of {kind} rows (line {first.line} is {kind}): "
                                 "keep one kind of row per label file")
        out.append(r)
    return out


def parse_yolo_text(text: str, label_file: str = "", image_path: str | None = None) -> list[BoxRecord]:
    """Parse a whole YOLO label file's text (BOM and CRLF tolerated; blank lines skipped)."""
    records = [parse_yolo_line(raw, number, label_file, image_path)
               for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1) if raw.strip()]
    return _unmix(records)
