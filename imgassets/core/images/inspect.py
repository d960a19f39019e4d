"""Image inspection: format sniffed from the bytes, strict full decode, EXIF orientation.

Rules (documented in ``docs/architecture.md``):

* The format comes from the file's bytes (Pillow's format detection), never from the extension.
  A mismatch with the extension is accepted and noted in ``reason``.
* Supported formats are those Ultralytics trains on that Pillow reads: JPEG (and MPO, a JPEG with
  extra frames), PNG, BMP, TIFF, WebP.
* Every image is decoded. JPEGs go through libjpeg-turbo in strict mode (``simplejpeg``), so a
  truncated file or corrupted entropy data is an error, not a warning followed by grey pixels.
  Every coefficient of every block is entropy-decoded -- that is where libjpeg detects corruption
  -- but the inverse DCT runs at libjpeg's reduced scale (DCT scaling, output at least
  :data:`PHASH_INPUT_SIDE` px a side): a full-resolution IDCT cannot fail, and the small image is
  all the perceptual hash needs. This is faster than a full decode and exactly as strict
  (the fault corpus in ``imgassets_tests/core/images/test_fault_corpus.py`` proves the rejections).
  Other formats are decoded by Pillow with truncated images refused, then reduced for the hash.
* Width and height are those of the *displayed* frame: EXIF orientations 5-8 (transposed and
  rotated by 90 or 270 degrees) swap them. Orientation values outside 1-8 are reported and ignored.
* Minimum size: 10 px on each side, the same floor as Ultralytics' ``verify_image_label``.
  Maximum: :data:`MAX_PIXELS` (Pillow's decompression-bomb limit); larger images are refused as
  ``too_large`` before any pixel is decoded.
* HEIF/HEIC is not a training format here; its Pillow opener is registered only so that results
  never depend on whether Ultralytics (which registers it lazily) was imported first.
* Every mode Pillow opens is accepted, the wide ones included (16-bit grayscale ``I;16``, 32-bit
  ``I``, float ``F``, ``LA``, ``PA``): the perceptual hash is taken on 8 bits (:func:`eight_bit`).
* Multi-frame files (animated WebP, multi-page TIFF, MPO) are validated and described by their
  first frame, which is the frame Ultralytics trains on.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import simplejpeg
from pi_heif import register_heif_opener
from PIL import Image, UnidentifiedImageError

from imgassets.core.drive import source_files
from imgassets.core.images.duplicates import perceptual_hash

# HEIF/HEIC is registered up front: Ultralytics patches Image.open to register it lazily (and to
# pip-install pi-heif at run time when missing), so without this, whether a phone's HEIC photo or a
# non-image is recognised would depend on whether Ultralytics happened to be imported first.
register_heif_opener()

MIN_SIDE_PX = 10
PHASH_INPUT_SIDE = 32
"""Smallest side, in pixels, of the reduced image the perceptual hash is computed from (the hash
itself works on 32x32)."""
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
"""Images above Pillow's decompression-bomb limit (about 89.5 megapixels) are refused undecoded."""
MAX_FILE_BYTES = 512 * 2**20
"""Image files larger than this are refused unread (``file_too_large``): an image within
:data:`MAX_PIXELS` is at most about 270 MB even uncompressed (8-bit RGB), and an index worker holds
one file in memory at a time."""
EXIF_ORIENTATION_TAG = 0x0112
SUPPORTED_FORMATS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "BMP": "bmp", "TIFF": "tif", "WEBP": "webp"}
"""Sniffed Pillow format -> file extension used when staging a dataset."""

# Status values of the image index (``ok`` or the reason the image is rejected).
OK = "ok"
EMPTY = "empty"
UNREADABLE = source_files.UNREADABLE
NOT_AN_IMAGE = "not_an_image"
UNSUPPORTED = "unsupported_format"
CORRUPT = "corrupt"
TOO_SMALL = "too_small"
TOO_LARGE = "too_large"


@dataclass(frozen=True)
class ImageInfo:
    """What inspecting one image file found.

    ``width``/``height`` are pixels in the displayed frame (EXIF orientation applied), ``None`` when
    the header could not be read. ``status`` is :data:`OK` or a rejection code; ``reason`` is a
    sentence for the scientist (also set for accepted images with a remark, e.g. an extension that
    does not match the content).
    """

    format: str | None
    width: int | None
    height: int | None
    exif_orientation: int | None
    mode: str | None
    status: str
    reason: str
    phash: str | None = None
    frames: int = 1


def _orientation(image: Image.Image) -> int | None:
    try:
        value = image.getexif().get(EXIF_ORIENTATION_TAG)
    except Exception:  # malformed EXIF blocks are not a reason to reject pixels
        return None
    return int(value) if isinstance(value, int) else None


TRANSPOSE = {2: [Image.Transpose.FLIP_LEFT_RIGHT], 3: [Image.Transpose.ROTATE_180],
             4: [Image.Transpose.FLIP_TOP_BOTTOM], 5: [Image.Transpose.TRANSPOSE], 6: [Image.Transpose.ROTATE_270],
             7: [Image.Transpose.TRANSVERSE], 8: [Image.Transpose.ROTATE_90]}
"""EXIF orientation -> the transposition that shows the stored pixels upright (EXIF 2.3, tag 0x0112)."""


