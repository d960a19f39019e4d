"""Small pictures for the UI: an image (or a plot) scaled down, optionally with boxes drawn, as a
Markdown image with a ``data:`` URI (the Dagster UI's Markdown renders ``data:`` image sources).

Labelled boxes are drawn in :data:`LABEL_COLOUR`, predicted boxes in :data:`PREDICTION_COLOUR`;
boxes are normalized xywh in the displayed frame (:mod:`imgassets.core.versioning.manifest`), so the
image is EXIF-transposed before drawing. A thumbnail is a JPEG at most :data:`MAX_SIDE` pixels on
its long side (a few tens of kB), so a check can carry a few dozen of them.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from imgassets.core.drive.layout import is_image_path
from imgassets.core.drive.source_files import SourceFileError, read_source

MAX_SIDE = 320
MIN_SIDE = 320
LABEL_COLOUR = (0, 200, 0)
PREDICTION_COLOUR = (255, 0, 255)
Box = tuple
"""(caption, x_center, y_center, width, height[, polygon]), normalized to the displayed frame; the
polygon (flat ``x1, y1, x2, y2, ...``, normalized) of a box drawn as a polygon or oriented box."""


def thumbnail(source: bytes | str | Path, labelled: Iterable[Box] = (), predicted: Iterable[Box] = (),
              max_side: int = MAX_SIDE, quality: int = 80) -> bytes:
    """JPEG bytes of ``source`` (image bytes or a file), EXIF-transposed, scaled to at most
    ``max_side`` pixels (an image under :data:`MIN_SIDE` enlarged, pixels kept sharp), with
    ``labelled`` and ``predicted`` boxes drawn (a box with a coordinate that is not finite is left
    out; one far off the image is drawn to a few image sizes beyond its edge). Raises what Pillow
    raises for bytes that are not an image."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    image.thumbnail((max_side, max_side))
    if max(image.size) < MIN_SIDE:  # a tiny image (often why it was rejected) is enlarged to be seen
        factor = -(-MIN_SIDE // max(image.size))
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    width, height = image.size
    limit = 4 * max(width, height)  # pixels: a box far off the image is drawn to its edge, not at 1e308

    def pixels(value: float, side: int) -> float:
        return min(max(value * side, -limit), limit)

    for boxes, colour in ((labelled, LABEL_COLOUR), (predicted, PREDICTION_COLOUR)):
        for caption, x, y, w, h, *polygon in boxes:
            if not all(math.isfinite(float(v)) for v in (x, y, w, h)):
                continue  # a box with an infinite or missing coordinate cannot be drawn; its finding says why
            corners = [pixels(x - w / 2, width), pixels(y - h / 2, height), pixels(x + w / 2, width),
                       pixels(y + h / 2, height)]
            vertices = polygon[0] if polygon and polygon[0] is not None else None
            if vertices is not None and len(vertices) >= 6 and all(math.isfinite(float(v)) for v in vertices):
                # the polygon as drawn, its bounding box thin
                draw.polygon([(pixels(vx, width), pixels(vy, height))
                              for vx, vy in zip(vertices[0::2], vertices[1::2], strict=True)], outline=colour, width=2)
                draw.rectangle(corners, outline=colour, width=1)
            else:
                draw.rectangle(corners, outline=colour, width=2)
            if caption:
                draw.text((corners[0] + 2, max(0, corners[1] - 11)), caption, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def data_uri(image: bytes, mime: str = "image/jpeg") -> str:
    """``data:<mime>;base64,...`` of encoded image bytes (JPEG unless ``mime`` says otherwise)."""
    return f"data:{mime};base64," + base64.b64encode(image).decode("ascii")


def markdown_image(caption: str, image: bytes, mime: str = "image/jpeg") -> str:
    """A Markdown image of encoded image bytes (``caption`` is its alt text; brackets removed)."""
    alt = caption.replace("[", "(").replace("]", ")")
    return f"![{alt}]({data_uri(image, mime)})"


MAX_PICTURES = 12
"""Pictures attached to one check or asset: the first images its findings name."""


def finding_pictures(folder: str | Path, findings: Iterable, labels=None, limit: int = MAX_PICTURES,
                     max_bytes: int = 64 * 2**20) -> str:
    """Markdown of thumbnails of the images behind ``findings`` (each with ``file``, ``line`` and
    ``reason``; the first ``limit`` distinct images), read from the scientist's ``folder`` through
    :func:`imgassets.core.drive.source_files.read_source`. A finding on a label file shows the image
    of the finding's line (``labels``: the label table; for a file describing many images, such as
    COCO, CVAT or Label Studio, the image that line annotates; else the file's first image) with the
    file's boxes on it drawn, polygons as polygons; a finding on an image shows the image. An image that cannot be drawn (a
    corrupt file) is named, not shown. Empty when no finding names an image."""
    rows_of = labels.groupby("label_file", sort=False).indices if labels is not None and len(labels) else {}
    shown: dict[str, list] = {}
    for finding in findings:
        image, boxes = finding.file, []
        if finding.file in rows_of:
            rows = labels.iloc[rows_of[finding.file]]
            at_line = rows.loc[rows["line"] == finding.line, "image_path"].dropna()
            paired = at_line if len(at_line) else rows["image_path"].dropna()
            if len(paired):
                image = paired.iloc[0]
                rows = rows[(rows["image_path"] == image) & rows["x_center"].notna()]
                polygons = rows["polygon"] if "polygon" in rows.columns else [None] * len(rows)
                boxes = [(str(r.class_name if isinstance(r.class_name, str) else r.class_id), r.x_center, r.y_center,
                          r.width, r.height, polygon) for r, polygon in zip(rows.itertuples(), polygons, strict=True)]
        if image in shown or not is_image_path(image):  # a class map or an orphan label: no image to show
            continue
        if len(shown) >= limit:
            break
        shown[image] = [finding, boxes]
    parts = []
    for image, (finding, boxes) in shown.items():
        caption = f"{finding.file}:{finding.line}" if finding.line else finding.file
        try:
            picture = markdown_image(caption, thumbnail(read_source(folder, image, max_bytes=max_bytes), boxes))
        except (SourceFileError, OSError, ValueError, ArithmeticError, Image.DecompressionBombError) as exc:
            picture = f"(cannot be drawn: {type(exc).__name__})"
        parts.append(f"**{caption}**: {finding.reason}\n\n{picture}")
    return "\n\n".join(parts)
