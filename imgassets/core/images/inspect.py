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
* Quality signals come from the same reduced decode, never a second read: it is kept
  (:attr:`ImageInfo.reduced`) and its luma measured for a batch of images at once (:func:`quality_signals`):
  brightness, contrast, sharpness and entropy. EXIF capture time and camera come from the
  header already parsed for the orientation (:func:`exif_facts`).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime

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
    reduced: Image.Image | None = field(default=None, repr=False, compare=False)
    """The reduced decode (displayed frame, 8-bit), for :func:`quality_signals`; not stored."""
    capture_time: float | None = None
    camera: str | None = None


@dataclass(frozen=True)
class QualitySignals:
    """Measures of an image's pixels, from its reduced luma (:func:`quality_signals`): ``brightness``
    (mean, 0 black .. 1 white), ``contrast`` (RMS contrast: standard deviation, 0..0.5),
    ``sharpness`` (variance of the 4-neighbour Laplacian, the usual blur measure, divided by the
    variance of the luma: the share of fine detail in the image's own contrast, so that a flat scene
    with a few sharp edges is not "blurry"; low is blurry; 0 for a constant image; at the reduced
    scale it sees blur that spans several pixels of the original) and ``entropy``
    (Shannon entropy of the 256-level histogram, bits, 0..8: low is little information)."""

    brightness: float
    contrast: float
    sharpness: float
    entropy: float


LEVELS = np.arange(256, dtype=np.float64)
LEVELS_SQUARED = LEVELS**2


def quality_signals(images: list[Image.Image]) -> list[QualitySignals]:
    """The :class:`QualitySignals` of each of ``images`` (the reduced decodes,
    :attr:`ImageInfo.reduced`), measured on its luma: brightness, contrast and entropy from each 256-level histogram,
    sharpness from the full-resolution Laplacian, both taken at every other row (the statistics of
    half the pixels). Computed for a batch at once, the images of one shape stacked (one histogram
    and one Laplacian for all of them), in 8- and 16-bit integers: the work is memory traffic, and
    it is budgeted at a tenth of the image index (``benchmarks/index_signals.py``)."""
    lumas = [np.asarray(image if image.mode == "L" else image.convert("L")) for image in images]
    signals: list[QualitySignals | None] = [None] * len(lumas)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, luma in enumerate(lumas):
        by_shape.setdefault(luma.shape, []).append(i)
    for shape, members in by_shape.items():
        stack = np.stack([lumas[i] for i in members])
        rows = stack[:, ::2, :]  # every other row: the statistics of half the pixels, half the memory traffic
        count, size = len(members), rows.shape[1] * rows.shape[2]
        # one bincount for every image: image j's levels shifted to j * 256 (uint16 holds 256 images)
        counts = np.empty((count, 256), dtype=np.int64)
        for start in range(0, count, 256):
            part = rows[start:start + 256].reshape(-1, size).astype(np.uint16)
            part += (np.arange(len(part), dtype=np.uint16) * 256)[:, None]
            counts[start:start + len(part)] = np.bincount(part.ravel(), minlength=256 * len(part)).reshape(-1, 256)
        p = counts / size
        mean = p @ LEVELS
        variance = np.maximum(p @ LEVELS_SQUARED - mean * mean, 0.0)
        entropy = -(p * np.log2(p, out=np.zeros_like(p), where=counts > 0)).sum(axis=1)
        sharpness = np.zeros(count)
        if min(shape) > 2:  # at every other row, in 16-bit integers (a Laplacian of 8-bit levels is within +-1020)
            y = stack.astype(np.int16)
            laplacian = y[:, 1:-1:2, :-2] + y[:, 1:-1:2, 2:]
            laplacian += y[:, 0:-2:2, 1:-1]
            laplacian += y[:, 2::2, 1:-1]
            laplacian -= 4 * y[:, 1:-1:2, 1:-1]
            flat = laplacian.reshape(count, -1)
            squares = flat.astype(np.int32)
            squares *= squares
            average = flat.sum(axis=1, dtype=np.int64) / flat.shape[1]
            detail = np.maximum(squares.sum(axis=1, dtype=np.int64) / flat.shape[1] - average * average, 0.0)
            sharpness = np.divide(detail, variance, out=np.zeros(count), where=variance > 0)  # relative to the contrast
        for j, i in enumerate(members):
            signals[i] = QualitySignals(float(mean[j]) / 255, float(np.sqrt(variance[j])) / 255, float(sharpness[j]),
                                        float(entropy[j]))
    return signals


EXIF_IFD = 0x8769
DATE_TIME = 306
DATE_TIME_ORIGINAL = 36867
SUBSEC_TIME_ORIGINAL = 37521
MAKE, MODEL, BODY_SERIAL = 271, 272, 0xA431


def _capture_time(text: object, subsec: object) -> float | None:
    """Seconds of an EXIF ``YYYY:MM:DD HH:MM:SS`` time (with its sub-seconds), read as UTC (EXIF
    times carry no zone: only differences between images of one camera matter), or None."""
    try:
        moment = datetime.strptime(str(text).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    digits = "".join(ch for ch in str(subsec or "") if ch.isdigit())
    return moment.timestamp() + (float(f"0.{digits}") if digits else 0.0)


def exif_facts(image: Image.Image) -> tuple[int | None, float | None, str | None]:
    """(orientation, capture time, camera) from ``image``'s EXIF, each None when absent or malformed:
    the orientation tag (0x0112), ``DateTimeOriginal`` with ``SubSecTimeOriginal`` (else
    ``DateTime``) as :func:`_capture_time` seconds, and ``Make Model`` with the body serial number."""
    try:
        exif = image.getexif()
    except Exception:  # malformed EXIF blocks are not a reason to reject pixels
        return None, None, None
    value = exif.get(EXIF_ORIENTATION_TAG)
    orientation = int(value) if isinstance(value, int) else None
    if not exif:
        return orientation, None, None
    try:
        sub = exif.get_ifd(EXIF_IFD)
    except Exception:
        sub = {}
    when = _capture_time(sub.get(DATE_TIME_ORIGINAL) or exif.get(DATE_TIME), sub.get(SUBSEC_TIME_ORIGINAL)) \
        if (sub.get(DATE_TIME_ORIGINAL) or exif.get(DATE_TIME)) else None
    camera = " ".join(str(v).strip("\x00 ") for v in (exif.get(MAKE), exif.get(MODEL), sub.get(BODY_SERIAL)) if v)
    return orientation, when, camera or None


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
    orientation, capture_time, camera = exif_facts(image)
    mode = image.mode
    remarks: list[str] = []
    if orientation is not None and not 1 <= orientation <= 8:
        remarks.append(f"invalid EXIF orientation {orientation} ignored")
        orientation_applied = 1
    else:
        orientation_applied = orientation or 1
    if orientation_applied in (5, 6, 7, 8):
        width, height = height, width

    def info(status: str, reason: str, phash: str | None = None, reduced: Image.Image | None = None) -> ImageInfo:
        return ImageInfo(fmt, width, height, orientation, mode, status, "; ".join([reason, *remarks]).strip("; "),
                         phash, getattr(image, "n_frames", 1), reduced, capture_time, camera)

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
    return info(OK, "", perceptual_hash(pixels), pixels)
