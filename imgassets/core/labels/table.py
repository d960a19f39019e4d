"""The label table: one row per box line of every label file in a scientist's folder.

Columns (declared once, by :class:`LabelTableSchema`; :data:`LABEL_COLUMNS`, :data:`LABEL_DTYPES`):
``image_sha256`` and ``image_path`` of the annotated image (null for a label file with no image),
``image_ref`` (the image name the label file gives: VOC, COCO, CSV, CVAT, Label Studio),
``label_file``, ``label_format`` (:data:`imgassets.core.drive.layout.FORMATS`) and ``line`` (1-based;
0 for a whole-file problem), ``class_id``, ``class_name`` (null when the id is not in the class map),
``x_center``, ``y_center``, ``width``, ``height`` (normalized xywh in the displayed frame, null when
the line did not parse), ``shape`` (box, polygon or oriented_box: what was drawn) and ``polygon``
(its normalized vertices ``[x1, y1, x2, y2, ...]``, null for a plain box; the xywh columns then hold
its axis-aligned bounding box), ``difficult``/``truncated`` (VOC, DOTA), ``iscrowd`` (COCO) and
``occluded`` (CVAT) flags, ``class_map_file`` (the class map used: data.yaml/classes.txt for YOLO,
the file itself for the formats that name their classes), ``parse_error`` (null when the line
parsed) and ``frame_error`` (the label file declares an image size that is not the image's
displayed size, e.g. the un-rotated frame of an EXIF-rotated photo),
``superseded_by`` (another label file gives this image the same boxes and is used instead),
``source_conflict`` (label files disagree about this image), ``image_rejected`` (the image index
rejected the annotated image: its reason; the row is left out, see below), and the content hashes of the row's
sources from the image index, ``label_sha256`` (the label file) and ``class_map_sha256`` (its class
map): the label table of a later run reuses the rows of a YOLO file whose sources are unchanged
(:func:`build_label_table`'s ``previous``); ``provenance`` (``accepted``, ``corrected`` or ``added``:
the box against the pre-annotations handed out for its image, :mod:`imgassets.core.labeling.provenance`;
null for an image never pre-labelled).
A class-map file that cannot be used appears once as a row with ``line`` 0 and its ``parse_error``.

Rows that did not parse are kept so that the asset checks can name the file and line; only rows
that pass every check reach a snapshot. :class:`LabelTableSchema` is the pandera model of a *valid*
table.

Every format's module parses its files into :class:`~imgassets.core.labels.formats.record.BoxRecord`
values; one function turns records into rows (:func:`record_rows`), so one rule pairs a box with
its image and sizes it, whatever the format: a box is normalized by its image's displayed size; a
box whose image does not exist (no ``image_path``) is a warning naming the file and line (the size
the file declares, if any, still normalizes it; a format that declares none, such as CSV, leaves it
without coordinates); a box whose image was rejected gets the image's reason in ``image_rejected``
(:func:`mark_rejected_images`). Neither kind of box is checked against an image nor ever reaches a
snapshot (:func:`usable_boxes`), so a label for a missing or rejected image never blocks its
scientist (:func:`attached_rows`).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

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
from imgassets.core.labels.formats.coco import is_coco, parse_coco
from imgassets.core.labels.formats.csv import parse_box_csv
from imgassets.core.labels.formats.cvat import is_cvat, parse_cvat
from imgassets.core.labels.formats.dota import parse_dota
from imgassets.core.labels.formats.label_studio import is_label_studio, parse_label_studio
from imgassets.core.labels.formats.record import NORMALIZED, SHAPES, BoxRecord, file_error, normalized_xywh
from imgassets.core.labels.formats.voc import parse_voc
from imgassets.core.labels.formats.yolo import parse_yolo_text
from imgassets.core.labels.yolo_sources import empty_files_attr, kept_empty_files, reusable_files, yolo_sources

BACKGROUND_ENTRIES = "background_entries"
"""Key of ``DataFrame.attrs`` (kept through Parquet) under which a label table lists, as JSON text,
the images a VOC, COCO, CVAT or Label Studio file names with no shape (an ``empty`` record):
labelled background, not unlabelled (:func:`background_entries`)."""

PRELABELLED = "prelabelled_images"
"""Key of a label table's ``attrs``: JSON text of ``{image_path: {"model_id", "rejected"}}`` for each
image whose labels were compared with the pre-annotations handed out for it
(:func:`imgassets.core.labeling.provenance.with_provenance`; :func:`prelabelled_images`)."""

XYWH = ["x_center", "y_center", "width", "height"]
"""The box's normalized coordinates, columns of the label table."""


