"""YOLO txt label files.

Format (Ultralytics): one row per box, ``class x_center y_center width height``, separated by
whitespace; the class is an integer id into the class map and the four coordinates are normalized
to [0, 1] by the displayed image width and height. An empty file (or a missing one) means a
background image with no objects. Tolerated: a UTF-8 BOM, CRLF line ends, a missing trailing
newline, blank lines. Rows with another number of columns (e.g. segmentation polygons) are
reported as parse errors, never silently mixed with boxes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_CLASS_ID = 2**31 - 1
"""Largest class id (manifests store class ids as 32-bit integers)."""


@dataclass(frozen=True)
class YoloRow:
    """One non-blank line of a YOLO label file: the box when it parsed, else ``error``."""

    line: int
    class_id: int | None
    x_center: float | None
    y_center: float | None
    width: float | None
    height: float | None
    error: str | None


def parse_yolo_line(text: str, line: int) -> YoloRow:
    """Parse one line (1-based number ``line``). Never raises: problems go in ``error``."""
    fields = text.split()
    if len(fields) != 5:
        what = "a polygon (segmentation) row" if len(fields) > 5 and len(fields) % 2 == 1 else f"{len(fields)} columns"
        return YoloRow(line, None, None, None, None, None,
                       f"expected 5 columns `class x_center y_center width height`, got {what}")
    try:
        class_value = float(fields[0])
        coords = [float(v) for v in fields[1:]]
    except ValueError:
        return YoloRow(line, None, None, None, None, None, f"non-numeric value in {text.strip()[:80]!r}")
    if not all(math.isfinite(v) for v in coords):
        return YoloRow(line, None, None, None, None, None, f"non-finite coordinate in {text.strip()[:80]!r}")
    if not class_value.is_integer():
        return YoloRow(line, None, *coords, f"class id {fields[0][:40]} is not an integer")
    if not 0 <= class_value <= MAX_CLASS_ID:
        return YoloRow(line, None, *coords, f"class id {fields[0][:40]} is out of range (0 to {MAX_CLASS_ID})")
    return YoloRow(line, int(class_value), *coords, None)


def parse_yolo_text(text: str) -> list[YoloRow]:
    """Parse a whole YOLO label file's text (BOM and CRLF tolerated; blank lines skipped)."""
    rows = []
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        if raw.strip():
            rows.append(parse_yolo_line(raw, number))
    return rows
