"""Pulling a dataset version from S3 (moto over HTTP) through the local content-addressed cache."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from imgassets.core.labels.table import build_label_table
from imgassets.core.store.base import ObjectNotFoundError
from imgassets.core.versioning.dataset import merge_snapshots
from imgassets.core.versioning.dataset_store import store_dataset
from imgassets.core.versioning.pull import pull_dataset
from imgassets.core.versioning.pull_cache import VerifiedCache
from imgassets.core.versioning.refs import write_latest_ref
from imgassets.core.versioning.snapshot import commit_snapshot, load_snapshot
from imgassets_tests.conftest import build_image_index, jpeg_bytes, snapshot_records


@pytest.fixture
def dataset_in_s3(tmp_path, s3_store):
    folder = tmp_path / "drive" / "ana"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    (folder / "data.yaml").write_text("names: [cat]\n")
    for i in range(10):
        (folder / "images" / f"{i}.jpg").write_bytes(jpeg_bytes(color=(i * 20, 10, 10)))
        (folder / "labels" / f"{i}.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    # A valid JPEG with bytes after the end marker: Ultralytics would rewrite it in place.
    (folder / "images" / "trailing.jpg").write_bytes(jpeg_bytes(color=(1, 2, 3)) + b"camera-trailer")
    index = build_image_index(folder)
    result = commit_snapshot(s3_store, "ana", folder, snapshot_records(index, build_label_table(folder, index)))
    dataset = merge_snapshots({"ana": (result.snapshot_id, load_snapshot(s3_store, result.manifest_key))}, 0.3)
    store_dataset(s3_store, dataset)
    write_latest_ref(s3_store, dataset.dataset_id)
    return dataset


def test_pull_latest_then_warm_pull_downloads_nothing(tmp_path, s3_store, dataset_in_s3):
    cache = tmp_path / "cache"
    first = pull_dataset(s3_store, "latest", tmp_path / "a", cache)
    assert first.dataset_id == dataset_in_s3.dataset_id
    assert (first.images, first.downloaded, first.cache_hits) == (11, 11, 0)
    assert (first.hardlinked, first.copied) == (10, 1)
    for record in dataset_in_s3.records:
        placed = next((tmp_path / "a" / "images" / record["split"]).glob(f"{record['sha256']}.*"))
        linked = os.path.samefile(placed, VerifiedCache(cache).image_path(record["sha256"]))
        assert linked == (not record["path"].endswith("trailing.jpg"))
        label = tmp_path / "a" / "labels" / record["split"] / f"{record['sha256']}.txt"
        assert label.read_text() == ("0 0.500000 0.500000 0.250000 0.250000\n" if record["boxes"] else "")
    assert f"path: {tmp_path / 'a'}" in first.data_yaml.read_text()

    second = pull_dataset(s3_store, dataset_in_s3.dataset_id, tmp_path / "b", cache)
    assert (second.downloaded, second.cache_hits) == (0, 11)


def test_a_corrupted_cached_object_is_fetched_again(tmp_path, s3_store, dataset_in_s3):
    cache = tmp_path / "cache"
    pull_dataset(s3_store, "latest", tmp_path / "a", cache)
    victim = Path(VerifiedCache(cache).image_path(dataset_in_s3.records[0]["sha256"]))
    original = victim.read_bytes()
    victim.chmod(stat.S_IRUSR | stat.S_IWUSR)
    victim.write_bytes(b"\x00" * len(original))  # same size, other bytes
    again = pull_dataset(s3_store, "latest", tmp_path / "b", cache)
    assert (again.downloaded, again.cache_hits) == (1, 10)
    assert victim.read_bytes() == original


def test_pull_of_an_unknown_dataset_names_it(tmp_path, s3_store, dataset_in_s3):
    with pytest.raises(ObjectNotFoundError, match="datasets/0123456789abcdef/manifest.parquet not found in S3 bucket"):
        pull_dataset(s3_store, "0123456789abcdef", tmp_path / "x", tmp_path / "cache")


def test_pulled_dataset_loads_in_ultralytics(tmp_path, s3_store, dataset_in_s3):
    from ultralytics.data.utils import check_det_dataset

    result = pull_dataset(s3_store, "latest", tmp_path / "a", tmp_path / "cache")
    data = check_det_dataset(str(result.data_yaml))
    assert data["names"] == {0: "cat"}


def test_label_files_are_cached_and_a_label_edited_through_a_pull_is_rewritten(tmp_path):
    cache = tmp_path / "cache"
    first = Path(VerifiedCache(cache).label_file("0 0.5 0.5 0.2 0.2\n"))
    assert Path(VerifiedCache(cache).label_file("0 0.5 0.5 0.2 0.2\n")) == first
    pulled = tmp_path / "pulled.txt"
    os.link(first, pulled)
    pulled.chmod(0o644)
    pulled.write_text("1 0.1 0.1 0.1 0.1\n")  # edited in place through the hardlink
    again = Path(VerifiedCache(cache).label_file("0 0.5 0.5 0.2 0.2\n"))
    assert again.read_text() == "0 0.5 0.5 0.2 0.2\n"
    assert pulled.read_text() == "1 0.1 0.1 0.1 0.1\n"  # the edited copy is the user's, no longer the cache's
