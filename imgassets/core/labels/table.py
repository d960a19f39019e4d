"""The label table: one row per box line of every label file in a scientist's folder.

Columns (:data:`LABEL_COLUMNS`): ``image_sha256`` and ``image_path`` of the annotated image (null
for a label file with no image), ``image_ref`` (the image name the label file gives, VOC/COCO),
``label_file``, ``label_format`` (yolo / voc / coco) and ``line`` (1-based; 0 for a whole-file
problem), ``class_id``, ``class_name`` (null when the id is not in the class map), ``x_center``,
``y_center``, ``width``, ``height`` (normalized xywh in the displayed frame, null when the line did
not parse), ``difficult``/``truncated`` (VOC) and ``iscrowd`` (COCO) flags, ``class_map_file``
(the class map used: data.yaml/classes.txt for YOLO, the file itself for VOC and COCO),
``parse_error`` (null when the line parsed) and ``frame_error`` (the label file declares an image
size that is not the image's displayed size, e.g. the un-rotated frame of an EXIF-rotated photo),
``superseded_by`` (another label file gives this image the same boxes and is used instead),
``source_conflict`` (label files disagree about this image), ``image_rejected`` (the image index
rejected the annotated image: its reason; the row is left out, see below), and the content hashes of the row's
sources from the image index, ``label_sha256`` (the label file) and ``class_map_sha256`` (its class
map): the label table of a later run reuses the rows of a YOLO file whose sources are unchanged
(:func:`build_label_table`'s ``previous``).
A class-map file that cannot be used appears once as a row with ``line`` 0 and its ``parse_error``.

Rows that did not parse are kept so that the asset checks can name the file and line; only rows
that pass every check reach a snapshot. :class:`LabelTableSchema` is the pandera model of a *valid*
table.

One rule pairs a box with its image, whatever the format (:meth:`_Context.xywh`,
:func:`mark_rejected_images`): a box is normalized by its image's displayed size; a box whose image
does not exist (no ``image_path``) is a warning naming the file and line (the size the file declares,
if any, still normalizes it; a CSV row declares none); a box whose image was rejected gets the image's
reason in ``image_rejected``. Neither kind of box is checked against an image nor ever reaches a
snapshot (:func:`usable_boxes`), so a label for a missing or rejected image never blocks its
scientist (:func:`attached_rows`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cached_property, partial
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandera.typing import Series

from imgassets.core.drive import layout
from imgassets.core.drive.source_files import SourceFileError, read_source
from imgassets.core.frames import has_dtypes, merge_sorted, plain_values, typed_frame
from imgassets.core.images.inspect import OK
from imgassets.core.labels.class_map import ClassMapError, read_class_map
from imgassets.core.labels.formats.coco import coco_to_xywh, parse_coco
from imgassets.core.labels.formats.csv import CsvBox, csv_to_xywh, parse_box_csv
from imgassets.core.labels.formats.voc import VocFile, parse_voc, voc_to_xywh
from imgassets.core.labels.formats.yolo import parse_yolo_text
from imgassets.core.labels.yolo_sources import empty_files_attr, kept_empty_files, reusable_files, yolo_sources

LABEL_COLUMNS = [
    "image_sha256", "image_path", "image_ref", "label_file", "label_format", "line", "class_id", "class_name",
    "x_center", "y_center", "width", "height", "difficult", "truncated", "iscrowd", "class_map_file",
    "parse_error", "frame_error", "superseded_by", "source_conflict", "image_rejected", "label_sha256",
    "class_map_sha256",
]
XYWH = ["x_center", "y_center", "width", "height"]
"""The box's normalized coordinates, columns of the label table."""
LABEL_DTYPES = {
    "image_sha256": "string", "image_path": "string", "image_ref": "string", "label_file": "string",
    "label_format": "string", "line": "int64", "class_id": "Int64", "class_name": "string",
    "x_center": "float64", "y_center": "float64", "width": "float64", "height": "float64",
    "difficult": "Int64", "truncated": "Int64", "iscrowd": "Int64", "class_map_file": "string",
    "parse_error": "string", "frame_error": "string", "superseded_by": "string", "source_conflict": "string",
    "image_rejected": "string", "label_sha256": "string", "class_map_sha256": "string",
}


