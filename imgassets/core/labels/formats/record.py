"""The one record every label format parses into: :class:`BoxRecord`.

Each module of this package reads the files of one format and gives a list of box records; the
label table (:mod:`imgassets.core.labels.table`) does the rest once for every format: pairing a box
with its image, the "image size unknown" rule, the declared-frame check, normalisation to YOLO's
normalized xywh, and class ids for formats that name their classes (as FiftyOne's per-format
modules each give ``Detection`` objects: ``COCOObject.to_detection``).

A record keeps its box in the form its format writes (``box_format``, one of :data:`BOX_FORMATS`),
so that converting it to normalized xywh (:func:`normalized_xywh`) is the format's own arithmetic,
to the last bit (a snapshot id hashes the values): :data:`YOLO_XYWH` normalized center and size,
:data:`NORMALIZED_XYXY` normalized corners, :data:`PIXEL_XYXY` pixel corners (0-based, continuous,
from the image's top-left corner), :data:`VOC_XYXY` VOC's 1-based pixel corners and
:data:`COCO_XYWH` COCO's pixel top-left corner and size. ``polygon`` holds the flat
``(x1, y1, x2, y2, ...)`` vertices of a polygon or oriented box, normalized when the box format is,
else in pixels; its ``box`` is then the polygon's axis-aligned bounding box in corners
(:func:`polygon_bbox`, Ultralytics' ``segments2boxes``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

YOLO_XYWH = "yolo_xywh"
NORMALIZED_XYXY = "normalized_xyxy"
PIXEL_XYXY = "pixel_xyxy"
VOC_XYXY = "voc_xyxy"
COCO_XYWH = "coco_xywh"
BOX_FORMATS = (YOLO_XYWH, NORMALIZED_XYXY, PIXEL_XYXY, VOC_XYXY, COCO_XYWH)
NORMALIZED = (YOLO_XYWH, NORMALIZED_XYXY)
"""The box formats already normalized: they need no image size."""

BOX = "box"
POLYGON = "polygon"
ORIENTED_BOX = "oriented_box"
SHAPES = (BOX, POLYGON, ORIENTED_BOX)
"""What a record's annotation was drawn as: an axis-aligned bounding box, a polygon (segmentation)
or an oriented box (four corners, e.g. YOLO OBB, DOTA, a rotated CVAT or Label Studio box)."""


@dataclass(slots=True)
class BoxRecord:
    """One annotation of one label file, as its format wrote it, before pairing and normalisation.

    ``label_file`` (relative to the scientist's folder), ``label_format`` (a
    :mod:`imgassets.core.drive.layout` format name) and ``line`` (1-based position: the line of a text
    file, the annotation's position in a JSON list; 0 for a whole-file problem) say where it is.
    ``image_path``: the image it annotates when the format pairs by file name (YOLO, DOTA); else
    ``image_ref``, the image name the file gives, resolved by the label table inside the scientist's
    folder after the paths of ``image_candidates`` (a format's own places, e.g. VOC's
    ``JPEGImages``). ``declared_size``: ``(width, height)`` in pixels the file declares for the
    image (VOC ``<size>``, COCO, CVAT, Label Studio ``original_width``), compared with the real
    image. ``class_id`` (YOLO, COCO) and/or ``class_name``; ``box``/``box_format``/``polygon`` as in
    the module docstring; ``shape`` one of :data:`SHAPES`; ``flags``: label table columns such as
    ``{"difficult": 1}`` (VOC, DOTA), ``{"iscrowd": 0}`` (COCO), ``{"occluded": 1}`` (CVAT).
    ``error``: why the annotation cannot give a box (then coordinates may be missing); it becomes
    the row's ``parse_error``. ``empty``: not an annotation but an image entry with no shape (a VOC
    file without ``<object>``, a COCO image without annotations, a CVAT ``<image>`` without shapes, a
    Label Studio task annotated with none): the image is labelled background
    (:mod:`imgassets.core.labels.unlabelled`); it gives no row. Mutable (slots, no freezing): a format module fills a record field by
    field as it reads, once per box of a 100,000-file folder.
    """

    label_file: str
    label_format: str
    line: int
    class_id: int | None = None
    class_name: str | None = None
    box: tuple[float, float, float, float] | None = None
    box_format: str = PIXEL_XYXY
    polygon: tuple[float, ...] | None = None
    shape: str = BOX
    image_path: str | None = None
    image_ref: str | None = None
    declared_size: tuple[int, int] | None = None
    image_candidates: tuple[str, ...] = ()
    flags: dict[str, int | None] | None = None
    error: str | None = None
    empty: bool = False


def file_error(label_file: str, label_format: str, error: str, **fields: object) -> BoxRecord:
    """The record of a whole-file problem (``line`` 0): the file cannot be read or is not of its format."""
    return BoxRecord(label_file, label_format, 0, error=error, **fields)


def normalized_xywh(box: tuple[float, float, float, float], box_format: str, width: float = 1,
                    height: float = 1) -> tuple[float, float, float, float]:
    """YOLO's normalized ``(x_center, y_center, width, height)`` of ``box`` in ``box_format``, by the
    image's ``width`` x ``height`` pixels (ignored for the :data:`NORMALIZED` formats). VOC as
    Ultralytics' ``VOC.yaml`` converts it: ``x_center = ((xmin + xmax) / 2 - 1) / W``."""
    a, b, c, d = box
    if box_format == YOLO_XYWH:
        return a, b, c, d
    if box_format == NORMALIZED_XYXY:
        return (a + c) / 2, (b + d) / 2, c - a, d - b
    if box_format == VOC_XYXY:
        return ((a + c) / 2 - 1) / width, ((b + d) / 2 - 1) / height, (c - a) / width, (d - b) / height
    if box_format == COCO_XYWH:
        return (a + c / 2) / width, (b + d / 2) / height, c / width, d / height
    return (a + c) / 2 / width, (b + d) / 2 / height, (c - a) / width, (d - b) / height