class LabelTableSchema(pa.DataFrameModel):
    """The label table, declared once: its columns in order, their dtypes, and what a *valid* table
    holds: every row a parsed box with a known class and normalized xywh.

    Coordinates are each in [0, 1] (YOLO normalized xywh), and present on every box paired with an
    image (:meth:`coordinates_of_paired_boxes`; a box of a missing image may have none: the module
    docstring's rule); the box's extent against the image edges and its area are checked by
    :mod:`imgassets.core.labels.checks`, with a tolerance.
    """

    image_sha256: Series[pd.StringDtype] = pa.Field(nullable=True, str_matches=r"^[0-9a-f]{64}$")
    image_path: Series[pd.StringDtype] = pa.Field(nullable=True)
    image_ref: Series[pd.StringDtype] = pa.Field(nullable=True)
    label_file: Series[pd.StringDtype]
    label_format: Series[pd.StringDtype] = pa.Field(isin=list(layout.FORMATS))
    line: Series[int] = pa.Field(ge=1)
    class_id: Series[pd.Int64Dtype] = pa.Field(ge=0)
    class_name: Series[pd.StringDtype] = pa.Field(nullable=True)
    x_center: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    y_center: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    width: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    height: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    shape: Series[pd.StringDtype] = pa.Field(nullable=True, isin=list(SHAPES))
    polygon: Series[object] = pa.Field(nullable=True)
    difficult: Series[pd.Int64Dtype] = pa.Field(nullable=True, isin=[0, 1])
    truncated: Series[pd.Int64Dtype] = pa.Field(nullable=True, isin=[0, 1])
    iscrowd: Series[pd.Int64Dtype] = pa.Field(nullable=True, isin=[0, 1])
    occluded: Series[pd.Int64Dtype] = pa.Field(nullable=True, isin=[0, 1])
    class_map_file: Series[pd.StringDtype] = pa.Field(nullable=True)
    parse_error: Series[pd.StringDtype] = pa.Field(nullable=True, isin=[])
    frame_error: Series[pd.StringDtype] = pa.Field(nullable=True)
    superseded_by: Series[pd.StringDtype] = pa.Field(nullable=True)
    source_conflict: Series[pd.StringDtype] = pa.Field(nullable=True)
    image_rejected: Series[pd.StringDtype] = pa.Field(nullable=True)
    label_sha256: Series[pd.StringDtype] = pa.Field(nullable=True)
    class_map_sha256: Series[pd.StringDtype] = pa.Field(nullable=True)
    provenance: Series[pd.StringDtype] = pa.Field(nullable=True, isin=["accepted", "corrected", "added"])

    @pa.dataframe_check(error="a box paired with an image has no coordinates")
    @classmethod
    def coordinates_of_paired_boxes(cls, df: pd.DataFrame) -> pd.Series:
        """Every box paired with an image has all four coordinates (the row's index where not)."""
        paired = df["image_path"].notna()
        return ~paired | df[XYWH].notna().all(axis=1)

    class Config:
        strict = True
        coerce = True


LABEL_DTYPES = {name: str(column.dtype.type) for name, column in LabelTableSchema.to_schema().columns.items()}
"""The label table's columns, in order, and their pandas dtypes (from :class:`LabelTableSchema`)."""
LABEL_COLUMNS = list(LABEL_DTYPES)


def empty_label_table() -> pd.DataFrame:
    """A label table with the right columns and dtypes and no rows."""
    return typed_frame([], LABEL_DTYPES)


MAX_LABEL_BYTES = {layout.YOLO: 2**20, layout.DOTA: 2**20, layout.VOC: 8 * 2**20, layout.CSV: 64 * 2**20,
                   layout.COCO: 64 * 2**20}
"""Largest label file read, by format (:func:`imgassets.core.drive.layout.label_format`: by
extension, so a CVAT XML file counts as VOC, a Label Studio JSON as COCO), in bytes; a larger one is
one finding, unread. A YOLO or DOTA file holds one image's boxes (1 MiB is about 30,000); a VOC file
one image's; a box CSV, COCO JSON, CVAT XML or Label Studio JSON may describe a whole folder. A JSON
file is parsed whole, and Python's objects take about 15 times its size in memory: 64 MiB (about
1 GB parsed, COCO's val2017 instances file is 25 MB) keeps a step within a small pod's memory;
split a larger export (COCO's own train2017 instances file is 448 MB) into one file per folder."""


