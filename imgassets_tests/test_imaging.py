"""Image inspection: sniffed format, strict decode, displayed size, rejection reasons."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imgassets.core import imaging
from imgassets.core.imaging import inspect_image
from imgassets_tests.conftest import image_bytes, jpeg_bytes, noise_image


@pytest.mark.parametrize("fmt,ext,mode", [
    ("JPEG", ".jpg", "RGB"), ("JPEG", ".JPG", "L"), ("JPEG", ".jpeg", "CMYK"), ("PNG", ".png", "RGBA"),
    ("PNG", ".png", "P"), ("PNG", ".png", "I;16"), ("BMP", ".bmp", "RGB"), ("TIFF", ".tif", "RGB"),
    ("WEBP", ".webp", "RGB"),
])
def test_supported_formats_and_modes_are_accepted(fmt, ext, mode):
    info = inspect_image(image_bytes(fmt, (40, 30), mode), ext)
    assert (info.status, info.format, info.width, info.height) == (imaging.OK, fmt, 40, 30)
    assert info.reason == ""


def test_format_comes_from_the_bytes_and_a_mismatch_is_noted():
    info = inspect_image(image_bytes("PNG"), ".jpg")
    assert info.status == imaging.OK and info.format == "PNG"
    assert "extension .jpg but the content is PNG" in info.reason


@pytest.mark.parametrize("data,status,reason", [
    (b"", imaging.EMPTY, "0 bytes"),
    (b"hello, this is text", imaging.NOT_AN_IMAGE, "not an image"),
    (image_bytes("GIF"), imaging.UNSUPPORTED, "GIF images are not supported"),
    (image_bytes("PNG", (5, 40)), imaging.TOO_SMALL, "5x40 px is below the 10 px minimum"),
])
def test_rejections_have_a_status_and_a_reason(data, status, reason):
    info = inspect_image(data, ".jpg")
    assert info.status == status
    assert reason in info.reason


def test_truncated_jpeg_is_corrupt():
    data = jpeg_bytes((256, 192))
    info = inspect_image(data[: len(data) // 2], ".jpg")
    assert info.status == imaging.CORRUPT
    assert "cannot be fully decoded" in info.reason


def test_truncated_jpeg_with_end_marker_put_back_is_corrupt():
    """Pillow's load() accepts this one (libjpeg only warns); the strict decoder must not."""
    data = jpeg_bytes((256, 192))
    info = inspect_image(data[: len(data) // 2] + b"\xff\xd9", ".jpg")
    assert info.status == imaging.CORRUPT


def test_truncated_png_is_corrupt():
    noisy = noise_image((200, 200), 1)
    buffer = io.BytesIO()
    noisy.save(buffer, "PNG")
    data = buffer.getvalue()
    info = inspect_image(data[: len(data) // 2], ".png")
    assert info.status == imaging.CORRUPT


@pytest.mark.parametrize("orientation,expected", [(1, (64, 48)), (3, (64, 48)), (6, (48, 64)), (8, (48, 64))])
def test_exif_orientation_gives_the_displayed_size(orientation, expected):
    exif = Image.Exif()
    exif[imaging.EXIF_ORIENTATION_TAG] = orientation
    info = inspect_image(jpeg_bytes((64, 48), exif=exif.tobytes()), ".jpg")
    assert info.status == imaging.OK
    assert (info.width, info.height) == expected
    assert info.exif_orientation == orientation


def test_invalid_exif_orientation_is_reported_and_ignored():
    exif = Image.Exif()
    exif[imaging.EXIF_ORIENTATION_TAG] = 9
    info = inspect_image(jpeg_bytes((64, 48), exif=exif.tobytes()), ".jpg")
    assert info.status == imaging.OK and (info.width, info.height) == (64, 48)
    assert "invalid EXIF orientation 9" in info.reason


def test_results_do_not_depend_on_ultralytics_being_imported():
    """Ultralytics patches PIL.Image.open; a non-image must still be reported as one."""
    import ultralytics.utils.patches  # noqa: F401

    assert inspect_image(b"hello, this is text", ".jpg").status == imaging.NOT_AN_IMAGE

