"""The background-or-unlabelled rule (imgassets.core.labels.unlabelled), on real folders in every layout."""

from __future__ import annotations

import json

import pyarrow.compute as pc
import pytest

from imgassets.core.labels.table import build_label_table
from imgassets.core.labels.unlabelled import mostly_unlabelled_note, unlabelled_counts
from imgassets.core.versioning.dataset import merge_snapshots
from imgassets.core.versioning.manifest import manifest_id
from imgassets.core.versioning.snapshot import snapshot_table
from imgassets_tests.conftest import build_image_index, copy_dataset, noise_image


def _photo(path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise_image((64, 48), seed).save(path)


def _unlabelled_paths(folder) -> set[str]:
    index = build_image_index(folder)
    table = snapshot_table(index, build_label_table(folder, index))
    if "unlabelled" not in table.column_names:
        return set()
    return set(pc.filter(table.column("path"), table.column("unlabelled")).to_pylist())


def test_images_in_a_folder_where_nothing_is_labelled_are_unlabelled_the_rest_background(tmp_path):
    folder = tmp_path / "ana"
    folder.mkdir()
    (folder / "classes.txt").write_text("thing\n")
    _photo(folder / "new_capture" / "a.jpg", 1)
    _photo(folder / "new_capture" / "deep" / "b.jpg", 2)
    # YOLO beside images: one image with boxes, one with an empty file, one with no file at all
    _photo(folder / "flat" / "c.jpg", 3)
    (folder / "flat" / "c.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    _photo(folder / "flat" / "d.jpg", 4)
    (folder / "flat" / "d.txt").write_text("")
    _photo(folder / "flat" / "e.jpg", 5)
    # Ultralytics layout: a labels/ sibling labels some images
    _photo(folder / "set" / "images" / "f.jpg", 6)
    _photo(folder / "set" / "images" / "g.jpg", 7)
    (folder / "set" / "labels").mkdir(parents=True)
    (folder / "set" / "labels" / "f.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    # a COCO export listing an image with no shapes beside an annotated one, in its own folder
    _photo(folder / "coco" / "images" / "h.jpg", 8)
    _photo(folder / "coco" / "images" / "i.jpg", 9)
    (folder / "coco" / "annotations").mkdir(parents=True)
    (folder / "coco" / "annotations" / "instances.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "h.jpg", "width": 64, "height": 48},
                   {"id": 2, "file_name": "i.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20], "area": 400, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "thing"}]}))
    # a marker declares fresh captures copied beside labelled ones unlabelled
    _photo(folder / "marked" / "j.jpg", 10)
    (folder / "marked" / "j.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    _photo(folder / "marked" / "k.jpg", 11)
    (folder / "marked" / "UNLABELLED.md").write_text("fresh captures, not looked at yet\n")

    assert _unlabelled_paths(folder) == {"new_capture/a.jpg", "new_capture/deep/b.jpg", "marked/k.jpg"}


def test_coco128_images_without_a_label_file_stay_background_and_ids_are_unchanged(tmp_path, shared_data):
    folder = copy_dataset("coco128", tmp_path / "coco128")
    index = build_image_index(folder)
    labels = build_label_table(folder, index)
    table = snapshot_table(index, labels)
    assert "unlabelled" not in table.column_names  # no column: the id is computed as before
    assert unlabelled_counts(index, labels) == (0, 128)
    assert sum(1 for boxes in table.column("boxes").to_pylist() if not boxes) == 2  # coco128's two background images
    assert manifest_id(table, {"scientist": "s"}) == manifest_id(table.select(table.column_names), {"scientist": "s"})


def test_unlabelled_images_are_never_trained_and_join_the_dataset_once_labelled(tmp_path, shared_data):
    ana = copy_dataset("coco128", tmp_path / "ana")
    ben = tmp_path / "ben"
    for i in range(6):
        _photo(ben / "new_capture" / f"p{i}.jpg", 100 + i)
    snapshots = {}
    for name, folder in (("ana", ana), ("ben", ben)):
        index = build_image_index(folder)
        snapshots[name] = (name, snapshot_table(index, build_label_table(folder, index)))
    ben_index = build_image_index(ben)
    unlabelled, images = unlabelled_counts(ben_index, build_label_table(ben, ben_index))
    assert (unlabelled, images) == (6, 6)
    assert "ben: 6 of 6 images are unlabelled" in mostly_unlabelled_note("ben", unlabelled, images)
    first = merge_snapshots(snapshots)
    assert first.unlabelled_images == {"ben": 6}
    assert set(first.table.column("scientist").to_pylist()) == {"ana"}
    assert "unlabelled" not in first.table.column_names

    # ben labels two of them: they join the dataset, the other four stay out
    for i in range(2):
        (ben / "new_capture" / f"p{i}.txt").write_text("0 0.5 0.5 0.3 0.3\n")
    (ben / "new_capture" / "classes.txt").write_text("person\n")
    # p2..p5 now sit in a labelled folder (background by the folder rule), so a marker keeps them out
    (ben / "new_capture" / "UNLABELLED").write_text("")
    index = build_image_index(ben)
    snapshots["ben"] = ("ben2", snapshot_table(index, build_label_table(ben, index)))
    second = merge_snapshots(snapshots, previous_splits=first.splits_by_hash(), previous_class_names=first.class_names)
    kept = [p for s, p in zip(second.table.column("scientist").to_pylist(), second.table.column("path").to_pylist(),
                              strict=True) if s == "ben"]
    assert sorted(kept) == ["new_capture/p0.jpg", "new_capture/p1.jpg"]
    assert second.unlabelled_images == {"ben": 4}


@pytest.mark.parametrize("marker", ["UNLABELLED", "unlabelled.txt", "Unlabelled.md"])
def test_the_marker_is_any_case_with_any_extension(tmp_path, marker):
    folder = tmp_path / "s"
    _photo(folder / "x" / "a.jpg", 1)
    (folder / "x" / "a.txt").write_text("")
    (folder / "x" / marker).write_text("")
    assert _unlabelled_paths(folder) == {"x/a.jpg"}


def test_an_entry_with_no_shapes_in_any_format_is_background_a_task_with_only_predictions_is_not(tmp_path):
    folder = tmp_path / "s"
    for name in ("voc", "coco", "cvat", "ls_done", "ls_predicted"):
        _photo(folder / name / "images" / f"{name}.jpg", len(name))
    (folder / "voc" / "Annotations").mkdir()
    (folder / "voc" / "Annotations" / "voc.xml").write_text(
        "<annotation><filename>voc.jpg</filename><size><width>64</width><height>48</height></size></annotation>")
    (folder / "coco" / "instances.json").write_text(json.dumps({
        "images": [{"id": 7, "file_name": "coco.jpg", "width": 64, "height": 48}], "annotations": [],
        "categories": [{"id": 1, "name": "thing"}]}))
    (folder / "cvat" / "annotations.xml").write_text(
        '<annotations><version>1.1</version><image id="0" name="cvat.jpg" width="64" height="48"></image></annotations>')
    (folder / "ls_done" / "export.json").write_text(json.dumps([
        {"id": 1, "data": {"image": "/data/upload/3/0a1b2c3d-ls_done.jpg"}, "annotations": [{"id": 1, "result": []}]}]))
    (folder / "ls_predicted" / "tasks.json").write_text(json.dumps([
        {"id": 2, "data": {"image": "images/ls_predicted.jpg"}, "annotations": [],
         "predictions": [{"model_version": "m", "result": [
             {"type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": 64,
              "original_height": 48, "value": {"x": 10, "y": 10, "width": 20, "height": 20,
                                               "rectanglelabels": ["thing"]}}]}]}]))
    assert _unlabelled_paths(folder) == {"ls_predicted/images/ls_predicted.jpg"}


def test_a_setting_declares_a_scientists_folders_unlabelled_from_outside_the_drive(tmp_path):
    from imgassets.core.labels.unlabelled import declared_folders

    folder = tmp_path / "ana"
    for sub in ("incoming/day1", "labelled"):
        _photo(folder / sub / "a.jpg", len(sub))
        (folder / sub / "a.txt").write_text("")  # an empty label file: background, unless declared
    index = build_image_index(folder)
    labels = build_label_table(folder, index)
    declared = declared_folders("ana", " ana/incoming ,*/nothing*")
    table = snapshot_table(index, labels, declared=declared)
    assert set(pc.filter(table.column("path"), table.column("unlabelled")).to_pylist()) == {"incoming/day1/a.jpg"}
    assert unlabelled_counts(index, labels, declared) == (1, 2)
    assert declared_folders("ben", "ana/incoming")("incoming") is False  # another scientist's pattern
    assert declared_folders("ana", "ana")("") is True and declared_folders("ana", "") is None
    assert "unlabelled" not in snapshot_table(index, labels).column_names