def _decode(data: bytes, image: Image.Image) -> Image.Image:
    """Decode ``image`` (opened on ``data``; first frame) strictly, raising on any decoder error or
    warning, and return its pixels reduced to about :data:`PHASH_INPUT_SIDE` px on the short side
    (JPEG: libjpeg DCT scaling after a full entropy decode, luma only unless CMYK; other formats:
    a full decode, then Pillow's box reduction)."""
    if image.format in ("JPEG", "MPO"):
        # Grayscale and YCbCr JPEGs are output as their luma (Y) plane: the hash is computed on
        # luminance anyway, and libjpeg then skips colour conversion and chroma upsampling (the
        # chroma coefficients are still entropy-decoded, so strictness is unchanged).
        colorspace = "CMYK" if image.mode == "CMYK" else "GRAY"
        pixels = simplejpeg.decode_jpeg(data, colorspace=colorspace, strict=True,
                                        min_height=PHASH_INPUT_SIDE, min_width=PHASH_INPUT_SIDE)
        if colorspace == "GRAY":
            pixels = pixels[:, :, 0]
        return Image.fromarray(pixels, mode="CMYK" if colorspace == "CMYK" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image.load()
    image = eight_bit(image)
    factor = min(image.size) // PHASH_INPUT_SIDE
    return image.reduce(factor) if factor > 1 and image.mode not in ("P", "PA", "1") else image  # reduce mixes palette indices


def eight_bit(image: Image.Image) -> Image.Image:
    """``image`` with 8-bit channels, for the perceptual hash (Pillow cannot reduce, and clips when
    converting, the wider single-channel modes): 16-bit grayscale (``I;16``, ``I;16B``...) keeps
    its top 8 bits, as OpenCV's ``imread`` gives it to Ultralytics; 32-bit integer (``I``) and
    float (``F``) images are scaled from their own minimum..maximum to 0..255 (NaN as the
    minimum). Other modes are returned as they are."""
    if image.mode.startswith("I;16"):
        return Image.fromarray((np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8))
    if image.mode not in ("I", "F"):
        return image
    values = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(values)
    low, high = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 0.0)
    scaled = np.where(finite, values - low, 0.0) * (255.0 / (high - low) if high > low else 0.0)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def inspect_image(data: bytes, extension: str = "") -> ImageInfo:
    """Sniff, fully decode and measure one image given its bytes.

    ``extension`` (e.g. ``".JPG"``) is only used to report a mismatch with the sniffed format.
    Never raises for bad content: every failure becomes a status and a reason.
    """
    if not data:
        return ImageInfo(None, None, None, None, None, EMPTY, "file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, with a reason
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        return ImageInfo(None, None, None, None, None, TOO_LARGE, f"refused as a decompression bomb: {exc}")
    except UnidentifiedImageError:
        return ImageInfo(None, None, None, None, None, NOT_AN_IMAGE, "the bytes are not an image format Pillow can identify")
    except Exception as exc:
        return ImageInfo(None, None, None, None, None, CORRUPT, f"image header cannot be read: {exc}")

    fmt = image.format or "unknown"
    width, height = image.size
    orientation = _orientation(image)
    mode = image.mode
    remarks: list[str] = []
    if orientation is not None and not 1 <= orientation <= 8:
        remarks.append(f"invalid EXIF orientation {orientation} ignored")
        orientation_applied = 1
    else:
        orientation_applied = orientation or 1
    if orientation_applied in (5, 6, 7, 8):
        width, height = height, width

    def info(status: str, reason: str, phash: str | None = None) -> ImageInfo:
        return ImageInfo(fmt, width, height, orientation, mode, status, "; ".join([reason, *remarks]).strip("; "),
                         phash, getattr(image, "n_frames", 1))

    if width * height > MAX_PIXELS:
        return info(TOO_LARGE, f"{width}x{height} = {width * height:,} pixels exceeds the {MAX_PIXELS:,}-pixel limit "
                               "(decompression-bomb guard; not decoded)")
    if fmt not in SUPPORTED_FORMATS:
        return info(UNSUPPORTED, f"{fmt} images are not supported for YOLO training (use JPEG, PNG, BMP, TIFF or WebP)")
    frames = getattr(image, "n_frames", 1)
    try:
        pixels = _decode(data, image)
    except Image.DecompressionBombError as exc:
        return info(TOO_LARGE, f"refused as a decompression bomb: {exc}")
    except Exception as exc:
        return info(CORRUPT, f"{fmt} data cannot be fully decoded: {exc}")
    if min(width, height) < MIN_SIDE_PX:
        return info(TOO_SMALL, f"{width}x{height} px is below the {MIN_SIDE_PX} px minimum side")
    for step in TRANSPOSE.get(orientation_applied, []):
        pixels = pixels.transpose(step)
    if frames > 1:
        remarks.append(f"{frames} frames: the first is validated and trained on")
    expected_ext = SUPPORTED_FORMATS[fmt]
    ext = extension.lower().lstrip(".")
    if ext and ext not in {expected_ext, "jpeg" if expected_ext == "jpg" else "", "tiff" if expected_ext == "tif" else ""}:
        remarks.append(f"extension .{ext} but the content is {fmt}")
    return info(OK, "", perceptual_hash(pixels))
