"""The label table of a later run reuses the rows of unchanged YOLO files and equals a full rebuild."""

from __future__ import annotations

import hashlib
import io

import pandas as pd
import pytest

from imgassets.core.images.index import update_image_index
from imgassets.core.labels import table as label_module
from imgassets.core.labels.table import build_label_table
from imgassets.core.labels.yolo_sources import EMPTY_YOLO_FILES, empty_files
from imgassets_tests.conftest import jpeg_bytes


def _folder(tmp_path, count=6):
    folder = tmp_path / "ana"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    (folder / "data.yaml").write_text("names: [cat, dog]\n")
    for i in range(count):
        (folder / "images" / f"{i}.jpg").write_bytes(jpeg_bytes(color=(i, 80, 80)))
        (folder / "labels" / f"{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.2 0.{i + 1}\n1 0.3 0.3 0.1 0.1\n")
    # image 0's boxes given a second time, in a box CSV (64x48 px): the YOLO rows are superseded
    (folder / "boxes.csv").write_text("image_path,xmin,ymin,xmax,ymax,label\n"
                                      "images/0.jpg,25.6,21.6,38.4,26.4,cat\nimages/0.jpg,16,12,22.4,16.8,dog\n")
    return folder


def _parsed_files(monkeypatch) -> list[str]:
    parsed: list[str] = []
    real = label_module._yolo_rows
    monkeypatch.setattr(label_module, "_yolo_rows", lambda ctx, f, *a: parsed.append(f) or real(ctx, f, *a))
    return parsed


def _rebuilt(folder, index, previous, monkeypatch) -> tuple[pd.DataFrame, list[str]]:
    parsed = _parsed_files(monkeypatch)
    incremental = build_label_table(folder, index, previous)
    monkeypatch.undo()
    full = build_label_table(folder, index)
    pd.testing.assert_frame_equal(incremental, full)  # same as a full rebuild
    assert incremental.attrs == full.attrs
    return incremental, sorted(parsed)


