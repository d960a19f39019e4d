"""The one pairing rule (``layout.pair_labels``, Ultralytics' ``img2label_paths`` then beside the
image): competing images, odd names, any input order."""

import random

import pytest

from imgassets.core.drive import layout

_FOLDERS = ["", "images", "labels", "images/train", "labels/train", "set/images/x/images", "set/images/x/labels",
            "set/labels/x/images", "flat", "flat/sub", "Images", "a.b"]
_STEMS = ["a", "b", "a.b", "c d", ".hidden", "x.", "img_000001", "é"]
_IMAGE_EXT = [".jpg", ".JPG", ".png", ".jpeg", ".tif"]


def _path(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


@pytest.mark.parametrize("seed", range(50))
def test_the_pairs_do_not_depend_on_the_order_of_the_inputs(seed):
    rng = random.Random(seed)
    images = sorted({_path(rng.choice(_FOLDERS), rng.choice(_STEMS) + rng.choice(_IMAGE_EXT)) for _ in range(30)})
    labels = sorted({_path(rng.choice(_FOLDERS), rng.choice(_STEMS) + ".txt") for _ in range(30)})
    expected = layout.pair_labels(images, labels)
    rng.shuffle(images)
    rng.shuffle(labels)
    assert layout.pair_labels(images, labels) == expected
    assert len(set(expected.values())) == len(expected)  # an image takes one label at most


def test_images_competing_for_one_label_pair_by_path():
    images = ["images/a.jpg", "images/a.png", "images/a.tif"]  # all name labels/a.txt first, then images/a.txt
    labels = ["labels/a.txt", "images/a.txt", "labels/b.txt"]
    assert layout.pair_labels(images, labels) == {"labels/a.txt": "images/a.jpg", "images/a.txt": "images/a.png"}


def test_a_line_break_in_a_path_is_paired_like_any_character():
    images, labels = ["x\ny/a.jpg", "b.jpg"], ["x\ny/a.txt", "b.txt", "c.txt"]
    assert layout.pair_labels(images, labels) == {"x\ny/a.txt": "x\ny/a.jpg", "b.txt": "b.jpg"}


def test_no_images_or_no_labels_pairs_nothing():
    assert layout.pair_labels([], ["a.txt"]) == {}
    assert layout.pair_labels(["a.jpg"], []) == {}
