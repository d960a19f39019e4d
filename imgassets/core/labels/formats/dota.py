"""DOTA-style oriented-box text files (``labelTxt/``), as DOTA and Ultralytics' OBB exports write them.

Format (https://captain-whu.github.io/DOTA/dataset.html): one object per line,
``x1 y1 x2 y2 x3 y3 x4 y4 class_name difficult``, the four corners in pixels (0-based, clockwise);
optional header lines ``imagesource:...`` and ``gsd:...``; ``difficult`` may be missing. The file
``labelTxt/<stem>.txt`` annotates the image ``images/<stem>.<ext>`` beside the ``labelTxt`` folder
(or in the same folder). Each object gives its four corners as an oriented box and their
axis-aligned bounding box.
"""

from __future__ import annotations

import math

from imgassets.core.drive import layout
from imgassets.core.labels.formats.record import ORIENTED_BOX, BoxRecord, polygon_bbox

HEADER_PREFIXES = ("imagesource:", "gsd:")


def parse_dota(text: str, label_file: str = "", image_path: str | None = None) -> list[BoxRecord]:
    """The box records of a DOTA file's text, paired with ``image_path`` (an ``empty`` record when it
    has no object line: background). Never raises."""
    records = []
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        fields = raw.split()
        if not fields or raw.strip().lower().startswith(HEADER_PREFIXES):
            continue
        record = BoxRecord(label_file, layout.DOTA, number, shape=ORIENTED_BOX, image_path=image_path)
        records.append(record)
        if len(fields) not in (9, 10):
            record.error = f"expected `x1 y1 x2 y2 x3 y3 x4 y4 class_name difficult`, got {len(fields)} columns"
            continue
        try:
            corners = tuple(float(v) for v in fields[:8])
        except ValueError:
            record.error = f"non-numeric corner in {' '.join(fields[:8])[:80]!r}"
            continue
        if not all(math.isfinite(v) for v in corners):
            record.error = "non-finite corner"
            continue
        record.class_name, record.polygon, record.box = fields[8], corners, polygon_bbox(corners)
        if len(fields) == 10:
            if fields[9] not in ("0", "1"):
                record.error = f"difficult must be 0 or 1, got {fields[9][:20]!r}"
            else:
                record.flags = {"difficult": int(fields[9])}
    if not records and image_path is not None:  # no object lines: background
        records.append(BoxRecord(label_file, layout.DOTA, 0, image_path=image_path, empty=True))
    return records
