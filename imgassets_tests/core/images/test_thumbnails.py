"""Thumbnails for the UI: small JPEGs with the boxes drawn, as Markdown data URIs, for the images
behind findings (real bccd_voc boxes, a rejected image, a class map finding that has no image)."""

from __future__ import annotations

import base64
import io
import re

from PIL import Image

from imgassets.core.images.thumbnails import (
    LABEL_COLOUR,
    MAX_PICTURES,
    PREDICTION_COLOUR,
    finding_pictures,
    thumbnail,
)
from imgassets.core.labels import checks as label_checks
from imgassets.core.labels.checks import Finding
from imgassets.core.labels.table import build_label_table
from imgassets.errors import Reason
from imgassets_tests.conftest import build_image_index, image_bytes, jpeg_bytes, shared_data_dir

URI = re.compile(r"!\[([^\]]*)\]\(data:image/jpeg;base64,([A-Za-z0-9+/=]+)\)")


def _pictures(markdown: str) -> list[tuple[str, Image.Image]]:
    return [(alt, Image.open(io.BytesIO(base64.b64decode(data)))) for alt, data in URI.findall(markdown)]


def test_a_thumbnail_is_small_and_draws_labelled_and_predicted_boxes_in_two_colours():
    source = Image.new("RGB", (1280, 960), (0, 0, 0))
    buffer = io.BytesIO()
    source.save(buffer, "PNG")
    jpeg = thumbnail(buffer.getvalue(), [("cat", 0.25, 0.5, 0.2, 0.2)], [("cat 0.91", 0.75, 0.5, 0.2, 0.2)])
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    assert image.size == (320, 240) and len(jpeg) < 40_000
    left_edge = image.getpixel((int(0.15 * 320), 120))  # the labelled box's left side
    right_edge = image.getpixel((int(0.65 * 320), 120))  # the predicted box's left side
    assert max(abs(a - b) for a, b in zip(left_edge, LABEL_COLOUR, strict=True)) < 60
    assert max(abs(a - b) for a, b in zip(right_edge, PREDICTION_COLOUR, strict=True)) < 60


def test_the_zero_area_boxes_of_bccd_are_shown_on_their_images():
    folder = shared_data_dir() / "bccd_voc"
    index = build_image_index(folder)
    table = build_label_table(folder, index)
    findings = label_checks.geometry_failures(table)
    assert findings
    pictures = _pictures(finding_pictures(folder, findings, table))
    shown = {f"{f.file}:{f.line}" for f in findings}
    assert pictures and {alt for alt, _ in pictures} <= shown and len(pictures) <= MAX_PICTURES
    assert all(max(image.size) == 320 for _, image in pictures)  # bccd's 640x480 scaled down


def test_a_rejected_image_is_shown_when_it_can_be_drawn_and_named_when_it_cannot(tmp_path):
    (tmp_path / "tiny.png").write_bytes(image_bytes("PNG", (8, 8)))
    (tmp_path / "cut.jpg").write_bytes(jpeg_bytes()[:200])
    (tmp_path / "data.yaml").write_text("names: [a]\n")
    findings = [Finding("tiny.png", 0, "too_small", Reason.IMAGE_REJECTED),
                Finding("cut.jpg", 0, "corrupt", Reason.IMAGE_REJECTED),
                Finding("data.yaml", 0, "class map cannot be used", Reason.LABEL_SCHEMA)]
    markdown = finding_pictures(tmp_path, findings)
    assert [alt for alt, _ in _pictures(markdown)] == ["tiny.png"]
    assert "**cut.jpg**: corrupt\n\n(cannot be drawn" in markdown and "data.yaml" not in markdown
