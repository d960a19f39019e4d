"""CSV box tables as DeepForest and keras-retinanet write them.

Format: a header ``image_path,xmin,ymin,xmax,ymax,label`` and one row per box, corners in pixels
from the top-left, 0-based; ``image_path`` relative to the CSV's folder. Normalized as
``x_center = (xmin + xmax) / 2 / W``, ``width = (xmax - xmin) / W``. ``line`` is the CSV line.
A CSV with another header (e.g. DeepForest's ``classes.csv``) is not a label file and is ignored.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

HEADER = ["image_path", "xmin", "ymin", "xmax", "ymax", "label"]


@dataclass
class CsvBox:
    """One CSV row: image path as written, class name, pixel corners; ``error`` when unusable."""

    line: int
    image: str
    label: str | None
    xmin: float | None = None
    ymin: float | None = None
    xmax: float | None = None
    ymax: float | None = None
    error: str | None = None


def parse_box_csv(data: bytes) -> list[CsvBox] | None:
    """Rows of a box CSV, or ``None`` when the header is not :data:`HEADER` (not a label file)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if [h.strip().lower() for h in (header or [])] != HEADER:
        return None
    boxes = []
    for line, fields in enumerate(reader, start=2):
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != 6:
            boxes.append(CsvBox(line, fields[0] if fields else "", None, error=f"expected 6 columns, got {len(fields)}"))
            continue
        box = CsvBox(line, fields[0].strip(), fields[5].strip() or None)
        try:
            box.xmin, box.ymin, box.xmax, box.ymax = (float(v) for v in fields[1:5])
        except ValueError:
            box.error = f"non-numeric corner in {','.join(fields[1:5])!r}"
        boxes.append(box)
    return boxes


def csv_to_xywh(box: CsvBox, width: int, height: int) -> tuple[float, float, float, float]:
    """Normalized (x_center, y_center, width, height) of 0-based pixel corners."""
    return ((box.xmin + box.xmax) / 2 / width, (box.ymin + box.ymax) / 2 / height,
            (box.xmax - box.xmin) / width, (box.ymax - box.ymin) / height)
