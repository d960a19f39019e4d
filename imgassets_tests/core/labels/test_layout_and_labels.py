"""File classification, label pairing, YOLO parsing and class maps: plain parametrized functions."""

from __future__ import annotations

import pandas as pd
import pytest

from imgassets.core.drive import layout
from imgassets.core.images.index import path_kinds, previous_positions
from imgassets.core.labels.class_map import (
    ClassMapError,
    class_maps_by_folder,
    folder_class_map,
    parse_classes_txt,
    parse_data_yaml,
    read_class_map,
)
from imgassets.core.labels.formats.yolo import parse_yolo_line, parse_yolo_text


@pytest.mark.parametrize("path,kind", [
    ("images/a.jpg", "image"), ("x/Photo 1.JPG", "image"), ("b.TIFF", "image"), ("c.webp", "image"),
    ("labels/a.txt", "label"), ("deep/labels/train/a.txt", "label"), ("x/Photo 1.txt", "label"),
    ("data.yaml", "class_map"), ("x/classes.txt", "class_map"), ("darknet/obj.names", "class_map"), ("README.dataset.txt", "other"),
    ("notes/todo.txt", "other"), ("x/README.txt", "other"), ("notes.md", "other"),
])
def test_classify_paths(path, kind):
    paths = [path, "x/Photo 1.JPG"]
    assert layout.classify_paths(paths)[path] == kind


_BEFORE = ["images/a.jpg", "labels/a.txt", "notes/todo.txt", "notes/scan.xml", "x/b.png", "x/b.txt", "x/b.xml",
           "data.yaml", "README.txt", "c.csv"]


@pytest.mark.parametrize("after", [
    _BEFORE,  # nothing changed
    [*_BEFORE, "images/new.jpg", "labels/new.txt", "more/readme.txt"],  # new files in folders that had images or none
    [*_BEFORE, "notes/photo.jpg"],  # notes/ gains its first image: its .txt and .xml become labels
    [p for p in _BEFORE if p != "x/b.png"],  # x/ loses its last image: its .txt and .xml are other files
    [p for p in _BEFORE if p not in ("x/b.png", "labels/a.txt")] + ["x/c.jpeg"],  # one image replaced by another
    ["images/a.jpg"],  # almost everything gone
], ids=["same", "new-files", "first-image", "last-image-gone", "image-replaced", "emptied"])
def test_kinds_carried_from_a_previous_index_equal_classifying_afresh(after):
    assert _carried_kinds(after, _index_of(_BEFORE)) == layout.classify_paths(after)


def test_carried_kinds_equal_classifying_afresh_over_random_changes():
    import random
    rng = random.Random(7)
    universe = [f"{d}/{n}{e}" for d in ("images", "labels", "x", "x/y", "notes", "Annotations")
                for n in ("a", "b") for e in (".jpg", ".txt", ".xml", ".csv", ".md")]
    paths = sorted(rng.sample(universe, 20))
    index = _index_of(paths)
    for _ in range(200):
        paths = sorted(set(paths) ^ set(rng.sample(universe, rng.randint(1, 6))))
        kinds = _carried_kinds(paths, index)
        assert kinds == layout.classify_paths(paths)
        index = pd.DataFrame({"path": list(kinds), "kind": list(kinds.values())})


def _index_of(paths: list[str]) -> pd.DataFrame:
    """The path and kind columns of an image index of ``paths``."""
    kinds = layout.classify_paths(paths)
    return pd.DataFrame({"path": list(kinds), "kind": list(kinds.values())})


def _carried_kinds(paths: list[str], previous: pd.DataFrame) -> dict[str, str]:
    """``path_kinds`` of ``paths`` against the ``previous`` index, as ``{path: kind}``."""
    return dict(zip(paths, path_kinds(paths, previous_positions(previous, paths), previous), strict=True))


@pytest.mark.parametrize("image,expected", [
    ("images/train/a.jpg", ["labels/train/a.txt", "images/train/a.txt"]),
    ("set/images/x/images/b.png", ["set/images/x/labels/b.txt", "set/images/x/images/b.txt"]),
    ("flat/c d.JPG", ["flat/c d.txt"]),
])
def test_label_candidates_follow_ultralytics_img2label_paths(image, expected):
    for candidate in expected:  # each candidate folder pairs the label with the image
        assert layout.pair_labels([image], [candidate]) == {candidate: image}
    assert layout.pair_labels([image], ["elsewhere/" + expected[0].rpartition("/")[2]]) == {}


