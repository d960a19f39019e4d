"""CVAT for images XML (``annotations.xml``, CVAT's "CVAT for images 1.1" export).

Format (https://docs.cvat.ai/docs/manual/advanced/xml_format/): root ``<annotations>``, then
``<image id name width height [subset]>`` elements, each holding its shapes:
``<box label xtl ytl xbr ybr occluded [rotation]>`` (pixel corners, 0-based; ``rotation`` in degrees
clockwise about the box's center, an oriented box) and ``<polygon label points="x1,y1;x2,y2;...">``
(pixels). ``name`` may hold sub-folders; the label table resolves it inside the scientist's folder
and compares ``width``/``height`` with the real image. A shape whose label is not among the labels
the export declares (``<meta>``'s ``<labels><label><name>``) is a finding. Other shapes (polylines, points, skeletons,
masks, ellipses, cuboids, tags) describe no bounding box and are not read; ``subset`` is not a
split (imgassets assigns its own, stable, splits), but it names the folder of a project export's
image (``images/<subset>/<name>`` beside the XML), where the same name may occur in each subset.
``line`` is the line of the shape's tag.
"""

from __future__ import annotations

import math
import posixpath
import xml.parsers.expat

from imgassets.core.drive import layout
from imgassets.core.labels.formats.record import (
    ORIENTED_BOX,
    POLYGON,
    BoxRecord,
    file_error,
    polygon_bbox,
    polygon_fault,
    rotated_rectangle,
)

ROOT = "annotations"


def _float(attrs: dict, name: str) -> float:
    value = float(attrs[name])
    if not math.isfinite(value):
        raise ValueError(name)
    return value


def _shape(record: BoxRecord, tag: str, attrs: dict) -> None:
    """Fill ``record`` from a ``<box>`` or ``<polygon>`` element's attributes (in place)."""
    record.class_name = attrs.get("label", "").strip() or None
    occluded = attrs.get("occluded")
    record.flags = {"occluded": int(occluded) if occluded in ("0", "1") else None}
    try:
        if tag == "box":
            corners = tuple(_float(attrs, k) for k in ("xtl", "ytl", "xbr", "ybr"))
            try:
                rotation = _float(attrs, "rotation") % 360 if attrs.get("rotation") else 0.0
            except ValueError:
                record.error = f"<box rotation={attrs.get('rotation')!r}>: the rotation is not a finite number of degrees"
                return
            if rotation:
                record.polygon = rotated_rectangle(corners[0], corners[1], corners[2] - corners[0],
                                                   corners[3] - corners[1], rotation, about_center=True)
                record.box, record.shape = polygon_bbox(record.polygon), ORIENTED_BOX
            else:
                record.box = corners
        else:
            values = [float(v) for point in attrs.get("points", "").split(";") if point for v in point.split(",")]
            fault = polygon_fault(values)
            if fault:
                record.error = f"<polygon points>: {fault}"
                return
            record.polygon, record.box, record.shape = tuple(values), polygon_bbox(values), POLYGON
    except (KeyError, ValueError):
        record.error = ("<box> needs numeric xtl, ytl, xbr, ybr" if tag == "box"
                        else "<polygon> needs points as `x1,y1;x2,y2;...`")
        return
    if record.class_name is None:
        record.error = f"<{tag}> without a label"


def is_cvat(data: bytes) -> bool:
    """Whether XML bytes have CVAT's root element ``<annotations>`` (a VOC file has ``<annotation>``)."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    while head.startswith((b"<?", b"<!--", b"<!DOCTYPE")):  # declaration, comments, a document type
        if head.startswith(b"<?"):
            close = b"?>"
        elif head.startswith(b"<!--"):
            close = b"-->"
        else:  # a DOCTYPE, with an internal subset [...] or without
            close = b"]>" if b"[" in head.partition(b">")[0] else b">"
        end = head.find(close)
        if end < 0:
            return False
        head = head[end + len(close):].lstrip()
    return head.startswith(b"<annotations") and head[len(b"<annotations"):][:1] in (b">", b" ", b"\n", b"\r", b"\t")


def _subset_candidates(label_file: str, image: dict) -> tuple[str, ...]:
    """Where a CVAT *project* export keeps an ``<image name subset>``: ``images/<subset>/<name>``
    beside the XML (the same name may appear in several subsets, one image each); none without a
    subset or a name, or for a name that would leave the folder."""
    name, subset = image.get("name"), image.get("subset")
    if not name or not subset:
        return ()
    folder = posixpath.dirname(label_file)
    found = (posixpath.normpath(posixpath.join(folder, "images", s, name)) for s in dict.fromkeys((subset, subset.lower())))
    return tuple(c for c in found if c != ".." and not c.startswith(("../", "/")))


def parse_cvat(data: bytes, label_file: str = "") -> list[BoxRecord]:
    """The box records of CVAT for images XML bytes: one per ``<box>`` and ``<polygon>``, with its
    ``<image>``'s ``name`` as ``image_ref`` and ``width``/``height`` as ``declared_size``, and an
    ``empty`` record for an ``<image>`` without either (background). Never
    raises: a file that is not well-formed XML is one record with ``line`` 0 and its ``error``."""
    parser = xml.parsers.expat.ParserCreate()
    records: list[BoxRecord] = []
    image: dict | None = None
    root: list[str] = []
    path: list[str] = []
    declared: set[str] = set()
    name: list[str] = []
    shapes: list[int] = []  # records made before each <image> opened

    def start(tag: str, attrs: dict) -> None:
        nonlocal image
        if not root:
            root.append(tag)
        path.append(tag)
        if path[-3:] == ["labels", "label", "name"] and "meta" in path:
            name.clear()
        if tag == "image":
            image = attrs
            shapes.append(len(records))
            return
        if tag not in ("box", "polygon") or image is None:
            return
        try:
            size = (int(float(image["width"])), int(float(image["height"])))
        except (KeyError, ValueError, OverflowError):  # missing, not a number, inf or nan: no declared size
            size = None
        record = BoxRecord(label_file, layout.CVAT, parser.CurrentLineNumber, image_ref=image.get("name") or None,
                           declared_size=size if size and all(size) else None,
                           image_candidates=_subset_candidates(label_file, image))
        _shape(record, tag, attrs)
        if record.error is None and declared and record.class_name not in declared:
            record.error = (f"label {record.class_name!r} is not one of the labels the export declares "
                            f"({', '.join(sorted(declared))})")
        records.append(record)

    def text(data: str) -> None:
        if path[-3:] == ["labels", "label", "name"] and "meta" in path:
            name.append(data)

    def end(tag: str) -> None:
        nonlocal image
        if path[-3:] == ["labels", "label", "name"] and "meta" in path and "".join(name).strip():
            declared.add("".join(name).strip())
        path.pop()
        if tag == "image":
            if image is not None and shapes and shapes[-1] == len(records) and image.get("name"):
                records.append(BoxRecord(label_file, layout.CVAT, parser.CurrentLineNumber, image_ref=image["name"],
                                         image_candidates=_subset_candidates(label_file, image), empty=True))
            image = None

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        return [file_error(label_file, layout.CVAT, f"not well-formed XML: {exc}")]
    if root and root[0] != ROOT:
        return [file_error(label_file, layout.CVAT, f"not a CVAT file: root element is <{root[0]}>, expected <{ROOT}>")]
    return records
