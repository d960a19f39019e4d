"""A generated fault corpus: one scientist folder holding every fault class, indexed and labelled
through the real code, each fault asserted with the reason a scientist reads. Also the accepted
variants (CMYK, 16-bit, palette, alpha, grayscale, multi-frame) described, not rejected."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from imgassets.core.labels import checks as label_checks
from imgassets.core.labels.table import build_label_table
from imgassets_tests.conftest import build_image_index, image_bytes, jpeg_bytes


def _png(size, mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, "PNG")
    return buffer.getvalue()


def _multiframe_tiff() -> bytes:
    frames = [Image.new("RGB", (32, 32), (i * 60, 0, 0)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "TIFF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _corrupted_entropy() -> bytes:
    data = bytearray(jpeg_bytes((256, 192)))
    for i in range(len(data) // 2, len(data) // 2 + 40):
        data[i] = 0xAA if i % 2 else 0x00
    return bytes(data)


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


IMAGES = {
    "ok/plain.jpg": (jpeg_bytes(), "ok", ""),
    "faults/truncated.jpg": (jpeg_bytes((256, 192))[:2000], "corrupt", "JPEG data cannot be fully decoded"),
    "faults/eoi put back.jpg": (jpeg_bytes((256, 192))[:2000] + b"\xff\xd9", "corrupt", "JPEG data cannot be fully decoded"),
    "faults/entropy.jpg": (_corrupted_entropy(), "corrupt", "Corrupt JPEG data"),
    "faults/empty.png": (b"", "empty", "file is empty (0 bytes)"),
    "faults/text.JPG": (b"not an image at all", "not_an_image", "not an image format Pillow can identify"),
    "faults/tiny.png": (_png((8, 40)), "too_small", "8x40 px is below the 10 px minimum side"),
    "faults/bomb.png": (_png((12000, 12000), "1"), "too_large", "exceeds the 89,478,485-pixel limit"),
    "faults/anim.webp": (image_bytes("GIF"), "unsupported_format", "GIF images are not supported"),
    "ok/png named jpg.jpg": (image_bytes("PNG"), "ok", "extension .jpg but the content is PNG"),
    "ok/bad exif.jpg": (jpeg_bytes(exif=_exif(0)), "ok", "invalid EXIF orientation 0 ignored"),
    "ok/cmyk.jpg": (image_bytes("JPEG", (32, 24), "CMYK"), "ok", ""),
    "ok/gray16.png": (image_bytes("PNG", (32, 24), "I;16"), "ok", ""),
    "ok/palette.png": (image_bytes("PNG", (32, 24), "P"), "ok", ""),
    "ok/alpha.png": (image_bytes("PNG", (32, 24), "RGBA"), "ok", ""),
    "ok/gray.jpg": (image_bytes("JPEG", (32, 24), "L"), "ok", ""),
    "ok/pages.tif": (_multiframe_tiff(), "ok", "3 frames: the first is validated and trained on"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, object, object]:
    folder = tmp_path_factory.mktemp("corpus") / "zoe"
    for path, (data, _, _) in IMAGES.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    os.symlink(folder / "nowhere.jpg", folder / "faults" / "dangling link.jpg")
    labels = folder / "ok"
    (labels / "classes.txt").write_text("cat\ndog\n")
    (labels / "plain.txt").write_text(
        "\ufeff0 0.5 0.5 0.2 0.2\r\n\r\n"       # BOM, CRLF, blank line: fine
        "1 0.5 0.5 0.2\r\n"                     # 4 columns
        "0 0.1 0.1 0.2 0.2 0.3 0.3\r\n"         # polygon row
        "0 0.5 0.5 0 0.2\r\n"                   # zero area
        "0 0.95 0.5 0.2 0.2\r\n"                # outside the image
        "5 0.5 0.5 0.2 0.2")                    # unknown class, no trailing newline
    (labels / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    index = build_image_index(folder)
    return folder, index, build_label_table(folder, index)


@pytest.mark.parametrize("path", sorted(IMAGES))
def test_each_image_fault_has_its_status_and_reason(corpus, path):
    _, index, _ = corpus
    row = index.set_index("path").loc[path]
    _, status, reason = IMAGES[path]
    assert row["status"] == status
    assert reason in row["reason"] if reason else row["reason"] == ""


def test_unreadable_file_is_reported(corpus):
    _, index, _ = corpus
    row = index.set_index("path").loc["faults/dangling link.jpg"]
    assert row["status"] == "unreadable" and row["reason"].startswith("cannot read file")


def test_accepted_variants_are_described(corpus):
    _, index, _ = corpus
    rows = index.set_index("path")
    assert {p: rows.loc[p, "mode"] for p in ("ok/cmyk.jpg", "ok/gray16.png", "ok/palette.png", "ok/alpha.png", "ok/gray.jpg")} == {
        "ok/cmyk.jpg": "CMYK", "ok/gray16.png": "I;16", "ok/palette.png": "P", "ok/alpha.png": "RGBA", "ok/gray.jpg": "L"}
    assert rows.loc["ok/pages.tif", "frames"] == 3 and rows.loc["ok/plain.jpg", "frames"] == 1


def test_each_label_fault_is_found_at_its_line(corpus):
    _, _, table = corpus
    found = {(f.file, f.line, f.reason) for f in label_checks.blocking_findings(table)}
    expected = [
        (3, "expected 5 columns `class x_center y_center width height` or a polygon `class x1 y1 x2 y2 ...` "
            "(3 or more points), got 4 columns"),
        (4, "a polygon row in a file of detection rows (line 1 is detection): keep one kind of row per label file"),
        (5, "zero-area box (width 0, height 0.2)"),
        (6, "box outside the image: x 0.8500..1.0500, y 0.4000..0.6000 (must be within 0..1)"),
        (7, "class id 5 is not in the class map ok/classes.txt"),
    ]
    assert found == {("ok/plain.txt", line, reason) for line, reason in expected}
    assert [f.file for f in label_checks.orphan_label_files(table)] == ["ok/orphan.txt"]

