"""Pascal VOC XML label files (LabelImg, CVAT "PASCAL VOC 1.1").

Format: ``<annotation>`` with ``<filename>``, ``<size><width/><height/></size>`` and one
``<object>`` per box: ``<name>``, ``<difficult>``, ``<truncated>``, ``<bndbox>`` with ``xmin``,
``ymin``, ``xmax``, ``ymax`` in pixels, 1-based corners (VOC convention). Normalized the way
Ultralytics' ``VOC.yaml`` does: ``x_center = ((xmin + xmax) / 2 - 1) / W``,
``width = (xmax - xmin) / W`` (likewise y), with ``W``, ``H`` the image's *displayed* size.
``line`` is the line of the ``<object>`` tag in the file. Tabs and spaces mixed in indentation
are irrelevant to XML and accepted.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from imgassets.core.drive import layout
from imgassets.core.labels.formats.record import VOC_XYXY, BoxRecord, file_error

OBJECT_TAG = re.compile(rb"<object[\s>]")


def _int(text: str | None) -> int | None:
    try:
        return int(float(text)) if text is not None and text.strip() else None
    except (ValueError, OverflowError):  # not a number, inf or nan
        return None


def parse_voc(data: bytes, label_file: str = "") -> list[BoxRecord]:
    """The box records of VOC XML bytes (:data:`~imgassets.core.labels.formats.record.VOC_XYXY`), each
    with the ``<filename>`` as ``image_ref``, the places VOC images are kept as
    ``image_candidates`` (:func:`imgassets.core.drive.layout.voc_image_candidates`) and the
    ``<size>`` as ``declared_size``; an ``empty`` record when it has no ``<object>`` (background).
    Never raises: a file-level problem is one record with ``line``
    0 and its ``error``, a box-level one the box's ``error``."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        return [file_error(label_file, layout.VOC, f"not well-formed XML: {exc}")]
    if root.tag != "annotation":
        return [file_error(label_file, layout.VOC,
                           f"not a Pascal VOC file: root element is <{root.tag}>, expected <annotation>")]
    size = root.find("size")
    width = _int(size.findtext("width")) if size is not None else None
    height = _int(size.findtext("height")) if size is not None else None
    filename = (root.findtext("filename") or "").strip() or None
    candidates = tuple(layout.voc_image_candidates(label_file, filename))
    declared = (width, height) if width and height else None
    lines = [data.count(b"\n", 0, m.start()) + 1 for m in OBJECT_TAG.finditer(data)]
    records = []
    for i, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip() or None
        flags = {"difficult": _int(obj.findtext("difficult")), "truncated": _int(obj.findtext("truncated"))}
        box, error = None, None
        bndbox = obj.find("bndbox")
        try:
            box = tuple(float(bndbox.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError):
            error = "<bndbox> needs numeric xmin, ymin, xmax, ymax"
        if name is None and error is None:
            error = "<object> without a <name>"
        records.append(BoxRecord(label_file, layout.VOC, lines[i] if i < len(lines) else 0, class_name=name, box=box,
                                 box_format=VOC_XYXY, image_ref=filename, image_candidates=candidates, declared_size=declared,
                                 flags=flags, error=error))
    if not records and (filename or candidates):  # an annotation without <object>: background
        records.append(BoxRecord(label_file, layout.VOC, 0, image_ref=filename, image_candidates=candidates,
                                 declared_size=declared, empty=True))
    return records