class LabelTableSchema(pa.DataFrameModel):
    """A valid label table: every row a parsed box with a known class and normalized xywh.

    Coordinates are each in [0, 1] (YOLO normalized xywh), and present on every box paired with an
    image (:meth:`coordinates_of_paired_boxes`; a box of a missing image may have none: the module
    docstring's rule); the box's extent against the image edges and its area are checked by
    :mod:`imgassets.core.labels.checks`, with a tolerance.
    """

    image_sha256: Series[pd.StringDtype] = pa.Field(nullable=True, str_matches=r"^[0-9a-f]{64}$")
    image_path: Series[pd.StringDtype] = pa.Field(nullable=True)
    image_ref: Series[pd.StringDtype] = pa.Field(nullable=True)
    label_file: Series[pd.StringDtype]
    label_format: Series[pd.StringDtype] = pa.Field(isin=[layout.YOLO, layout.VOC, layout.COCO, layout.CSV])
    line: Series[int] = pa.Field(ge=1)
    class_id: Series[pd.Int64Dtype] = pa.Field(ge=0)
    class_name: Series[pd.StringDtype] = pa.Field(nullable=True)
    x_center: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    y_center: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    width: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    height: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    difficult: Series[pd.Int64Dtype] = pa.Field(nullable=True, isin=[0, 1])
    truncated: Series[pd.Int64Dtype] = pa.Field(nullable=True, isin=[0, 1])
    iscrowd: Series[pd.Int64Dtype] = pa.Field(nullable=True, isin=[0, 1])
    class_map_file: Series[pd.StringDtype] = pa.Field(nullable=True)
    parse_error: Series[pd.StringDtype] = pa.Field(nullable=True, isin=[])
    frame_error: Series[pd.StringDtype] = pa.Field(nullable=True)
    superseded_by: Series[pd.StringDtype] = pa.Field(nullable=True)
    source_conflict: Series[pd.StringDtype] = pa.Field(nullable=True)
    image_rejected: Series[pd.StringDtype] = pa.Field(nullable=True)
    label_sha256: Series[pd.StringDtype] = pa.Field(nullable=True)
    class_map_sha256: Series[pd.StringDtype] = pa.Field(nullable=True)

    @pa.dataframe_check(error="a box paired with an image has no coordinates")
    @classmethod
    def coordinates_of_paired_boxes(cls, df: pd.DataFrame) -> pd.Series:
        """Every box paired with an image has all four coordinates (the row's index where not)."""
        paired = df["image_path"].notna()
        return ~paired | df[XYWH].notna().all(axis=1)

    class Config:
        strict = True
        coerce = True


def empty_label_table() -> pd.DataFrame:
    """A label table with the right columns and dtypes and no rows."""
    return pd.DataFrame(columns=LABEL_COLUMNS).astype(LABEL_DTYPES)


MAX_LABEL_BYTES = {layout.YOLO: 2**20, layout.VOC: 8 * 2**20, layout.CSV: 64 * 2**20, layout.COCO: 256 * 2**20}
"""Largest label file read, by format, in bytes; a larger one is one finding, unread. A YOLO file
holds one image's boxes (1 MiB is about 30,000); a VOC file one image's; a box CSV or COCO JSON may
describe a whole folder (COCO's own train2017 instances file is 448 MB: split such an export)."""


def _read(folder: Path, rel: str) -> tuple[bytes | None, str | None]:
    """The bytes of label file ``rel`` (:func:`imgassets.core.drive.source_files.read_source`, at most
    :data:`MAX_LABEL_BYTES` for its format), or None and why it was not read."""
    try:
        return read_source(folder, rel, max_bytes=MAX_LABEL_BYTES[layout.label_format(rel)]), None
    except SourceFileError as exc:
        return None, f"label file not read: {exc.reason}"


def _base_row(label_file: str, fmt: str, image_path: str | None, image_sha: str | None,
              image_ref: str | None = None) -> dict:
    """The columns every row of a label file shares: its paired image and that image's content hash."""
    return {"image_sha256": image_sha, "image_path": image_path, "image_ref": image_ref, "label_file": label_file,
            "label_format": fmt}


