"""The Arrow pairing of label files to images gives exactly the pairs of ``layout.pair_labels``."""

import random

import pytest

from imgassets.core.drive import layout
from imgassets.core.labels.pairing import label_images

_FOLDERS = ["", "images", "labels", "images/train", "labels/train", "set/images/x/images", "set/images/x/labels",
            "set/labels/x/images", "flat", "flat/sub", "Images", "a.b"]
_STEMS = ["a", "b", "a.b", "c d", ".hidden", "x.", "img_000001", "é"]
_IMAGE_EXT = [".jpg", ".JPG", ".png", ".jpeg", ".tif"]


def _path(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _random_tree(rng: random.Random) -> tuple[list[str], list[str]]:
    images = {_path(rng.choice(_FOLDERS), rng.choice(_STEMS) + rng.choice(_IMAGE_EXT)) for _ in range(rng.randint(0, 40))}
    labels = {_path(rng.choice(_FOLDERS), rng.choice(_STEMS) + rng.choice([".txt", ".txt", ".TXT", ".xml"]))
              for _ in range(rng.randint(0, 40))}
    return sorted(images), sorted(labels)


def _as_dict(images: list[str], labels: list[str]) -> dict[str, str]:
    paired = label_images(images, labels).to_pylist()
    return {label: image for label, image in zip(labels, paired, strict=True) if image is not None}


@pytest.mark.parametrize("seed", range(200))
def test_random_trees_pair_as_pair_labels(seed):
    images, labels = _random_tree(random.Random(seed))
    rng = random.Random(seed + 1)
    rng.shuffle(images)  # the rule orders images by path itself
    assert _as_dict(images, labels) == layout.pair_labels(images, labels)


def test_images_competing_for_one_label_pair_as_pair_labels():
    images = ["images/a.jpg", "images/a.png", "images/a.tif"]  # all name labels/a.txt first, then images/a.txt
    labels = ["labels/a.txt", "images/a.txt", "labels/b.txt"]
    expected = {"labels/a.txt": "images/a.jpg", "images/a.txt": "images/a.png"}
    assert layout.pair_labels(images, labels) == expected
    assert _as_dict(images, labels) == expected


def test_a_line_break_in_a_path_is_paired_by_the_rule_itself():
    images, labels = ["x\ny/a.jpg", "b.jpg"], ["x\ny/a.txt", "b.txt", "c.txt"]
    assert _as_dict(images, labels) == {"x\ny/a.txt": "x\ny/a.jpg", "b.txt": "b.jpg"}


def test_no_images_or_no_labels_leaves_every_label_an_orphan():
    assert label_images([], ["a.txt"]).to_pylist() == [None]
    assert label_images(["a.jpg"], []).to_pylist() == []