def _read(folder: Path, rel: str) -> tuple[bytes | None, str | None]:
    """The bytes of label file ``rel`` (:func:`imgassets.core.drive.source_files.read_source`, at most
    :data:`MAX_LABEL_BYTES` for its format), or None and why it was not read."""
    try:
        return read_source(folder, rel, max_bytes=MAX_LABEL_BYTES[layout.label_format(rel)]), None
    except SourceFileError as exc:
        return None, f"label file not read: {exc.reason}"


def _text(folder: Path, rel: str) -> tuple[str | None, str | None]:
    """The UTF-8 text (BOM dropped) of label file ``rel``, or None and why it was not read."""
    data, error = _read(folder, rel)
    if data is None:
        return None, error
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, f"cannot read label file as UTF-8 text: {exc}"


class _Context:
    """What turning records into rows needs: the scientist's folder and facts about its images
    (content hashes, sizes, EXIF orientations, names), each lookup built from the image index when
    first asked for. YOLO files do not use the image lookups: their paired image and its hash come
    with their sources (:mod:`imgassets.core.labels.yolo_sources`), so a run that parses only YOLO
    files builds no lookup over the whole index."""

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
    def by_name(self) -> dict[str, list[str]]:
        """Image paths by file name."""
        found: dict[str, list[str]] = {}
        for path in sorted(self.images):
            found.setdefault(path.rpartition("/")[2], []).append(path)
        return found

    @cached_property
    def size_of(self) -> dict[str, tuple[int, int]]:
        sized = self._images[self._images["width"].notna() & self._images["height"].notna()]
        return dict(zip(sized["path"].tolist(), zip(sized["width"].astype(int).tolist(),
                                                    sized["height"].astype(int).tolist(), strict=True), strict=True))

    @cached_property
    def exif_of(self) -> dict[str, int | None]:
        return dict(zip(self._images["path"].tolist(), plain_values(self._images["exif_orientation"]), strict=True))

    def resolve(self, record: BoxRecord) -> tuple[str | None, str | None]:
        """(image path, error) of the image ``record`` names, inside the scientist's folder only: its
        ``image_candidates`` in order, then its ``image_ref`` beside the label file and at the top
        (:func:`imgassets.core.drive.layout.resolve_image_reference`, which refuses a name leaving the
        folder), then the one image of the folder with that file name (an export moved to another
        folder than its images)."""
        found = next((c for c in record.image_candidates if c in self.images), None)
        if found or not record.image_ref:
            return found, None
        path, error = layout.resolve_image_reference(record.image_ref, posixpath.dirname(record.label_file), self.images)
        if path or error:
            return path, error
        for name in dict.fromkeys(c.rpartition("/")[2] for c in (record.image_ref.replace("\\", "/"),
                                                                  *record.image_candidates)):
            if len(self.by_name.get(name, ())) == 1:
                return self.by_name[name][0], None
        return None, None

    def frame_error(self, image_path: str | None, declared: tuple[int, int] | None) -> str | None:
        """Why a declared (width, height) is not the displayed size of ``image_path``, or None."""
        actual = self.size_of.get(image_path) if image_path else None
        if not actual or not declared or tuple(declared) == actual:
            return None
        if tuple(declared) == actual[::-1]:
            return (f"declares {declared[0]}x{declared[1]}, the un-rotated frame of an image displayed "
                    f"{actual[0]}x{actual[1]} (EXIF orientation {self.exif_of.get(image_path)}): boxes are likely rotated")
        return f"declares image size {declared[0]}x{declared[1]} but the image is {actual[0]}x{actual[1]}"


def background_entries(table: pd.DataFrame) -> set[str]:
    """The image paths a label table records under :data:`BACKGROUND_ENTRIES` (empty when none)."""
    try:
        listed = json.loads(table.attrs.get(BACKGROUND_ENTRIES) or "[]")
    except (TypeError, ValueError):
        return set()
    return {p for p in listed if isinstance(p, str)} if isinstance(listed, list) else set()


