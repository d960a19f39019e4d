"""The fast validation path is exactly as strict as a full decode.

``inspect_image`` entropy-decodes every JPEG coefficient in strict mode but runs the inverse DCT at
a reduced scale (see :mod:`imgassets.core.images.inspect`). These tests corrupt real JPEGs byte by byte
and by truncation, baseline and progressive, and assert that the image index rejects a file
exactly when a strict full-resolution decode (libjpeg-turbo, warnings as errors) does: a faster
path that let one corrupt file through would fail here.
"""

from __future__ import annotations

import random

import pytest
import simplejpeg

from imgassets.core.images import inspect as imaging
from imgassets_tests.conftest import jpeg_bytes, shared_data_dir


def _full_decode_rejects(data: bytes) -> bool:
    try:
        simplejpeg.decode_jpeg(data, strict=True)
    except ValueError:
        return True
    return False


def _sources() -> list[tuple[str, bytes]]:
    coco = sorted((shared_data_dir() / "coco128" / "images" / "train2017").glob("*.jpg"))[:2]
    return [("baseline 640x480", jpeg_bytes((640, 480))), ("progressive 320x240", jpeg_bytes((320, 240), progressive=True)),
            *[(f"coco128 {p.name}", p.read_bytes()) for p in coco]]


def _corruptions(data: bytes, count: int, seed: int) -> list[bytes]:
    """Single-byte changes and truncations spread over the entropy-coded data (after the SOS header)."""
    rng = random.Random(seed)
    start = data.index(b"\xff\xda") + 20
    variants = []
    for _ in range(count):
        at = rng.randrange(start, len(data) - 2)
        changed = bytearray(data)
        changed[at] ^= 1 << rng.randrange(8)
        variants.append(bytes(changed))
        cut = rng.randrange(start, len(data) - 2)
        variants.append(data[:cut])
        variants.append(data[:cut] + b"\xff\xd9")
    return variants


@pytest.mark.parametrize("name,data", _sources(), ids=lambda v: v if isinstance(v, str) else "")
def test_index_rejects_exactly_what_a_full_strict_decode_rejects(name, data):
    variants = _corruptions(data, 40, seed=len(data))
    disagreements = []
    rejected = 0
    for i, variant in enumerate(variants):
        full = _full_decode_rejects(variant)
        info = imaging.inspect_image(variant, ".jpg")
        ours = info.status != imaging.OK
        rejected += ours
        if full != ours:
            disagreements.append((i, full, info.status, info.reason))
    assert disagreements == [], f"{name}: fast path and full decode disagree on {disagreements[:5]}"
    assert rejected >= len(variants) // 3, f"{name}: too few corruptions were harmful to prove anything ({rejected})"


def test_phash_from_the_reduced_decode_matches_the_full_resolution_phash_closely():
    from PIL import Image

    from imgassets.core.images.duplicates import hamming, perceptual_hash

    for _, data in _sources():
        reduced = imaging.inspect_image(data, ".jpg").phash
        import io

        full = perceptual_hash(Image.open(io.BytesIO(data)).convert("RGB"))
        assert hamming(reduced, full) <= 4