class _Context:
    """What the VOC, COCO and CSV parsers need: the scientist's folder and facts about its images
    (content hashes, sizes, EXIF orientations), each lookup built from the image index when first
    asked for. YOLO files do not use it: their paired image and its hash come with their sources
    (:mod:`imgassets.core.labels.yolo_sources`), so a run that parses only YOLO files builds no lookup
    over the whole index."""

    def __init__(self, folder: Path, index: pd.DataFrame) -> None:
        self.folder = folder
        self._index = index

    @cached_property
    def sha_of(self) -> dict[str, str]:
        return dict(zip(self._index["path"].tolist(), plain_values(self._index["sha256"]), strict=True))

    @cached_property
    def _images(self) -> pd.DataFrame:
        return self._index[(self._index["kind"] == layout.IMAGE).to_numpy(bool)]

    @cached_property
    def images(self) -> set[str]:
        return set(self._images["path"].tolist())

    @cached_property
    def size_of(self) -> dict[str, tuple[int, int]]:
        sized = self._images[self._images["width"].notna() & self._images["height"].notna()]
        return dict(zip(sized["path"].tolist(), zip(sized["width"].astype(int).tolist(),
                                                    sized["height"].astype(int).tolist(), strict=True), strict=True))

    def xywh(self, image_path: str | None, declared: tuple[int | None, int | None],
             convert: Callable[[int, int], tuple[float, float, float, float]]) -> dict:
        """The normalized xywh columns of a box: ``convert(width, height)`` by the displayed size of
        ``image_path``, else by the size its label file ``declared`` (VOC ``<size>``, COCO
        ``width``/``height``), else none (the box of a missing or rejected image: never used)."""
        width, height = (self.size_of.get(image_path) if image_path else None) or declared
        if not (width and height):
            return {}
        return dict(zip(XYWH, convert(width, height), strict=True))

    @cached_property
    def exif_of(self) -> dict[str, int | None]:
        return dict(zip(self._images["path"].tolist(), plain_values(self._images["exif_orientation"]), strict=True))

    def base(self, label_file: str, fmt: str, image_path: str | None, image_ref: str | None = None) -> dict:
        return _base_row(label_file, fmt, image_path, self.sha_of.get(image_path) if image_path else None, image_ref)

    def frame_error(self, image_path: str | None, declared: tuple[int, int]) -> str | None:
        """Why a declared (width, height) is not the displayed size of ``image_path``, or None."""
        actual = self.size_of.get(image_path) if image_path else None
        if not actual or not all(declared) or tuple(declared) == actual:
            return None
        if tuple(declared) == actual[::-1]:
            return (f"declares {declared[0]}x{declared[1]}, the un-rotated frame of an image displayed "
                    f"{actual[0]}x{actual[1]} (EXIF orientation {self.exif_of.get(image_path)}): boxes are likely rotated")
        return f"declares image size {declared[0]}x{declared[1]} but the image is {actual[0]}x{actual[1]}"


def _yolo_rows(folder: Path, label_file: str, image_path: str | None, image_sha: str | None, map_file: str | None,
               mapping: dict[int, str] | ClassMapError | None) -> list[dict]:
    base = _base_row(label_file, layout.YOLO, image_path, image_sha)  # the image and its hash come with the sources
    data, error = _read(folder, label_file)
    try:
        text = data.decode("utf-8-sig") if data is not None else None
    except UnicodeDecodeError as exc:
        text, error = None, f"cannot read label file as UTF-8 text: {exc}"
    if text is None:
        return [{**base, "line": 0, "class_map_file": map_file, "parse_error": error}]
    rows = []
    for row in parse_yolo_text(text):
        name = mapping.get(row.class_id) if isinstance(mapping, dict) and row.class_id is not None else None
        rows.append({**base, "line": row.line, "class_id": row.class_id, "class_name": name,
                     "x_center": row.x_center, "y_center": row.y_center, "width": row.width,
                     "height": row.height, "class_map_file": map_file, "parse_error": row.error})
    return rows


