"""Image inspection: sniffed format, strict decode, displayed size, rejection reasons."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imgassets.core.images import inspect as imaging
from imgassets.core.images.inspect import inspect_image
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



def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_16_bit_grayscale_png_is_accepted_and_hashed_as_ultralytics_reads_it(tmp_path):
    """A valid ``I;16`` PNG (a depth camera's, a microscope's) is described with its hash and
    perceptual hash; Ultralytics reads it through OpenCV as 8 bits (the top byte), and its own
    image check accepts it."""
    import cv2
    import numpy as np
    from PIL import Image
    from ultralytics.data.utils import verify_image_label

    rng = np.random.default_rng(3)
    depth = (np.add.outer(np.arange(480), np.arange(640)) * 60 + rng.integers(0, 400, (480, 640))).astype(np.uint16)
    data = _png(Image.fromarray(depth))
    info = inspect_image(data, ".png")
    assert (info.status, info.mode, info.width, info.height) == ("ok", "I;16", 640, 480)
    (tmp_path / "depth.png").write_bytes(data)
    as_read = cv2.imread(str(tmp_path / "depth.png"), cv2.IMREAD_COLOR)
    assert as_read.shape == (480, 640, 3) and as_read.dtype == np.uint8
    assert info.phash == inspect_image(_png(Image.fromarray(as_read[:, :, 0])), ".png").phash
    (tmp_path / "depth.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    checked = verify_image_label((str(tmp_path / "depth.png"), str(tmp_path / "depth.txt"), "", False, 1, 0, 0, False))
    assert checked[0] is not None and checked[-1] == ""


@pytest.mark.parametrize(("mode", "fmt"), [("I", "TIFF"), ("F", "TIFF"), ("LA", "PNG"), ("PA", "TIFF"), ("I;16", "TIFF")])
def test_wide_and_alpha_modes_are_accepted_with_a_perceptual_hash_of_their_content(mode, fmt):
    import numpy as np
    from PIL import Image

    ramp = np.add.outer(np.arange(240), np.arange(320)).astype(np.float64)
    ramp[:120] *= 3  # some structure: the hash of a flat image says nothing
    if mode in ("I", "F", "I;16"):
        image = Image.fromarray(ramp.astype({"I": np.int32, "F": np.float32, "I;16": np.uint16}[mode]))
    else:
        image = Image.fromarray((ramp % 256).astype(np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    info = inspect_image(buffer.getvalue())
    assert (info.status, info.mode) == ("ok", mode)
    assert info.phash not in ("0000000000000000", "8000000000000000")
