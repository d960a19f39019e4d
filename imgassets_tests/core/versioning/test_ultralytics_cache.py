"""The pull writes Ultralytics' own label cache from the manifest: Ultralytics loads it instead of
scanning, it holds exactly what Ultralytics' scan finds, and a stale one is rescanned."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from imgassets.core.labels.table import build_label_table
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning.dataset import merge_snapshots
from imgassets.core.versioning.dataset_store import store_dataset
from imgassets.core.versioning.pull import pull_dataset
from imgassets.core.versioning.snapshot import commit_snapshot, load_snapshot
from imgassets.core.versioning.ultralytics_cache import ULTRALYTICS_CACHE_VERSION
from imgassets_tests.conftest import build_image_index, shared_data_dir, snapshot_records


@pytest.fixture(scope="module")
def pulled(tmp_path_factory):
    """All of coco128 snapshotted, merged and pulled (the Ultralytics layout with its caches)."""
    tmp = tmp_path_factory.mktemp("cache")
    folder = tmp / "drive" / "ana"
    shutil.copytree(shared_data_dir() / "coco128", folder)
    (folder / "images" / "train2017" / "dup.jpg").write_bytes(
        (folder / "images" / "train2017" / "000000000009.jpg").read_bytes()[:-2] + b"\xff\xd9")
    store = LocalObjectStore(tmp / "objects")
    index = build_image_index(folder)
    result = commit_snapshot(store, "ana", folder, snapshot_records(index, build_label_table(folder, index)))
    dataset = merge_snapshots({"ana": (result.snapshot_id, load_snapshot(store, result.manifest_key))})
    store_dataset(store, dataset)
    pull_dataset(store, dataset.dataset_id, tmp / "dest", tmp / "cache")
    return tmp / "dest", dataset


def _dataset(dest, split: str):
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(dest / "data.yaml"))
    return YOLODataset(img_path=data[split], data=data, augment=False, imgsz=64)


def _as_comparable(labels: list[dict]) -> list[tuple]:
    return [(lb["im_file"], tuple(lb["shape"]), lb["cls"].tobytes(), lb["bboxes"].tobytes()) for lb in labels]


def test_the_pinned_ultralytics_reads_this_cache_version():
    from ultralytics.data.dataset import DATASET_CACHE_VERSION

    assert ULTRALYTICS_CACHE_VERSION == DATASET_CACHE_VERSION


@pytest.mark.parametrize("split", ["train", "val"])
def test_ultralytics_loads_the_cache_without_scanning_and_it_equals_its_scan(pulled, split, monkeypatch):
    from ultralytics.data.dataset import YOLODataset

    dest, dataset = pulled
    assert (dest / "labels" / f"{split}.cache").is_file()
    with monkeypatch.context() as patch:
        patch.setattr(YOLODataset, "cache_labels", lambda self, path: pytest.fail(f"Ultralytics rescanned {path}"))
        from_cache = _dataset(dest, split).labels
    assert len(from_cache) == dataset.count(split)
    scan_copy = dest.parent / f"scan-{split}"
    shutil.copytree(dest, scan_copy, copy_function=shutil.copy2)
    (scan_copy / "labels" / f"{split}.cache").unlink()
    (scan_copy / "data.yaml").write_text((dest / "data.yaml").read_text().replace(str(dest), str(scan_copy)))
    scanned = _dataset(scan_copy, split).labels
    assert _as_comparable(from_cache) == [(im.replace(str(scan_copy), str(dest)), *rest)
                                         for im, *rest in _as_comparable(scanned)]
    assert any(len(lb["cls"]) == 0 for lb in from_cache) == any(len(lb["cls"]) == 0 for lb in scanned)


def test_a_cache_that_no_longer_matches_the_files_is_rescanned(pulled, tmp_path):
    dest, _ = pulled
    copy = tmp_path / "edited"
    shutil.copytree(dest, copy, copy_function=shutil.copy2)
    (copy / "data.yaml").write_text((dest / "data.yaml").read_text().replace(str(dest), str(copy)))
    label = sorted((copy / "labels" / "train").glob("*.txt"))[0]
    label.chmod(0o644)
    label.write_text("0 0.5 0.5 0.25 0.25\n")  # edited after the pull: the cache's hash no longer holds
    labels = {lb["im_file"]: lb for lb in _dataset(copy, "train").labels}
    image = str(copy / "images" / "train" / f"{label.stem}{next((copy / 'images' / 'train').glob(label.stem + '.*')).suffix}")
    assert np.allclose(labels[image]["bboxes"], [[0.5, 0.5, 0.25, 0.25]]) and labels[image]["cls"].tolist() == [[0.0]]


def test_label_rows_equal_ultralytics_scan_of_the_same_text(tmp_path):
    import random

    from PIL import Image
    from ultralytics.data.utils import verify_image_label

    from imgassets.core.versioning.ultralytics_cache import label_rows

    image, label = tmp_path / "a.jpg", tmp_path / "a.txt"
    Image.new("RGB", (32, 32), (90, 120, 30)).save(image)

    def scanned(text: str, classes: int = 3):
        label.write_text(text)
        result = verify_image_label((str(image), str(label), "", False, classes, 0, 0, False))
        return None if result[8] else result[1]  # result[8]: Ultralytics counted the label corrupt

    rng = random.Random(21)

    def row() -> str:
        return f"{rng.randrange(3)} " + " ".join(f"{rng.random():.6f}" for _ in range(4))

    texts = []
    for _ in range(200):
        rows = [row() for _ in range(rng.randrange(6))]
        if rows and rng.random() < 0.3:
            rows.insert(rng.randrange(len(rows) + 1), rng.choice(rows))  # a duplicate row
        if rows and rng.random() < 0.1:
            cls, *xywh = rows[0].split()
            rows.append(" ".join([cls, xywh[0] + "00001", *xywh[1:]]))  # another text, the same float32 row
        texts.append("".join(f"{r}\n" for r in rows))
    texts += ["1 0.5 0.5 0.2 0.2\n" * 3, "", "0 0.5 0.5 0.2 0.2\n2 0.1 0.1 0.1 0.1\n0 0.5 0.5 0.2 0.2\n"]
    ours = label_rows(texts, 3)
    assert ours is not None and len(ours) == len(texts)
    assert sum(len(boxes) < len(text.splitlines()) for boxes, text in zip(ours, texts, strict=True)) > 20  # duplicates seen
    for text, boxes in zip(texts, ours, strict=True):
        theirs = scanned(text)
        assert boxes.dtype == theirs.dtype and boxes.shape == theirs.shape and boxes.tobytes() == theirs.tobytes(), text
    for refused in ("3 0.5 0.5 0.1 0.1\n", "0 0.5 0.5 1.2 0.1\n", "0 0.5 0.5 0.1\n", "0 nan 0.5 0.1 0.1\n"):
        assert scanned(refused) is None  # Ultralytics refuses it
        assert label_rows(["0 0.5 0.5 0.1 0.1\n", refused], 3) is None, refused  # then no cache: it scans
