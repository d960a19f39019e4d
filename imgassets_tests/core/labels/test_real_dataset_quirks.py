"""Every quirk SOURCES.md lists for coco128 and books_roboflow, asserted as reported (bccd_voc and
deepforest are in test_voc_coco.py; the pipeline test covers coco128's background images)."""

from __future__ import annotations

import pytest

from imgassets.core.labels import checks as label_checks
from imgassets.core.labels.report import data_yaml_findings, quality_report, report_markdown
from imgassets.core.labels.table import build_label_table
from imgassets_tests.conftest import build_image_index, shared_data_dir


@pytest.fixture(scope="module")
def books():
    folder = shared_data_dir() / "books_roboflow"
    index = build_image_index(folder)
    return folder, index, build_label_table(folder, index)


@pytest.fixture(scope="module")
def coco():
    folder = shared_data_dir() / "coco128"
    index = build_image_index(folder)
    return folder, index, build_label_table(folder, index)


def test_books_data_yaml_points_at_missing_valid_and_test(books):
    folder, index, _ = books
    assert [f.reason for f in data_yaml_findings(folder, index)] == [
        "val: ../valid/images does not exist in this folder (ignored: imgassets makes its own split)",
        "test: ../test/images does not exist in this folder (ignored: imgassets makes its own split)"]


def test_books_labels_without_trailing_newline_parse_and_empty_files_are_backgrounds(books):
    folder, index, table = books
    label_files = sorted((folder / "train" / "labels").glob("*.txt"))
    no_newline = [p for p in label_files if p.read_bytes() and not p.read_bytes().endswith(b"\n")]
    empty = [p for p in label_files if not p.read_text().strip()]
    assert len(no_newline) > len(label_files) / 2 and len(empty) == 9
    assert label_checks.schema_failures(table) == []
    report = quality_report("books", folder, index, table)
    assert report["images"]["background"] == 9 and report["images"]["valid"] == 342
    assert "label review" not in report_markdown(report)
    finding = {"file": "train/labels/a.txt", "line": 1, "kind": "missing box", "confidence": 0.9, "reason": "r"}
    reviewed = quality_report("books", folder, index, table, review=([finding, finding], "model m1 (dataset d1)"))
    assert reviewed["label_review"]["count"] == 2
    assert "label review by model m1 (dataset d1): the model disagrees with 2 label(s)" in report_markdown(reviewed)


def test_books_edge_touching_boxes_are_accepted(books):
    _, _, table = books
    right = table["x_center"] + table["width"] / 2
    left = table["x_center"] - table["width"] / 2
    touching = ((right >= 0.999) | (left <= 0.001)).sum()
    assert touching > 100
    assert label_checks.geometry_failures(table) == []


def test_coco128_grayscale_jpegs_are_accepted_and_described(coco):
    _, index, _ = coco
    gray = index[(index["kind"] == "image") & (index["mode"] == "L")]
    assert len(gray) >= 1 and set(gray["status"]) == {"ok"} and set(gray["format"]) == {"JPEG"}


def test_coco128_label_files_without_images_are_reported(coco):
    folder, _, table = coco
    images = {p.stem for p in (folder / "images" / "train2017").iterdir()}
    expected = {f"labels/train2017/{p.name}" for p in (folder / "labels" / "train2017").iterdir() if p.stem not in images}
    assert {f.file for f in label_checks.orphan_label_files(table)} == expected and len(expected) == 2