def _voc_rows(ctx: _Context, label_file: str, parsed: VocFile | str, voc_ids: dict[str, int]) -> list[dict]:
    if isinstance(parsed, str) or parsed.error:
        error = parsed if isinstance(parsed, str) else parsed.error
        return [{**ctx.base(label_file, layout.VOC, None), "line": 0, "parse_error": error}]
    image_path = next((c for c in layout.voc_image_candidates(label_file, parsed.filename) if c in ctx.images), None)
    base = ctx.base(label_file, layout.VOC, image_path, parsed.filename)
    frame_error = ctx.frame_error(image_path, (parsed.width, parsed.height))
    rows = []
    for box in parsed.boxes:
        row = {**base, "line": box.line, "class_name": box.name, "class_id": voc_ids.get(box.name),
               "difficult": box.difficult, "truncated": box.truncated, "class_map_file": label_file,
               "parse_error": box.error, "frame_error": frame_error}
        if box.error is None:
            row.update(ctx.xywh(image_path, (parsed.width, parsed.height), partial(voc_to_xywh, box)))
        rows.append(row)
    return rows


def _is_number(value: object) -> bool:
    """A finite JSON number (``True``/``False`` are not)."""
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


def _coco_rows(ctx: _Context, label_file: str) -> list[dict]:
    data, error = _read(ctx.folder, label_file)
    parsed = parse_coco(data) if data is not None else None
    if parsed is not None and not parsed.is_coco:
        return []
    if parsed is None or parsed.error:
        return [{**ctx.base(label_file, layout.COCO, None), "line": 0, "parse_error": error or parsed.error}]
    json_dir = str(PurePosixPath(label_file).parent)
    resolved = {image_id: layout.resolve_image_reference(str(info.get("file_name", "")), json_dir, ctx.images)
                for image_id, info in parsed.images.items()}
    rows = []
    for number, ann in enumerate(parsed.annotations, start=1):
        image_id = ann.get("image_id") if isinstance(ann, dict) and _is_int(ann.get("image_id")) else None
        info = parsed.images.get(image_id) if image_id is not None else None
        fault = _annotation_fault(ann, info)
        image_path, path_error = resolved.get(image_id, (None, None)) if info else (None, None)
        base = ctx.base(label_file, layout.COCO, image_path, str(info.get("file_name")) if info else None)
        row = {**base, "line": number, "class_map_file": label_file}
        if fault:
            rows.append({**row, "parse_error": fault})
            continue
        if info is None:
            rows.append({**row, "parse_error": f"annotation {number} refers to no image in 'images'"})
            continue
        category = ann.get("category_id")
        row.update(class_id=category, class_name=parsed.categories.get(category), iscrowd=ann.get("iscrowd"),
                   frame_error=ctx.frame_error(image_path, (info.get("width") or 0, info.get("height") or 0)))
        if path_error:
            row["parse_error"] = path_error
        else:
            row.update(ctx.xywh(image_path, (info.get("width"), info.get("height")), partial(coco_to_xywh, ann["bbox"])))
        rows.append(row)
    return rows


def _csv_rows(ctx: _Context, label_file: str, boxes: list[CsvBox], name_ids: dict[str, int]) -> list[dict]:
    csv_dir = str(PurePosixPath(label_file).parent)
    rows = []
    for box in boxes:
        image_path, path_error = layout.resolve_image_reference(box.image, csv_dir, ctx.images)
        row = {**ctx.base(label_file, layout.CSV, image_path, box.image), "line": box.line, "class_name": box.label,
               "class_id": name_ids.get(box.label), "class_map_file": label_file, "parse_error": box.error or path_error}
        if row["parse_error"] is None:
            row.update(ctx.xywh(image_path, (None, None), partial(csv_to_xywh, box)))
        rows.append(row)
    return rows


def _parse_named(folder: Path, label_file: str) -> VocFile | list[CsvBox] | str | None:
    """Parsed VOC or CSV file; a string is a read error; ``None`` a CSV that is not a box table."""
    data, error = _read(folder, label_file)
    if data is None:
        return error
    return parse_voc(data) if layout.label_format(label_file) == layout.VOC else parse_box_csv(data)


SOURCE_TOLERANCE = 0.01
"""Two label files agree on a box when class names match and each normalized coordinate is within
this (1% of the image: VOC's 1-based and CSV's 0-based corners of the same numbers differ by 1 px)."""


def _box_signature(group: pd.DataFrame) -> list[tuple]:
    return sorted(zip(group["class_name"].astype(str), group["x_center"], group["y_center"], group["width"],
                      group["height"], strict=True))


