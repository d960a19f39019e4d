"""Pascal VOC XML label files (LabelImg, CVAT "PASCAL VOC 1.1").

Format: ``<annotation>`` with ``<filename>``, ``<size><width/><height/></size>`` and one
``<object>`` per box: ``<name>``, ``<difficult>``, ``<truncated>``, ``<bndbox>`` with ``xmin``,
``ymin``, ``xmax``, ``ymax`` in pixels, 1-based corners (VOC convention). Converted to normalized
xywh the way Ultralytics' ``VOC.yaml`` does: ``x_center = ((xmin + xmax) / 2 - 1) / W``,
``width = (xmax - xmin) / W`` (likewise y), with ``W``, ``H`` the image's *displayed* size.
``line`` is the line of the ``<object>`` tag in the file. Tabs and spaces mixed in indentation
are irrelevant to XML and accepted.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

OBJECT_TAG = re.compile(rb"<object[\s>]")


@dataclass
class VocBox:
    """One ``<object>``: class name, pixel corners, flags, source line; ``error`` when unusable."""

    line: int
    name: str | None
    xmin: float | None = None
    ymin: float | None = None
    xmax: float | None = None
    ymax: float | None = None
    difficult: int | None = None
    truncated: int | None = None
    error: str | None = None


@dataclass
class VocFile:
    """A parsed VOC file: the image it names, the size it declares (0 when absent), its boxes."""

    filename: str | None
    width: int
    height: int
    boxes: list[VocBox] = field(default_factory=list)
    error: str | None = None


def _int(text: str | None) -> int | None:
    try:
        return int(float(text)) if text is not None and text.strip() else None
    except ValueError:
        return None


def parse_voc(data: bytes) -> VocFile:
    """Parse VOC XML bytes. Never raises: file-level problems go in ``VocFile.error``, box-level
    ones in ``VocBox.error``."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        return VocFile(None, 0, 0, error=f"not well-formed XML: {exc}")
    if root.tag != "annotation":
        return VocFile(None, 0, 0, error=f"not a Pascal VOC file: root element is <{root.tag}>, expected <annotation>")
    size = root.find("size")
    width = _int(size.findtext("width")) if size is not None else None
    height = _int(size.findtext("height")) if size is not None else None
    parsed = VocFile((root.findtext("filename") or "").strip() or None, width or 0, height or 0)
    lines = [data.count(b"\n", 0, m.start()) + 1 for m in OBJECT_TAG.finditer(data)]
    for i, obj in enumerate(root.iter("object")):
        line = lines[i] if i < len(lines) else 0
        name = (obj.findtext("name") or "").strip() or None
        box = VocBox(line, name, difficult=_int(obj.findtext("difficult")), truncated=_int(obj.findtext("truncated")))
        bndbox = obj.find("bndbox")
        try:
            box.xmin, box.ymin, box.xmax, box.ymax = (float(bndbox.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError):
            box.error = "<bndbox> needs numeric xmin, ymin, xmax, ymax"
        if name is None and box.error is None:
            box.error = "<object> without a <name>"
        parsed.boxes.append(box)
    return parsed


def voc_to_xywh(box: VocBox, width: int, height: int) -> tuple[float, float, float, float]:
    """Normalized (x_center, y_center, width, height) of a VOC box in a ``width`` x ``height`` frame."""
    return (((box.xmin + box.xmax) / 2 - 1) / width, ((box.ymin + box.ymax) / 2 - 1) / height,
            (box.xmax - box.xmin) / width, (box.ymax - box.ymin) / height)