def prelabelled_images(table: pd.DataFrame) -> dict[str, dict]:
    """``{image_path: {"model_id", "rejected"}}`` of a label table (:data:`PRELABELLED`; empty when none)."""
    try:
        found = json.loads(table.attrs.get(PRELABELLED) or "{}")
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def record_rows(records: Iterable[BoxRecord], ctx: _Context | None, class_names: dict[int, str] | None = None,
                name_ids: dict[str, int] | None = None, class_map_file: str | None = None) -> list[dict]:
    """Label table rows of ``records``, the one place every format's boxes are paired and sized:
    the image a record names is resolved (:meth:`_Context.resolve`; a record that comes paired, as
    YOLO's and DOTA's do, keeps its image), its declared size compared with the image's displayed
    size (``frame_error``), and its box and polygon normalized
    (:func:`~imgassets.core.labels.formats.record.normalized_xywh`): normalized coordinates as they
    are, pixels by the image's displayed size, else by the size the file declares, else (the image
    is missing and the format declares no size) not at all.

    ``class_names``: id -> name (a YOLO file's class map); ``name_ids``: name -> id (the formats that
    name their classes); ``class_map_file``: the file of ``class_names`` (with no ``class_names``, the
    label file itself names the classes).
    ``ctx`` may be None when every record is paired and normalized (YOLO)."""
    rows = []
    for r in records:
        image_path, path_error = (r.image_path, None) if r.image_path is not None or ctx is None else ctx.resolve(r)
        declared = r.declared_size
        row = {"image_sha256": ctx.sha_of.get(image_path) if ctx is not None and image_path else None,
               "image_path": image_path, "image_ref": r.image_ref, "label_file": r.label_file,
               "label_format": r.label_format, "line": r.line,
               "class_map_file": class_map_file if class_names is not None else r.label_file,
               "parse_error": r.error or path_error, "shape": r.shape if r.box is not None else None,
               "class_id": r.class_id if r.class_id is not None or name_ids is None else name_ids.get(r.class_name),
               "class_name": r.class_name if r.class_name is not None or class_names is None
               else class_names.get(r.class_id)}
        if ctx is not None and declared:
            row["frame_error"] = ctx.frame_error(image_path, declared)
        if r.flags:
            row.update(r.flags)
        if r.box is not None and r.error is None and path_error is None:
            if r.box_format in NORMALIZED:
                width = height = 1
            else:
                width, height = (ctx.size_of.get(image_path) if image_path else None) or declared or (None, None)
            if width and height:
                row.update(zip(XYWH, normalized_xywh(r.box, r.box_format, width, height), strict=True))
                if r.polygon is not None:
                    row["polygon"] = r.polygon if r.box_format in NORMALIZED else tuple(
                        v / (width if i % 2 == 0 else height) for i, v in enumerate(r.polygon))
        rows.append(row)
    return rows


def _yolo_rows(folder: Path, label_file: str, image_path: str | None, map_file: str | None,
               mapping: dict[int, str] | ClassMapError | None) -> list[dict]:
    """The rows of one YOLO file (its image paired by its sources), named by its class map."""
    text, error = _text(folder, label_file)
    if text is None:
        records = [file_error(label_file, layout.YOLO, error, image_path=image_path)]
    else:
        records = parse_yolo_text(text, label_file, image_path)
    return record_rows(records, None, mapping if isinstance(mapping, dict) else {}, class_map_file=map_file)


def _parsed_or_finding(label_file: str, ctx: _Context) -> list[BoxRecord]:
    """:func:`parse_label_file`, or, should a parser meet a shape of document it does not expect, one
    record naming the file and the error: one file never fails its scientist's run."""
    try:
        return parse_label_file(label_file, ctx)
    except Exception as exc:  # noqa: BLE001 -- any parser fault becomes this file's finding
        fmt = layout.label_format(label_file)
        return [file_error(label_file, fmt, f"could not be read as {layout.FORMAT_FAMILIES[fmt]}: "
                                            f"{type(exc).__name__}: {exc}")]


