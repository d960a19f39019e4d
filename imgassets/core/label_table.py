"""The label table: one row per box line of every label file in a scientist's folder.

Columns (:data:`LABEL_COLUMNS`): ``image_sha256`` and ``image_path`` of the annotated image (null
for a label file with no image), ``label_file`` and ``line`` (1-based; 0 for a whole-file problem),
``class_id``, ``class_name`` (null when the id is not in the class map), ``x_center``,
``y_center``, ``width``, ``height`` (normalized xywh in the displayed frame, null when the line did
not parse), ``class_map_file`` (the class map used) and ``parse_error`` (null when the line parsed).
A class-map file that cannot be used appears once as a row with ``line`` 0 and its ``parse_error``.

Rows that did not parse are kept so that the asset checks can name the file and line; only rows
that pass every check reach a snapshot. :class:`LabelTableSchema` is the pandera model of a *valid*
table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from imgassets.core import layout
from imgassets.core.class_map import ClassMapError, nearest_class_map, read_class_map
from imgassets.core.yolo_labels import parse_yolo_text

LABEL_COLUMNS = [
    "image_sha256", "image_path", "label_file", "line", "class_id", "class_name",
    "x_center", "y_center", "width", "height", "class_map_file", "parse_error",
]
LABEL_DTYPES = {
    "image_sha256": "string", "image_path": "string", "label_file": "string", "line": "int64",
    "class_id": "Int64", "class_name": "string", "x_center": "float64", "y_center": "float64",
    "width": "float64", "height": "float64", "class_map_file": "string", "parse_error": "string",
}


class LabelTableSchema(pa.DataFrameModel):
    """A valid label table: every row a parsed box with a known class and normalized xywh.

    Coordinates are each in [0, 1] (YOLO normalized xywh); the box's extent against the image
    edges and its area are checked by :mod:`imgassets.core.label_checks`, with a tolerance.
    """

    image_sha256: Series[str] = pa.Field(nullable=True, str_matches=r"^[0-9a-f]{64}$")
    image_path: Series[str] = pa.Field(nullable=True)
    label_file: Series[str]
    line: Series[int] = pa.Field(ge=1)
    class_id: Series[pd.Int64Dtype] = pa.Field(ge=0)
    class_name: Series[str] = pa.Field(nullable=True)
    x_center: Series[float] = pa.Field(ge=0, le=1)
    y_center: Series[float] = pa.Field(ge=0, le=1)
    width: Series[float] = pa.Field(ge=0, le=1)
    height: Series[float] = pa.Field(ge=0, le=1)
    class_map_file: Series[str] = pa.Field(nullable=True)
    parse_error: Series[str] = pa.Field(nullable=True, isin=[])

    class Config:
        strict = True
        coerce = True


def empty_label_table() -> pd.DataFrame:
    """A label table with the right columns and dtypes and no rows."""
    return pd.DataFrame(columns=LABEL_COLUMNS).astype(LABEL_DTYPES)


def build_label_table(folder: str | Path, index: pd.DataFrame) -> pd.DataFrame:
    """Read every label file listed in ``index`` (the scientist's image index) under ``folder``.

    Label files are paired with images by :func:`imgassets.core.layout.pair_labels`; class names
    come from the nearest class map (:func:`imgassets.core.class_map.nearest_class_map`). Never
    raises for bad content: unreadable files and unparseable lines become rows with ``parse_error``.
    """
    folder = Path(folder)
    by_kind = {k: index.loc[index["kind"] == k, "path"].tolist() for k in (layout.IMAGE, layout.LABEL, layout.CLASS_MAP)}
    sha_of = dict(zip(index["path"], index["sha256"], strict=True))
    pairs = layout.pair_labels(by_kind[layout.IMAGE], by_kind[layout.LABEL])
    class_maps: dict[str, dict[int, str] | ClassMapError] = {}
    rows: list[dict] = []
    for label_file in sorted(by_kind[layout.LABEL]):
        image_path = pairs.get(label_file)
        base = {"image_sha256": sha_of.get(image_path) if image_path else None, "image_path": image_path,
                "label_file": label_file}
        map_file = nearest_class_map(label_file, by_kind[layout.CLASS_MAP])
        mapping: dict[int, str] | ClassMapError | None = None
        if map_file is not None:
            if map_file not in class_maps:
                try:
                    class_maps[map_file] = read_class_map(folder / map_file, map_file)
                except ClassMapError as exc:
                    class_maps[map_file] = exc
                    rows.append({"label_file": map_file, "line": 0, "class_map_file": map_file,
                                 "parse_error": f"class map cannot be used: {exc}"})
            mapping = class_maps[map_file]
        try:
            text = (folder / label_file).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            rows.append({**base, "line": 0, "class_map_file": map_file,
                         "parse_error": f"cannot read label file as UTF-8 text: {exc}"})
            continue
        for row in parse_yolo_text(text):
            name = mapping.get(row.class_id) if isinstance(mapping, dict) and row.class_id is not None else None
            rows.append({**base, "line": row.line, "class_id": row.class_id, "class_name": name,
                         "x_center": row.x_center, "y_center": row.y_center, "width": row.width,
                         "height": row.height, "class_map_file": map_file, "parse_error": row.error})
    if not rows:
        return empty_label_table()
    return pd.DataFrame(rows, columns=LABEL_COLUMNS).astype(LABEL_DTYPES)
