"""The label table of a planted folder and every finding the checks report on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgassets.core.labels import checks as label_checks
from imgassets.core.labels.table import LabelTableSchema, build_label_table
from imgassets_tests.conftest import build_image_index, jpeg_bytes


def _folder(tmp_path: Path, labels: dict[str, str], class_map: str | None = "names: [cat, dog]\n") -> Path:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for stem in ("a", "b", "c"):
        (tmp_path / "images" / f"{stem}.jpg").write_bytes(jpeg_bytes())
    for name, text in labels.items():
        (tmp_path / "labels" / name).write_text(text)
    if class_map is not None:
        (tmp_path / "data.yaml").write_text(class_map)
    return tmp_path


def _table(folder: Path):
    return build_label_table(folder, build_image_index(folder))


def test_valid_labels_pass_every_check_and_the_schema(tmp_path):
    folder = _folder(tmp_path, {"a.txt": "0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.2 0.2", "b.txt": ""})
    table = _table(folder)
    assert len(table) == 2
    assert list(table["class_name"]) == ["cat", "dog"]
    assert set(table["image_path"]) == {"images/a.jpg"}
    LabelTableSchema.validate(table)
    assert label_checks.blocking_findings(table) == []
    assert label_checks.orphan_label_files(table) == []


@pytest.mark.parametrize("line,check,reason", [
    ("0 0.5 0.5 0 0.2", "geometry_failures", "zero-area box"),
    ("0 0.95 0.5 0.2 0.2", "geometry_failures", "box outside the image: x 0.8500..1.0500"),
    ("0 0.5 0.5 1.2 0.2", "schema_failures", "width = 1.2 fails less_than_or_equal_to(1)"),
    ("0 0.5 0.5 0.2", "schema_failures", "expected 5 columns"),
    ("7 0.5 0.5 0.2 0.2", "class_map_failures", "class id 7 is not in the class map data.yaml"),
])
def test_each_fault_is_found_with_file_line_and_reason(tmp_path, line, check, reason):
    folder = _folder(tmp_path, {"a.txt": "0 0.5 0.5 0.2 0.2\n" + line + "\n"})
    findings = getattr(label_checks, check)(_table(folder))
    assert len(findings) == 1
    assert (findings[0].file, findings[0].line) == ("labels/a.txt", 2)
    assert reason in findings[0].reason


def test_a_table_with_other_dtypes_is_coerced_and_gets_the_same_findings(tmp_path):
    folder = _folder(tmp_path, {"a.txt": "0 0.5 0.5 1.2 0.2\n0 0.5 0.5 0.2\n9 0.5 0.5 0.2 0.2\n"})
    table = _table(folder)
    loose = table.astype(object)  # e.g. a table read back by another tool
    assert label_checks.schema_failures(loose) == label_checks.schema_failures(table) != []
    assert loose.dtypes.eq(object).all()  # validated on a copy: the caller's table is not converted


def test_a_column_whose_dtype_differs_gets_the_full_schema_with_its_dtype_check(tmp_path):
    table = _table(_folder(tmp_path, {"a.txt": "0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.2 0.2\n"}))
    assert label_checks.schema_failures(table) == []
    table["x_center"] = table["x_center"].astype(object)
    table.loc[1, "x_center"] = "wide"  # not a number: the typed fast path must not take this table
    findings = label_checks.schema_failures(table)
    assert (findings[0].file, findings[0].line) == ("labels/a.txt", 2)
    assert findings[0].reason == "x_center = wide fails coerce_dtype('float64')"


def test_edge_touching_boxes_within_rounding_tolerance_pass(tmp_path):
    folder = _folder(tmp_path, {"a.txt": "0 0.5 0.5 1.0000005 1\n0 0.100000 0.100000 0.200001 0.2\n"})
    assert label_checks.geometry_failures(_table(folder)) == []


def test_missing_class_map_is_reported(tmp_path):
    folder = _folder(tmp_path, {"a.txt": "0 0.5 0.5 0.2 0.2\n"}, class_map=None)
    findings = label_checks.class_map_failures(_table(folder))
    assert [f.reason for f in findings] == ["class id 0 has no name: no data.yaml or classes.txt in this folder or above"]


def test_broken_class_map_is_a_schema_finding_naming_the_file(tmp_path):
    folder = _folder(tmp_path, {"a.txt": "0 0.5 0.5 0.2 0.2\n"}, class_map="nc: 5\nnames: [cat]\n")
    findings = label_checks.schema_failures(_table(folder))
    assert any(f.file == "data.yaml" and "nc is 5 but 1 names" in f.reason for f in findings)


def test_orphan_label_file_is_reported_once(tmp_path):
    folder = _folder(tmp_path, {"zzz.txt": "0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n"})
    findings = label_checks.orphan_label_files(_table(folder))
    assert [f.file for f in findings] == ["labels/zzz.txt"]
    assert label_checks.blocking_findings(_table(folder)) == []
