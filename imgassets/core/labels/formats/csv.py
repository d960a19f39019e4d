"""CSV box tables as DeepForest and keras-retinanet write them.

Format: a header ``image_path,xmin,ymin,xmax,ymax,label`` and one row per box, corners in pixels
from the top-left, 0-based; ``image_path`` relative to the CSV's folder. Normalized as
``x_center = (xmin + xmax) / 2 / W``, ``width = (xmax - xmin) / W``. ``line`` is the CSV line.
A CSV with another header (e.g. DeepForest's ``classes.csv``) is not a label file and is ignored.
The format declares no image size: a row whose image is missing has no coordinates.
"""

from __future__ import annotations

import csv
import io

from imgassets.core.drive import layout
from imgassets.core.labels.formats.record import BoxRecord

HEADER = ["image_path", "xmin", "ymin", "xmax", "ymax", "label"]


def parse_box_csv(data: bytes, label_file: str = "") -> list[BoxRecord] | None:
    """The box records of a box CSV, or ``None`` when the header is not :data:`HEADER` (not a label file)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if [h.strip().lower() for h in (header or [])] != HEADER:
        return None
    records = []
    for line, fields in enumerate(reader, start=2):
        if not any(f.strip() for f in fields):
            continue
        record = BoxRecord(label_file, layout.CSV, line, image_ref=fields[0].strip() if fields else "")
        if len(fields) != 6:
            record.error = f"expected 6 columns, got {len(fields)}"
        else:
            record.class_name = fields[5].strip() or None
            try:
                record.box = tuple(float(v) for v in fields[1:5])
            except ValueError:
                record.error = f"non-numeric corner in {','.join(fields[1:5])!r}"
        records.append(record)
    return records