def test_pair_labels_finds_sibling_layout_beside_and_orphans():
    images = ["images/a.jpg", "images/b.jpg", "flat/c.png"]
    labels = ["labels/a.txt", "labels/zzz.txt", "flat/c.txt"]
    paired = layout.pair_labels(images, labels)
    assert paired == {"labels/a.txt": "images/a.jpg", "flat/c.txt": "flat/c.png"}
    assert set(labels) - set(paired) == {"labels/zzz.txt"}  # orphan
    assert set(images) - set(paired.values()) == {"images/b.jpg"}  # background image


@pytest.mark.parametrize("text,expected", [
    ("0 0.5 0.5 0.2 0.1", (0, 0.5, 0.5, 0.2, 0.1, None)),
    ("3\t0.1  0.2 0.3 0.4", (3, 0.1, 0.2, 0.3, 0.4, None)),
    ("1.0 0.5 0.5 0.2 0.1", (1, 0.5, 0.5, 0.2, 0.1, None)),
])
def test_parse_yolo_line_valid(text, expected):
    row = parse_yolo_line(text, 1)
    assert (row.class_id, *row.box, row.error) == expected and row.polygon is None


@pytest.mark.parametrize("text,reason", [
    ("0 0.5 0.5 0.2", "got 4 columns"),
    ("0 0.1 0.1 0.2 0.1 0.2", "got 6 columns"),
    ("0 0.1 0.1 0.2 0.1 inf 0.2", "non-finite coordinate"),
    ("cat 0.5 0.5 0.2 0.1", "non-numeric value"),
    ("1.5 0.5 0.5 0.2 0.1", "class id 1.5 is not an integer"),
])
def test_parse_yolo_line_errors_name_the_reason(text, reason):
    row = parse_yolo_line(text, 7)
    assert row.line == 7 and reason in row.error


def test_parse_yolo_text_handles_bom_crlf_blank_lines_and_no_trailing_newline():
    rows = parse_yolo_text("\ufeff0 0.5 0.5 0.2 0.1\r\n\r\n  \r\n1 0.2 0.2 0.1 0.1")
    assert [(r.line, r.class_id, r.error) for r in rows] == [(1, 0, None), (4, 1, None)]


@pytest.mark.parametrize("text,expected", [
    ("names: [a, b, c]", {0: "a", 1: "b", 2: "c"}),
    ("names:\n  0: person\n  2: car\n", {0: "person", 2: "car"}),
    ("nc: 2\nnames: ['x', 'y']\n", {0: "x", 1: "y"}),
])
def test_parse_data_yaml_list_and_dict(text, expected):
    assert parse_data_yaml(text, "data.yaml") == expected


@pytest.mark.parametrize("text,reason", [
    ("train: images\n", "no 'names' list or dict"),
    ("nc: 3\nnames: [a, b]\n", "nc is 3 but 2 names"),
    ("names: {a: 1}\n", "keys must be integer"),
    ("names: [a, b\n", "not valid YAML"),
])
def test_parse_data_yaml_errors_name_the_file(text, reason):
    with pytest.raises(ClassMapError, match="sub/data.yaml") as err:
        parse_data_yaml(text, "sub/data.yaml")
    assert reason in str(err.value)


def test_parse_classes_txt():
    assert parse_classes_txt("\ufeffcat\r\ndog\n\n") == {0: "cat", 1: "dog"}


def test_obj_names_is_a_class_map(tmp_path):
    (tmp_path / "obj.names").write_text("car\nbus\n")
    assert read_class_map(tmp_path, "obj.names") == {0: "car", 1: "bus"}


def test_the_class_map_of_a_folder_is_the_closest_one_and_data_yaml_first():
    by_folder = class_maps_by_folder(["data.yaml", "a/classes.txt", "a/data.yaml", "b/classes.txt"])
    assert folder_class_map("a/labels", by_folder) == "a/data.yaml"
    assert folder_class_map("b", by_folder) == "b/classes.txt"
    assert folder_class_map("c/d", by_folder) == "data.yaml"
    assert folder_class_map(".", class_maps_by_folder(["a/data.yaml"])) is None