def test_only_changed_yolo_files_are_parsed_again(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    first = update_image_index(folder, workers=1)
    table = build_label_table(folder, first.index)
    assert table["superseded_by"].notna().sum() == 2 and table["label_sha256"].notna().all()

    same, parsed = _rebuilt(folder, first.index, table, monkeypatch)
    assert parsed == [] and same["superseded_by"].notna().sum() == 2

    (folder / "labels" / "1.txt").write_text("0 0.5 0.5 0.9 0.9\n")                     # edited label
    (folder / "images" / "2.jpg").write_bytes(jpeg_bytes(color=(1, 2, 3)))                # re-exported image
    (folder / "images" / "6.jpg").write_bytes(jpeg_bytes(color=(6, 6, 6)))                # new pair
    (folder / "labels" / "6.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (folder / "images" / "3.jpg").unlink()                                                # its label is orphaned
    (folder / "boxes.csv").write_text("image_path,xmin,ymin,xmax,ymax,label\nimages/0.jpg,1,1,9,9,cat\n")  # disagrees
    second = update_image_index(folder, first.index, workers=1)
    changed, parsed = _rebuilt(folder, second.index, table, monkeypatch)
    assert parsed == ["labels/1.txt", "labels/2.txt", "labels/3.txt", "labels/6.txt"]
    assert changed.loc[changed["label_file"] == "labels/3.txt", "image_path"].isna().all()
    assert changed["source_conflict"].notna().sum() == 3 and changed["superseded_by"].isna().all()  # 1 CSV + 2 YOLO rows


@pytest.mark.parametrize("edit", ["class map renamed a class", "class map broken", "nearer class map added"])
def test_a_class_map_change_parses_every_file_it_names(tmp_path, monkeypatch, edit):
    folder = _folder(tmp_path)
    first = update_image_index(folder, workers=1)
    table = build_label_table(folder, first.index)
    if edit == "class map renamed a class":
        (folder / "data.yaml").write_text("names: [cat, wolf]\n")
    elif edit == "class map broken":
        (folder / "data.yaml").write_text("names: [cat, dog]\nnc: 3\n")
    else:
        (folder / "labels" / "classes.txt").write_text("lynx\nbear\n")
    second = update_image_index(folder, first.index, workers=1)
    changed, parsed = _rebuilt(folder, second.index, table, monkeypatch)
    assert parsed == [f"labels/{i}.txt" for i in range(6)]
    names = set(changed["class_name"].dropna())
    assert names == {"class map renamed a class": {"cat", "wolf"}, "class map broken": set(),
                     "nearer class map added": {"lynx", "bear"}}[edit] | {"cat", "dog"}  # the CSV's names


def test_a_table_with_a_class_map_error_is_not_reused(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    (folder / "data.yaml").write_text("names: 7\n")
    index = update_image_index(folder, workers=1).index
    table = build_label_table(folder, index)
    assert (table["parse_error"].str.startswith("class map cannot be used")).sum() == 1
    again, parsed = _rebuilt(folder, index, table, monkeypatch)
    assert len(parsed) == 6 and (again["parse_error"].str.startswith("class map cannot be used")).sum() == 1


def test_a_previous_table_not_sorted_by_file_is_not_reused(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    index = update_image_index(folder, workers=1).index
    table = build_label_table(folder, index)
    shuffled = table.iloc[::-1].reset_index(drop=True)  # not a table build_label_table made
    again, parsed = _rebuilt(folder, index, shuffled, monkeypatch)
    assert parsed == [f"labels/{i}.txt" for i in range(6)]
    pd.testing.assert_frame_equal(again, table)


def test_empty_yolo_files_are_listed_and_not_read_again_while_their_hash_holds(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    for i in (6, 7, 8):  # background images: label files with no box lines
        (folder / "images" / f"{i}.jpg").write_bytes(jpeg_bytes(color=(i, 9, 9)))
        (folder / "labels" / f"{i}.txt").write_text("\n\n" if i == 8 else "")
    first = update_image_index(folder, workers=1)
    table = build_label_table(folder, first.index)
    sha = first.index.set_index("path")["sha256"]
    assert empty_files(table) == {f"labels/{i}.txt": sha[f"labels/{i}.txt"] for i in (6, 7, 8)}
    assert isinstance(table.attrs[EMPTY_YOLO_FILES], str)  # pandas deep-copies attrs per operation: a str is free
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)  # the kept table goes through Parquet: its attrs too
    stored = pd.read_parquet(io.BytesIO(buffer.getvalue()))
    assert stored.attrs == table.attrs

    same, parsed = _rebuilt(folder, first.index, stored, monkeypatch)
    assert parsed == [] and same.attrs == table.attrs

    (folder / "labels" / "7.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # a box drawn on a background image
    (folder / "labels" / "8.txt").write_text("")                       # still empty, other bytes
    (folder / "labels" / "6.txt").unlink()
    second = update_image_index(folder, first.index, workers=1)
    changed, parsed = _rebuilt(folder, second.index, stored, monkeypatch)
    assert parsed == ["labels/7.txt", "labels/8.txt"]
    assert empty_files(changed) == {"labels/8.txt": hashlib.sha256(b"").hexdigest()}
    assert changed.loc[changed["label_file"] == "labels/7.txt", "class_name"].tolist() == ["cat"]


@pytest.mark.parametrize("attrs", [{}, {EMPTY_YOLO_FILES: "not json"}, {EMPTY_YOLO_FILES: "[1, 2]"},
                                   {EMPTY_YOLO_FILES: {"labels/a.txt": "0" * 64}}])
def test_a_table_without_a_readable_record_of_empty_files_lists_none(attrs):
    table = pd.DataFrame()
    table.attrs = attrs
    assert empty_files(table) == {}


def test_every_row_carries_the_content_hash_of_its_paired_image(tmp_path):
    folder = _folder(tmp_path, count=3)
    (folder / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # no images/orphan.*
    table = build_label_table(folder, update_image_index(folder, workers=1).index)
    for row in table.itertuples():
        if row.image_path is pd.NA:
            assert row.image_sha256 is pd.NA, row.label_file
        else:
            assert row.image_sha256 == hashlib.sha256((folder / row.image_path).read_bytes()).hexdigest(), row.label_file
    formats = set(table.loc[table["image_sha256"].notna(), "label_format"])
    assert formats == {"yolo", "csv"} and table.loc[table["label_file"] == "labels/orphan.txt", "image_path"].isna().all()