def polygon_bbox(points: Sequence[float]) -> tuple[float, float, float, float]:
    """``(x_min, y_min, x_max, y_max)`` of flat polygon vertices ``(x1, y1, x2, y2, ...)``: the
    axis-aligned bounding box Ultralytics trains a detector on for a segment
    (``ultralytics.utils.ops.segments2boxes``)."""
    xs, ys = points[0::2], points[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def polygon_fault(values: Sequence[float], minimum_points: int = 3) -> str | None:
    """Why flat vertex values cannot be a polygon (odd count, fewer than ``minimum_points`` points,
    a value that is not finite), or None."""
    if len(values) % 2:
        return f"a polygon needs x y pairs, got {len(values)} values"
    if len(values) < 2 * minimum_points:
        return f"a polygon needs at least {minimum_points} points, got {len(values) // 2}"
    if not all(math.isfinite(v) for v in values):
        return "non-finite polygon coordinate"
    return None


def rotated_rectangle(x: float, y: float, width: float, height: float, degrees: float,
                      about_center: bool) -> tuple[float, ...]:
    """The four corners (flat, clockwise from the rectangle's own top-left) of a ``width`` x
    ``height`` rectangle with top-left ``(x, y)`` turned ``degrees`` clockwise (image y points down)
    about its center (CVAT's ``rotation``) or about its top-left corner (Label Studio's)."""
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    pivot = (x + width / 2, y + height / 2) if about_center else (x, y)
    corners = []
    for cx, cy in ((x, y), (x + width, y), (x + width, y + height), (x, y + height)):
        dx, dy = cx - pivot[0], cy - pivot[1]
        corners += [pivot[0] + dx * cos - dy * sin, pivot[1] + dx * sin + dy * cos]
    return tuple(corners)
