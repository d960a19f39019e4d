"""Image-quality signals in the image index and the outliers judged against the scientist's own
images: planted dark, blurry, blank and panoramic images are flagged with the measure and the
folder's typical range; a folder whose every image is dark (a microscope's) flags none of them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from imgassets.core.images.inspect import inspect_image, quality_signals
from imgassets.core.images.quality import quality_outliers, quality_plot_png
from imgassets_tests.conftest import build_image_index


def _scene(seed: int, size=(96, 72), gain: float = 1.0, blur: float = 0.0) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 215, size=(size[1] // 8, size[0] // 8, 3)).astype(np.float64)
    image = Image.fromarray(np.clip(base * gain, 0, 255).astype(np.uint8)).resize(size, Image.NEAREST)
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    folder = root / "ana"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_signals_come_from_the_one_decode_and_order_images_as_a_person_would():
    bright, dark, blurred, flat = quality_signals([inspect_image(data).reduced for data in (
        _scene(1), _scene(1, gain=0.2), _scene(1, blur=3), _png_constant())])
    sharp = bright
    assert dark.brightness < 0.2 < bright.brightness and dark.contrast < bright.contrast
    assert blurred.sharpness < sharp.sharpness / 4
    assert flat.contrast == 0 and flat.entropy == 0 and flat.sharpness == 0


def _png_constant(size=(96, 72), value=128) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, value).save(buffer, format="PNG")
    return buffer.getvalue()


def test_outliers_are_flagged_against_the_folder_with_its_typical_range(tmp_path):
    files = {f"scene_{i:02d}.png": _scene(i) for i in range(30)}
    files |= {"dark.png": _scene(99, gain=0.15), "blurry.png": _scene(98, blur=4), "blank.png": _png_constant(),
              "panorama.png": _scene(97, size=(400, 60))}
    index = build_image_index(_folder(tmp_path, files))
    assert index[["brightness", "contrast", "sharpness", "entropy"]].notna().all().all()
    found = {(o.path, o.measure): o.reason for o in quality_outliers(index, "ana")}
    assert ("dark.png", "brightness") in found and found["dark.png", "brightness"].startswith("dark for ana: brightness ")
    assert "typical " in found["dark.png", "brightness"] and "middle 90% of 34 images" in found["dark.png", "brightness"]
    assert found["blurry.png", "sharpness"].startswith("blurry for ana")
    assert found["blank.png", "contrast"].startswith("near-constant image: contrast 0.000")
    assert found["panorama.png", "aspect_ratio"].startswith("wide for ana: aspect ratio 6.67")
    assert not any(path.startswith("scene_") for path, _ in found)  # no false alarm on the ordinary images
    png = quality_plot_png(index, "ana")
    assert png.startswith(b"\x89PNG") and Image.open(io.BytesIO(png)).size[0] > 400


def test_a_folder_of_dark_images_is_not_dark_to_itself(tmp_path):
    files = {f"slide_{i:02d}.png": _scene(i, gain=0.15) for i in range(30)}
    index = build_image_index(_folder(tmp_path, files))
    assert quality_outliers(index, "ana") == []


def test_a_small_folder_is_judged_only_for_blank_frames(tmp_path):
    files = {f"scene_{i}.png": _scene(i) for i in range(5)} | {"dark.png": _scene(9, gain=0.1), "blank.png": _png_constant()}
    index = build_image_index(_folder(tmp_path, files))
    assert [(o.path, o.measure) for o in quality_outliers(index)] == [("blank.png", "contrast")]


@pytest.mark.parametrize("exif_time,subsec,expected", [("2024:05:01 10:00:00", "25", 1714557600.25),
                                                      ("0000:00:00 00:00:00", None, None)])
def test_exif_capture_time_and_camera_are_indexed(tmp_path, exif_time, subsec, expected):
    exif = Image.Exif()
    exif[271], exif[272] = "Canon", "EOS R5"
    exif.get_ifd(0x8769)[36867] = exif_time
    if subsec:
        exif.get_ifd(0x8769)[37521] = subsec
    buffer = io.BytesIO()
    Image.open(io.BytesIO(_scene(1))).convert("RGB").save(buffer, format="JPEG", exif=exif)
    info = inspect_image(buffer.getvalue(), ".jpg")
    assert info.camera == "Canon EOS R5" and info.capture_time == expected