def _same_boxes(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(
        p[0] == q[0] and all(abs(x - y) <= SOURCE_TOLERANCE for x, y in zip(p[1:], q[1:], strict=True))
        for p, q in zip(a, b, strict=True))


def usable_boxes(table: pd.DataFrame) -> np.ndarray:
    """The rows of ``table`` (a label table) that are boxes a snapshot keeps (a boolean array):
    parsed, paired to an image that was not rejected, with coordinates, and not superseded by
    another label file with the same boxes."""
    coordinates = table[XYWH].notna().all(axis=1)
    return (table["parse_error"].isna() & table["image_path"].notna() & table["superseded_by"].isna()
            & table["image_rejected"].isna() & coordinates).to_numpy(bool)


def attached_rows(table: pd.DataFrame) -> np.ndarray:
    """The rows of ``table`` (a label table) that the blocking checks judge (a boolean array):
    all but the boxes of rejected images, which are left out with the image's reason."""
    return table["image_rejected"].isna().to_numpy(bool)


def mark_rejected_images(table: pd.DataFrame, index: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``image_rejected`` set, on every row whose image ``index`` (the image index)
    rejected, to the index's ``<status>: <reason>`` (null on every other row): the one place
    the image's verdict reaches its labels, for every format, reused rows too. In place."""
    rejected = index[((index["kind"] == layout.IMAGE) & (index["status"] != OK)).to_numpy(bool)]
    reasons = pd.Series((rejected["status"] + ": " + rejected["reason"].fillna("")).to_numpy(object),
                        index=rejected["path"].to_numpy(object), dtype="string")
    table["image_rejected"] = table["image_path"].map(reasons).astype("string") if len(reasons) else \
        pd.array([pd.NA] * len(table), dtype="string")
    return table


def reconcile_sources(table: pd.DataFrame) -> pd.DataFrame:
    """Images annotated by more than one label file: when every file gives the same boxes, the
    first file (by path) is kept and the others' rows are marked ``superseded_by``; when they
    disagree, every row of the image gets ``source_conflict`` (a blocking finding)."""
    usable = (table["parse_error"].isna() & table["image_path"].notna() & table["image_rejected"].isna()).to_numpy(bool)
    first_file: dict[str, str] = {}
    multiple = {image for image, label_file in zip(table["image_path"].to_numpy(object)[usable],
                                                   table["label_file"].to_numpy(object)[usable], strict=True)
                if first_file.setdefault(image, label_file) != label_file}
    if not multiple:  # the usual case: one label file per image
        return table
    shared = table.loc[usable & table["image_path"].isin(multiple).to_numpy(bool)]
    for image_path, group in shared.groupby("image_path"):
        files = sorted(group["label_file"].unique())
        signatures = {f: _box_signature(group[group["label_file"] == f]) for f in files}
        if all(_same_boxes(sig, signatures[files[0]]) for sig in signatures.values()):
            table.loc[group.index[group["label_file"] != files[0]], "superseded_by"] = files[0]
        else:
            counts = ", ".join(f"{f} ({len(signatures[f])} boxes)" for f in files)
            table.loc[table["image_path"] == image_path, "source_conflict"] = (
                f"annotated by {len(files)} label files that disagree: {counts}; keep one")
    return table


def build_label_table(folder: str | Path, index: pd.DataFrame, previous: pd.DataFrame | None = None) -> pd.DataFrame:
    """Read every label file listed in ``index`` (the scientist's image index) under ``folder``:
    YOLO txt, Pascal VOC XML, COCO JSON and box CSV (see their modules), into one table, sorted by
    ``label_file`` and ``line``.

    YOLO files are paired with images by the rule of :func:`imgassets.core.drive.layout.pair_labels`
    (:func:`imgassets.core.drive.layout.pair_labels`) and named by the nearest class
    map; VOC files by their ``<filename>``; COCO by ``file_name``. Boxes are in the image's
    displayed frame. Never raises for bad content: problems become rows with ``parse_error`` (or
    ``frame_error``).

    ``previous``: the label table of an earlier run on the same folder. The rows of a YOLO file are
    taken from it, not parsed again, when its sources are unchanged: the same label file hash, the
    same paired image and image hash, the same class map file and hash
    (:func:`imgassets.core.labels.yolo_sources.reusable_files`, column by column over the whole folder).
    The kept rows and the few new ones are merged by binary search, not sorted again. A YOLO file
    with no box lines has no rows; the table lists it with its content hash in its ``attrs``
    (:data:`imgassets.core.labels.yolo_sources.EMPTY_YOLO_FILES`), so it is not read again while its
    hash is unchanged. VOC, COCO and CSV files are always parsed (their class ids depend on every
    file of the folder); a ``previous`` that holds a class-map error row is not used.
    """
    folder = Path(folder)
    ctx = _Context(folder, index)
    if previous is not None and not set(LABEL_COLUMNS) <= set(previous.columns):
        previous = None  # a table of other columns: every file is read again
    sources = yolo_sources(index)
    reusable = reusable_files(sources, previous)
    reused = pc.filter(sources.label_file, pyarrow.array(reusable, pyarrow.bool_()))
    rows: list[dict] = []
    formats = {f: layout.label_format(f) for f in sources.other_label_files}
    named = {f: _parse_named(folder, f) for f, fmt in formats.items() if fmt in (layout.VOC, layout.CSV)}
    names = {b.name for p in named.values() if isinstance(p, VocFile) for b in p.boxes if b.name}
    names |= {b.label for p in named.values() if isinstance(p, list) for b in p if b.label}
    name_ids = {name: i for i, name in enumerate(sorted(names))}
    for label_file, fmt in formats.items():
        if fmt == layout.VOC:
            rows += _voc_rows(ctx, label_file, named[label_file], name_ids)
        elif fmt == layout.CSV:
            parsed = named[label_file]
            if isinstance(parsed, str):
                rows.append({**ctx.base(label_file, layout.CSV, None), "line": 0, "parse_error": parsed})
            elif parsed is not None:
                rows += _csv_rows(ctx, label_file, parsed, name_ids)
        else:
            rows += _coco_rows(ctx, label_file)
    for row in rows:  # the sources' content hashes (VOC, COCO and CSV files are parsed every run)
        row["label_sha256"], row["class_map_sha256"] = ctx.sha_of.get(row["label_file"]), ctx.sha_of.get(row.get("class_map_file"))
    class_maps: dict[str, dict[int, str] | ClassMapError] = {}
    empty = kept_empty_files(sources, reusable, previous)
    for label_file, label_sha, image_path, image_sha, map_file, map_sha in sources.rows(~reusable):
        mapping: dict[int, str] | ClassMapError | None = None
        if map_file is not None:
            if map_file not in class_maps:
                try:
                    class_maps[map_file] = read_class_map(folder, map_file)
                except ClassMapError as exc:
                    class_maps[map_file] = exc
                    rows.append({"label_file": map_file, "label_format": layout.YOLO, "line": 0, "class_map_file": map_file,
                                 "parse_error": f"class map cannot be used: {exc}", "label_sha256": map_sha,
                                 "class_map_sha256": map_sha})
            mapping = class_maps[map_file]
        file_rows = _yolo_rows(folder, label_file, image_path, image_sha, map_file, mapping)
        if not file_rows and label_sha is not None:  # no box lines: nothing to keep but the hash
            empty[label_file] = label_sha
        for row in file_rows:
            row["label_sha256"], row["class_map_sha256"] = label_sha, map_sha
            rows.append(row)
    fresh = typed_frame(rows, LABEL_DTYPES).sort_values(["label_file", "line"], kind="stable", ignore_index=True) \
        if rows else None
    kept = None
    if len(reused):
        if not has_dtypes(previous, LABEL_DTYPES):
            previous = previous[LABEL_COLUMNS].astype(LABEL_DTYPES)
        kept = np.flatnonzero(pc.is_in(pyarrow.array(previous["label_file"], pyarrow.string()), value_set=reused)
                              .to_numpy(zero_copy_only=False))
    if fresh is None and kept is None:
        table = empty_label_table()
    elif kept is None:
        table = fresh
    else:  # reused rows (sorted by label_file: reusable_files checked it) and fresh rows, in one take
        table = merge_sorted(previous, fresh if fresh is not None else empty_label_table(), "label_file", kept)
        unset = pd.array([pd.NA] * len(table), dtype="string")  # reconciled again below
        table["superseded_by"], table["source_conflict"] = unset, unset.copy()
    table.attrs = empty_files_attr(empty)
    return reconcile_sources(mark_rejected_images(table, index))  # reused rows kept their source hashes: their sources are unchanged
