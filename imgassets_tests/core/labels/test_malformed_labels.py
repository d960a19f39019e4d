"""Malformed fields in label files are per-line findings naming the file and position; the other
annotations and files of the folder are still processed (nothing crashes the scientist's run)."""

from __future__ import annotations

import json

import pytest

from imgassets.core.labels import checks as label_checks
from imgassets.core.labels.table import build_label_table
from imgassets_tests.conftest import build_image_index, jpeg_bytes

GOOD = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "iscrowd": 0}


def _coco_folder(tmp_path, annotations: list, image: dict | None = None):
    folder = tmp_path / "ana"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg_bytes((64, 48)))
    (folder / "b.jpg").write_bytes(jpeg_bytes((64, 48), color=(9, 9, 200)))
    (folder / "b.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (folder / "classes.txt").write_text("cat\n")
    images = [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48, **(image or {})}]
    (folder / "coco.json").write_text(json.dumps({"images": images, "annotations": [GOOD, *annotations],
                                                  "categories": [{"id": 1, "name": "cat"}]}))
    return folder


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("image_id", [1], "image_id must be an integer, got [1]"),
    ("category_id", {"x": 1}, 'category_id must be an integer, got {"x": 1}'),
    ("bbox", ["a", 1, 2, 3], "bbox must be [x, y, width, height], four numbers"),
    ("bbox", [None, 1, 2, 3], "bbox must be [x, y, width, height], four numbers"),
    ("iscrowd", "yes", 'iscrowd must be 0 or 1, got "yes"'),
    ("category_id", True, "category_id must be an integer, got true"),
])
def test_a_malformed_coco_annotation_is_a_finding_at_its_position(tmp_path, field, value, reason):
    folder = _coco_folder(tmp_path, [{**GOOD, "id": 2, field: value}])
    table = build_label_table(folder, build_image_index(folder))
    findings = label_checks.schema_failures(table)
    assert [(f.file, f.line, f.reason) for f in findings] == [("coco.json", 2, reason)]
    parsed = table[table["parse_error"].isna()]
    assert sorted(zip(parsed["label_file"], parsed["line"], strict=True)) == [("b.txt", 1), ("coco.json", 1)]


def test_an_image_size_given_as_text_is_a_finding(tmp_path):
    folder = _coco_folder(tmp_path, [], image={"width": "640"})
    findings = label_checks.schema_failures(build_label_table(folder, build_image_index(folder)))
    assert [(f.file, f.line, f.reason) for f in findings] == [
        ("coco.json", 1, 'its image\'s width must be a number of pixels, got "640"')]


@pytest.mark.parametrize(("line", "reason"), [
    ("1e20 0.5 0.5 0.2 0.2", "class id 1e20 is out of range (0 to 2147483647)"),
    ("9223372036854775808 0.5 0.5 0.2 0.2", "class id 9223372036854775808 is out of range (0 to 2147483647)"),
    ("-1 0.5 0.5 0.2 0.2", "class id -1 is out of range (0 to 2147483647)"),
    ("0 nan 0.5 0.2 0.2", "non-finite coordinate in '0 nan 0.5 0.2 0.2'"),
    ("0 0.5 inf 0.2 0.2", "non-finite coordinate in '0 0.5 inf 0.2 0.2'"),
])
def test_a_yolo_class_id_or_coordinate_out_of_range_is_a_finding(tmp_path, line, reason):
    folder = tmp_path / "ana"
    folder.mkdir()
    (folder / "classes.txt").write_text("cat\n")
    for name in ("a", "b"):
        (folder / f"{name}.jpg").write_bytes(jpeg_bytes(color=(ord(name), 3, 3)))
    (folder / "a.txt").write_text(f"0 0.5 0.5 0.1 0.1\n{line}\n")
    (folder / "b.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    table = build_label_table(folder, build_image_index(folder))
    assert [(f.file, f.line, f.reason) for f in label_checks.schema_failures(table)] == [("a.txt", 2, reason)]
    assert (table["parse_error"].isna()).sum() == 2
