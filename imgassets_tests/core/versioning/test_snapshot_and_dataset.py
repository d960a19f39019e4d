"""Snapshots and datasets in the functional core: ids, commit protocol, split, class map, staging."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from imgassets.core.labels.table import build_label_table
from imgassets.core.store.hashing import sha256_bytes
from imgassets.core.store.keys import content_key
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning.checkout import materialize_dataset
from imgassets.core.versioning.dataset import merge_snapshots
from imgassets.core.versioning.dataset_store import load_dataset, store_dataset
from imgassets.core.versioning.snapshot import SnapshotError, commit_snapshot, load_snapshot
from imgassets.core.versioning.splits import EmptyDatasetError, group_splits
from imgassets_tests.conftest import build_image_index, jpeg_bytes, snapshot_records


def _scientist(root: Path, name: str, labels: dict[str, str], names: str = "[cat, dog]") -> Path:
    folder = root / name
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    (folder / "data.yaml").write_text(f"names: {names}\n")
    for stem, text in labels.items():
        (folder / "images" / f"{stem}.jpg").write_bytes(jpeg_bytes(color=(ord(stem[0]), 100, 200)))  # same stem, same bytes
        (folder / "labels" / f"{stem}.txt").write_text(text)
    return folder


def _records(folder: Path) -> list[dict]:
    index = build_image_index(folder)
    return snapshot_records(index, build_label_table(folder, index))


def test_snapshot_id_depends_on_content_only(tmp_path):
    folder = _scientist(tmp_path, "ana", {"a": "0 0.5 0.5 0.2 0.2\n", "b": ""})
    store = LocalObjectStore(tmp_path / "store")
    first = commit_snapshot(store, "ana", folder, _records(folder))
    second = commit_snapshot(store, "ana", folder, _records(folder))
    assert first.snapshot_id == second.snapshot_id
    assert (first.uploaded_objects, second.uploaded_objects, second.existing_objects) == (2, 0, 2)
    rows = load_snapshot(store, first.manifest_key)
    assert [(r["path"], len(r["boxes"])) for r in rows] == [("images/a.jpg", 1), ("images/b.jpg", 0)]
    (folder / "labels" / "b.txt").write_text("1 0.5 0.5 0.1 0.1\n")
    third = commit_snapshot(store, "ana", folder, _records(folder))
    assert third.snapshot_id != first.snapshot_id and third.uploaded_objects == 0


def test_bad_labels_never_reach_a_snapshot(tmp_path):
    folder = _scientist(tmp_path, "ana", {"a": "0 0.9 0.5 0.4 0.2\n"})
    index = build_image_index(folder)
    with pytest.raises(SnapshotError, match=r"labels/a.txt:1: box outside the image"):
        snapshot_records(index, build_label_table(folder, index))


def test_a_file_changed_after_indexing_is_left_out_and_never_stored_under_its_old_hash(tmp_path):
    folder = _scientist(tmp_path, "ana", {"a": "", "b": ""})
    records = _records(folder)
    (folder / "images" / "b.jpg").write_bytes(jpeg_bytes(color=(1, 2, 3)))
    store = LocalObjectStore(tmp_path / "store")
    result = commit_snapshot(store, "ana", folder, records)
    assert result.left_out == (("images/b.jpg", "changed since it was indexed (content hash differs)"),)
    old_b = next(r["sha256"] for r in records if r["path"] == "images/b.jpg")
    assert not store.exists(content_key(old_b))
    assert [r["path"] for r in load_snapshot(store, result.manifest_key)] == ["images/a.jpg"]


def test_split_is_deterministic_by_content_hash_and_never_empty():
    hashes = [sha256_bytes(str(i).encode()) for i in range(200)]
    def splits(names: list[str], val_fraction: float) -> dict[str, str]:
        shas = np.array(names, dtype=object)
        return dict(zip(names, group_splits(shas, shas, val_fraction).tolist(), strict=True))

    forward = splits(hashes, 0.2)
    assert forward == splits(list(reversed(hashes)), 0.2)
    assert 20 < sum(s == "val" for s in forward.values()) < 60
    assert set(splits(hashes[:2], 0.0).values()) == {"train", "val"}


def test_merge_maps_classes_by_name_dedupes_and_stages(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    ana = _scientist(tmp_path, "ana", {"a": "0 0.5 0.5 0.2 0.2\n", "b": "1 0.5 0.5 0.2 0.2\n"})
    ben = _scientist(tmp_path, "ben", {"a": "0 0.5 0.5 0.3 0.3\n", "c": "1 0.5 0.5 0.2 0.2\n"}, names="[dog, bird]")
    snaps = {}
    for name, folder in (("ana", ana), ("ben", ben)):
        result = commit_snapshot(store, name, folder, _records(folder))
        snaps[name] = (result.snapshot_id, load_snapshot(store, result.manifest_key))
    dataset = merge_snapshots(snaps, 0.5)
    assert dataset.class_names == ["bird", "cat", "dog"]
    assert dataset.duplicates_dropped == 1  # ben's a.jpg has the same bytes as ana's
    by_path = {(r["scientist"], r["path"]): r for r in dataset.records}
    assert by_path[("ana", "images/b.jpg")]["boxes"][0]["class_id"] == 2  # dog
    assert by_path[("ben", "images/c.jpg")]["boxes"][0]["class_id"] == 0  # bird
    assert merge_snapshots(snaps, 0.5).dataset_id == dataset.dataset_id
    store_dataset(store, dataset)
    assert load_dataset(store, dataset.dataset_id).records[0]["sha256"] == dataset.records[0]["sha256"]
    data_yaml = materialize_dataset(store, dataset, tmp_path / "stage", tmp_path / "cache").data_yaml
    staged = sorted(p.relative_to(tmp_path / "stage").as_posix() for p in (tmp_path / "stage").rglob("*.*"))
    assert len([p for p in staged if p.startswith("images/")]) == 3
    assert "names:\n  0: bird\n  1: cat\n  2: dog" in data_yaml.read_text()
    label = next((tmp_path / "stage" / "labels").rglob(f"{by_path[('ben', 'images/c.jpg')]['sha256']}.txt"))
    assert label.read_text() == "0 0.500000 0.500000 0.200000 0.200000\n"


@pytest.mark.parametrize("rows,reason", [
    ([], "hold 0 valid image(s)"),
    ([{"sha256": "a" * 64, "path": "x.jpg", "boxes": []}, {"sha256": "b" * 64, "path": "y.jpg", "boxes": []}],
     "have no labelled box"),
])
def test_a_dataset_with_nothing_to_train_on_is_refused(rows, reason):
    with pytest.raises(EmptyDatasetError, match=re.escape(reason)):
        merge_snapshots({"ana": ("s1", rows)})
