"""Pre-annotations in the formats labeling tools import: the labeling queue's images with the
champion's boxes, written to a folder outside the shared drive (``imgassets prelabel``).

Every export writes the queued images (from the object store, by content hash, byte for byte) under
``images/<path in the scientist's folder>`` and the champion's boxes (:data:`~imgassets.core.labeling.queue.PRELABEL_CONFIDENCE`
and above), named by the champion's class names (its dataset's class map, stable ids from the class
registry when there is one), in one of :data:`FORMATS`:

* ``label-studio``: ``tasks.json``, a list of Label Studio tasks
  (https://labelstud.io/guide/predictions): ``{"data": {"image": <url>, "path": <path in the
  scientist's folder>, "sha256": <content hash>}, "meta": {"sha256", "path", "rank"}, "predictions": [{"model_version": <champion model id>, "score": <task score>, "result":
  [...]}]}``; each result a ``rectanglelabels`` region in percent of the image (``x``, ``y`` the
  top-left corner), ``from_name`` ``label``, ``to_name`` ``image`` (the labeling config
  :func:`label_studio_config` gives), with its ``score`` (the box's confidence). The task score is
  the queue's score. Predictions are proposals: Label Studio shows them for the annotator to
  accept, fix or delete, and its export holds them apart from the annotations (imgassets reads
  annotations only). ``<url>`` is ``image_url`` + the image's path (default ``images/<path>``
  relative to the export).
* ``cvat``: ``annotations.xml``, CVAT for images 1.1 (https://docs.cvat.ai/docs/manual/advanced/xml_format/):
  the labels in ``<meta>``, one ``<image id name width height>`` per queued image with
  ``<box label source="auto" occluded="0" xtl ytl xbr ybr z_order="0">`` in pixels (``source="auto"``:
  made by a model; CVAT has no place for a confidence).
* ``yolo``: ``labels/<path without extension>.txt`` beside ``images/`` (normalized xywh, class id
  first; an image without pre-annotations gets an empty file) and ``classes.txt`` (one name per
  line, by id).

Paths are checked before anything is written: an image path that would leave the export folder is
refused (:class:`ExportError`).
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from xml.sax.saxutils import quoteattr

from imgassets.core.labeling.queue import LabelingQueue
from imgassets.core.store.atomic import atomic_path
from imgassets.core.store.base import ObjectStore
from imgassets.core.store.keys import content_key
from imgassets.errors import ImgassetsError

LABEL_STUDIO = "label-studio"
CVAT = "cvat"
YOLO = "yolo"
FORMATS = (LABEL_STUDIO, CVAT, YOLO)
IMAGES = "images"
FROM_NAME, TO_NAME = "label", "image"
"""The control and object names of :func:`label_studio_config` that every result names."""


class ExportError(ImgassetsError, ValueError):
    """A pre-annotation export that cannot be written; the message names the image or format."""


def label_studio_config(class_names: list[str]) -> str:
    """The Label Studio labeling config (XML) of an image project with these class names as
    rectangle labels, the names :data:`FROM_NAME` and :data:`TO_NAME` that the tasks' results use."""
    labels = "".join(f"<Label value={quoteattr(name)}/>" for name in class_names)
    return (f'<View><Image name="{TO_NAME}" value="$image"/>'
            f'<RectangleLabels name="{FROM_NAME}" toName="{TO_NAME}">{labels}</RectangleLabels></View>')


def _corners(box: dict) -> tuple[float, float, float, float]:
    """Normalized (x0, y0, x1, y1) of a normalized xywh box, clipped to the image."""
    x0, y0 = box["x_center"] - box["width"] / 2, box["y_center"] - box["height"] / 2
    x1, y1 = x0 + box["width"], y0 + box["height"]
    return max(0.0, x0), max(0.0, y0), min(1.0, x1), min(1.0, y1)


