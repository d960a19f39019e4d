"""Duplicates, near-duplicates, label conflicts and leakage-free, stable splits."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imgassets.core.images.duplicates import duplicate_report, groups, hamming, near_duplicate_pairs, perceptual_hash
from imgassets.core.images.index import valid_images
from imgassets.core.images.inspect import inspect_image
from imgassets.core.store.hashing import sha256_bytes
from imgassets.core.versioning.dataset import merge_snapshots
from imgassets.core.versioning.leakage import split_leaks
from imgassets_tests.conftest import build_image_index, noise_image, shared_data_dir


def _image(seed: int, quality: int = 90, size=(96, 96)) -> bytes:
    buffer = io.BytesIO()
    noise_image((12, 12), seed).resize(size, Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _row(data: bytes, path: str, boxes=None) -> dict:
    info = inspect_image(data, ".jpg")
    return {"sha256": sha256_bytes(data), "path": path, "size_bytes": len(data), "format": "JPEG",
            "width": info.width, "height": info.height, "phash": info.phash,
            "boxes": boxes if boxes is not None else [{"class_name": "cat", "class_id": 0, "x_center": 0.5,
                                                       "y_center": 0.5, "width": 0.2, "height": 0.2}]}


def test_perceptual_hash_is_the_hex_imagehash_prints_for_its_phash():
    """Stored hashes stay comparable with those written before: the hex is ``str(imagehash.phash)``,
    on images whose hashes cover many bit patterns (leading zero digits included)."""
    import imagehash
    import numpy as np

    rng = np.random.default_rng(7)
    images = [Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)) for h, w in rng.integers(8, 90, (300, 2))]
    images += [Image.new("L", (40, 30), 0), Image.new("L", (40, 30), 255), noise_image((12, 12), 3).convert("RGB")]
    hashes = [perceptual_hash(image) for image in images]
    assert hashes == [str(imagehash.phash(image)) for image in images]
    assert all(len(h) == 16 for h in hashes) and any(h.startswith("0") for h in hashes)


def test_recompressed_copy_is_a_near_duplicate_and_a_different_image_is_not():
    original, recompressed, other = _image(1, 95), _image(1, 60), _image(2)
    a, b, c = (inspect_image(d, ".jpg").phash for d in (original, recompressed, other))
    assert sha256_bytes(original) != sha256_bytes(recompressed)
    assert hamming(a, b) <= 6 < hamming(a, c)
    assert [(x, y) for x, y, _ in near_duplicate_pairs({"a": a, "b": b, "c": c})] == [("a", "b")]


@pytest.mark.parametrize(("seed", "max_distance"), [(s, d) for s in range(6) for d in (0, 3, 6, 7, 11)])
def test_the_index_finds_exactly_the_pairs_brute_force_finds(seed, max_distance):
    """Random hashes and variants at every distance up to 14 bits: the multi-index search misses no
    pair within ``max_distance`` and reports none beyond it."""
    import random

    rng = random.Random(seed)
    base = [rng.getrandbits(64) for _ in range(60)]
    values = []
    for h in base:
        values.append(h)
        for _ in range(3):
            variant = h
            for bit in rng.sample(range(64), rng.randint(0, 14)):
                variant ^= 1 << bit
            values.append(variant)
    hashes = {f"k{i:03d}": f"{v:016x}" for i, v in enumerate(values)}
    brute = sorted((a, b, hamming(hashes[a], hashes[b])) for a in hashes for b in hashes
                   if a < b and hamming(hashes[a], hashes[b]) <= max_distance)
    assert near_duplicate_pairs(hashes, max_distance) == brute and brute


def test_groups_are_connected_components():
    assert groups(["a", "b", "c", "d"], [("a", "b", 1), ("b", "c", 2)]) == {"a": "a", "b": "a", "c": "a", "d": "d"}


def test_duplicate_report_within_a_scientist():
    report = duplicate_report([("x/1.jpg", "s1", "ffff000000000000"), ("y/1 copy.jpg", "s1", "ffff000000000000"),
                               ("z/2.jpg", "s2", "ffff000000000001"), ("w/3.jpg", "s3", "0000ffffffff0000")])
    assert report == [("y/1 copy.jpg", "exact duplicate of x/1.jpg (same SHA-256)"),
                      ("z/2.jpg", "near-duplicate of x/1.jpg (perceptual hash distance 1)")]


def test_deepforest_same_scene_as_tif_and_png_is_one_group():
    folder = shared_data_dir() / "deepforest"
    index = valid_images(build_image_index(folder)).set_index("path")
    tif, png = index.loc["OSBS_029.tif"], index.loc["OSBS_029.png"]
    assert tif["sha256"] != png["sha256"] and hamming(tif["phash"], png["phash"]) <= 6
    report = dict(duplicate_report(list(zip(index.index, index["sha256"], index["phash"], strict=True))))
    assert report["OSBS_029.tif"].startswith("near-duplicate of OSBS_029.png")


def test_near_duplicates_share_a_split_and_splits_are_stable_across_versions():
    ana = [_row(_image(i), f"a{i}.jpg") for i in range(30)]
    v1 = merge_snapshots({"ana": ("s1", ana)}, 0.3)
    assert split_leaks(v1.records) == []
    previous = {r["sha256"]: r["split"] for r in v1.records}
    val_seed = next(i for i, r in enumerate(ana) if previous[r["sha256"]] == "val")
    train_seed = next(i for i, r in enumerate(ana) if previous[r["sha256"]] == "train")
    ben = [_row(_image(val_seed, 60), "copy-of-val.jpg"), _row(_image(train_seed, 60), "copy-of-train.jpg")]
    ben += [_row(_image(100 + i), f"b{i}.jpg") for i in range(30)]
    v2 = merge_snapshots({"ana": ("s1", ana), "ben": ("s2", ben)}, 0.3, previous)
    split = {r["path"]: r["split"] for r in v2.records}
    assert all(split[r["path"]] == previous[r["sha256"]] for r in ana)  # nothing moved
    assert split["copy-of-val.jpg"] == "val" and split["copy-of-train.jpg"] == "train"
    assert split_leaks(v2.records) == [] and len(v2.near_duplicates) >= 2


def test_split_leaks_names_a_pair_across_splits():
    rows = [{**_row(_image(5, 95), "a.jpg"), "scientist": "ana", "split": "train"},
            {**_row(_image(5, 60), "b.jpg"), "scientist": "ben", "split": "val"}]
    leaks = split_leaks(rows)
    assert len(leaks) == 1
    assert "ana/a.jpg (train)" in leaks[0] and "ben/b.jpg (val)" in leaks[0] and "are near-duplicates" in leaks[0]


def test_exact_duplicates_with_conflicting_labels_are_reported():
    data = _image(9)
    other = {"class_name": "dog", "class_id": 0, "x_center": 0.3, "y_center": 0.3, "width": 0.1, "height": 0.1}
    dataset = merge_snapshots({"ana": ("s1", [_row(data, "x.jpg"), _row(_image(10), "y.jpg")]),
                               "ben": ("s2", [_row(data, "same.jpg", [other])])})
    assert dataset.duplicates_dropped == 1
    assert dataset.label_conflicts == [{"sha256": sha256_bytes(data), "kept": "ana/x.jpg", "dropped": "ben/same.jpg"}]


def test_class_id_conflicts_across_scientists_are_reported():
    cat = {"class_name": "cat", "class_id": 0, "x_center": 0.5, "y_center": 0.5, "width": 0.2, "height": 0.2}
    square = {**cat, "class_name": "square"}
    dataset = merge_snapshots({"ana": ("s1", [_row(_image(1), "a.jpg", [cat])]),
                               "ben": ("s2", [_row(_image(2), "b.jpg", [square])])})
    assert dataset.class_id_conflicts == [{"class_id": 0, "names": {"ana": ["cat"], "ben": ["square"]}}]
    assert dataset.class_names == ["cat", "square"]


@pytest.mark.parametrize("distance", [-1, 12, 20])
def test_the_search_refuses_distances_it_cannot_guarantee(distance):
    with pytest.raises(ValueError, match="max_distance must be between 0 and 11"):
        near_duplicate_pairs({"a": "0" * 16, "b": "f" * 16}, distance)