def parse_label_file(label_file: str, ctx: _Context) -> list[BoxRecord]:
    """The box records of one label file other than YOLO txt, by its format: XML is CVAT for images
    when its root is ``<annotations>``, else Pascal VOC; JSON is COCO or Label Studio by its shape (a
    JSON document that is neither gives no records: not a label file); CSV gives none unless its
    header is a box table's; a ``labelTxt/`` text file is DOTA. A file that cannot be read is one
    record with ``line`` 0 and the reason."""
    folder, fmt = ctx.folder, layout.label_format(label_file)
    if fmt == layout.DOTA:
        text, error = _text(folder, label_file)
        image = next((c for c in layout.dota_image_candidates(label_file) if c in ctx.images), None)
        return parse_dota(text, label_file, image) if text is not None else [file_error(label_file, fmt, error)]
    data, error = _read(folder, label_file)
    if data is None:
        return [file_error(label_file, fmt, error)]
    if fmt == layout.VOC:
        return parse_cvat(data, label_file) if is_cvat(data) else parse_voc(data, label_file)
    if fmt == layout.CSV:
        return parse_box_csv(data, label_file) or []
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [file_error(label_file, layout.COCO, f"not valid UTF-8 JSON: {exc}")]
    except RecursionError:
        return [file_error(label_file, layout.COCO, "JSON nested deeper than Python's parser allows: not a label "
                                                     "file any tool exports")]
    if is_coco(doc):
        return parse_coco(doc, label_file)
    return parse_label_studio(doc, label_file) if is_label_studio(doc) else []


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
    YOLO txt (boxes, polygons, oriented boxes), DOTA text, Pascal VOC and CVAT XML, COCO and Label
    Studio JSON and box CSV (one module each in :mod:`imgassets.core.labels.formats`), into one
    table, sorted by ``label_file`` and ``line``.

    YOLO files are paired with images by the rule of :func:`imgassets.core.drive.layout.pair_labels`
    and named by the nearest class map; DOTA files by their stem; the others by the image name
    they give (:meth:`_Context.resolve`). The formats that name their classes get class ids by the
    sorted names of the folder. Boxes are in the image's displayed frame (:func:`record_rows`).
    Never raises for bad content: problems become rows with ``parse_error`` (or ``frame_error``).

    ``previous``: the label table of an earlier run on the same folder. The rows of a YOLO file are
    taken from it, not parsed again, when its sources are unchanged: the same label file hash, the
    same paired image and image hash, the same class map file and hash
    (:func:`imgassets.core.labels.yolo_sources.reusable_files`, column by column over the whole folder).
    The kept rows and the few new ones are merged by binary search, not sorted again. A YOLO file
    with no box lines has no rows; the table lists it with its content hash in its ``attrs``
    (:data:`imgassets.core.labels.yolo_sources.EMPTY_YOLO_FILES`), so it is not read again while its
    hash is unchanged. Files in the other formats are always parsed (their class ids depend on every
    file of the folder); a ``previous`` that holds a class-map error row is not used.
    """
    folder = Path(folder)
    ctx = _Context(folder, index)
    if previous is not None and not set(LABEL_COLUMNS) <= set(previous.columns):
        previous = None  # a table of other columns: every file is read again
    sources = yolo_sources(index)
    reusable = reusable_files(sources, previous)
    reused = pc.filter(sources.label_file, pyarrow.array(reusable, pyarrow.bool_()))
    parsed = {f: _parsed_or_finding(f, ctx) for f in sources.other_label_files}
    background = sorted({path for records in parsed.values() for r in records if r.empty
                         for path in [r.image_path or ctx.resolve(r)[0]] if path})
    parsed = {f: [r for r in records if not r.empty] for f, records in parsed.items()}
    names = {r.class_name for records in parsed.values() for r in records if r.class_id is None and r.class_name}
    name_ids = {name: i for i, name in enumerate(sorted(names))}
    rows = [row for records in parsed.values() for row in record_rows(records, ctx, name_ids=name_ids)]
    for row in rows:  # the sources' content hashes (these formats are parsed every run)
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
        file_rows = _yolo_rows(folder, label_file, image_path, map_file, mapping)
        if not file_rows and label_sha is not None:  # no box lines: nothing to keep but the hash
            empty[label_file] = label_sha
        for row in file_rows:  # the image and its hash come with the sources
            row["image_sha256"], row["label_sha256"], row["class_map_sha256"] = image_sha, label_sha, map_sha
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
    table.attrs = {**empty_files_attr(empty), BACKGROUND_ENTRIES: json.dumps(background)}
    return reconcile_sources(mark_rejected_images(table, index))  # reused rows kept their source hashes: their sources are unchanged