def label_studio_tasks(queue: LabelingQueue, image_url: str = f"{IMAGES}/") -> list[dict]:
    """The queue as Label Studio tasks with predictions (module docstring)."""
    tasks = []
    for entry in queue.entries:
        result = []
        for i, box in enumerate(entry["prelabels"]):
            x0, y0, x1, y1 = _corners(box)
            result.append({
                "id": f"{entry['sha256'][:8]}-{i}", "from_name": FROM_NAME, "to_name": TO_NAME, "type": "rectanglelabels",
                "original_width": entry["width"], "original_height": entry["height"], "image_rotation": 0,
                "value": {"x": 100 * x0, "y": 100 * y0, "width": 100 * (x1 - x0), "height": 100 * (y1 - y0),
                          "rotation": 0, "rectanglelabels": [box["class_name"]]},
                "score": box["confidence"]})
        tasks.append({"data": {TO_NAME: f"{image_url}{entry['path']}", "path": entry["path"], "sha256": entry["sha256"]},
                      "meta": {"sha256": entry["sha256"], "path": entry["path"], "rank": entry["rank"]},
                      "predictions": [{"model_version": queue.model_id or "none", "score": entry["score"],
                                       "result": result}]})
    return tasks


def cvat_xml(queue: LabelingQueue) -> str:
    """The queue as a CVAT for images 1.1 document (module docstring)."""
    labels = "".join(f"<label><name>{_text(name)}</name><type>rectangle</type><attributes/></label>"
                     for name in queue.class_names)
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<annotations>", "  <version>1.1</version>",
             f"  <meta><task><name>{_text(queue.scientist)} labeling queue</name><size>{len(queue.entries)}</size>"
             f"<labels>{labels}</labels></task></meta>"]
    for i, entry in enumerate(queue.entries):
        w, h = entry["width"], entry["height"]
        lines.append(f'  <image id="{i}" name={quoteattr(entry["path"])} width="{w}" height="{h}">')
        for box in entry["prelabels"]:
            x0, y0, x1, y1 = _corners(box)
            lines.append(f'    <box label={quoteattr(box["class_name"])} source="auto" occluded="0" '
                         f'xtl="{x0 * w:.2f}" ytl="{y0 * h:.2f}" xbr="{x1 * w:.2f}" ybr="{y1 * h:.2f}" z_order="0"/>')
        lines.append("  </image>")
    lines.append("</annotations>")
    return "\n".join(lines) + "\n"


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def yolo_files(queue: LabelingQueue) -> dict[str, str]:
    """The queue as YOLO label texts by their path in the export (``labels/...txt``) and
    ``classes.txt`` (module docstring)."""
    files = {"classes.txt": "".join(f"{name}\n" for name in queue.class_names)}
    for entry in queue.entries:
        stem = posixpath.splitext(entry["path"])[0]
        files[f"labels/{stem}.txt"] = "".join(
            f"{b['class_id']} {b['x_center']:.6f} {b['y_center']:.6f} {b['width']:.6f} {b['height']:.6f}\n"
            for b in entry["prelabels"])
    return files


def _inside(dest: Path, relative: str) -> Path:
    """``dest / relative``, refused when ``relative`` is absolute or leaves ``dest``."""
    normal = posixpath.normpath(relative)
    if relative.startswith("/") or normal == ".." or normal.startswith("../"):
        raise ExportError(f"image path {relative!r} would leave the export folder: not written")
    return dest / normal


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, shared=True) as tmp:
        Path(tmp).write_bytes(data)


def write_prelabels(store: ObjectStore, queue: LabelingQueue, fmt: str, dest: str | Path,
                    image_url: str = f"{IMAGES}/") -> list[Path]:
    """Write the queue's images and pre-annotations in ``fmt`` (one of :data:`FORMATS`) under
    ``dest``; return the files written (the images first). ``image_url``: Label Studio's prefix of
    the images' paths. Raises :class:`ExportError` for an unknown format or a path leaving ``dest``;
    what the store raises for a missing object."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown pre-annotation format {fmt!r}: one of {', '.join(FORMATS)}")
    dest = Path(dest)
    texts: dict[str, str]
    if fmt == LABEL_STUDIO:
        texts = {"tasks.json": json.dumps(label_studio_tasks(queue, image_url), indent=1),
                 "label_config.xml": label_studio_config(queue.class_names)}
    elif fmt == CVAT:
        texts = {"annotations.xml": cvat_xml(queue)}
    else:
        texts = yolo_files(queue)
    images = {_inside(dest, f"{IMAGES}/{e['path']}"): e["sha256"] for e in queue.entries}
    labels = {_inside(dest, name): text for name, text in texts.items()}  # every path checked before a write
    for path, sha in images.items():
        _write(path, store.get_bytes(content_key(sha)))
    for path, text in labels.items():
        _write(path, text.encode("utf-8"))
    return [*images, *labels]
