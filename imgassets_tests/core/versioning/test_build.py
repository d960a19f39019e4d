"""Building a dataset version without Dagster (:func:`imgassets.core.versioning.build.build_dataset_version`):
what ``training_dataset`` does, called as a function on a local store."""

from __future__ import annotations

import pytest

from imgassets.core.store.keys import LATEST_DATASET_REF
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.store.sealed import get_record
from imgassets.core.versioning.build import DatasetBuildError, DatasetPolicy, build_dataset_version
from imgassets.core.versioning.dataset_store import load_dataset
from imgassets.core.versioning.retraction import record_retraction
from imgassets_tests.core.versioning.versions import box, commit


def _latest(results: dict) -> dict:
    return {s: {"snapshot_id": r.snapshot_id, "manifest_key": r.manifest_key} for s, r in results.items()}


def test_a_version_is_built_stored_and_carried_forward(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    drive = tmp_path / "drive"
    first = {"ana": commit(store, drive, "ana", {f"a{i}": [box("cat", 0.3 + i / 100)] for i in range(12)}),
             "ben": commit(store, drive, "ben", {f"b{i}": [box("dog")] for i in range(8)})}
    built = build_dataset_version(store, drive, _latest(first), None)
    assert built.previous is None and built.changes is None and built.departed == []
    assert get_record(store, LATEST_DATASET_REF)["dataset_id"] == built.dataset.dataset_id
    assert load_dataset(store, built.dataset.dataset_id).dataset_id == built.dataset.dataset_id
    assert built.dataset.count("train") > 0 and built.dataset.class_names == ["cat", "dog"]

    second = {**first, "ben": commit(store, drive, "ben", {f"b{i}": [box("dog")] for i in range(10)})}
    again = build_dataset_version(store, drive, _latest(second), built.dataset.dataset_id)
    assert again.previous.dataset_id == built.dataset.dataset_id
    assert again.changes.totals()["added"] == 2
    kept = {sha: split for sha, split in again.dataset.splits_by_hash().items() if sha in built.dataset.splits_by_hash()}
    assert kept == built.dataset.splits_by_hash()  # append-only splits


def test_nothing_to_build_and_unknown_policies_are_refused_with_the_reason(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    drive = tmp_path / "drive"
    with pytest.raises(DatasetBuildError, match="no scientist has an image snapshot yet"):
        build_dataset_version(store, drive, {}, None)
    latest = _latest({"ana": commit(store, drive, "ana", {f"a{i}": [box()] for i in range(6)})})
    with pytest.raises(DatasetBuildError, match="IMGASSETS_DEPARTED_POLICY must be one of"):
        build_dataset_version(store, drive, latest, None, DatasetPolicy(departed="forget"))
    record_retraction(store, [], "bad batch", [], snapshots=[f"ana/{latest['ana']['snapshot_id']}"])
    with pytest.raises(DatasetBuildError, match="every scientist's latest snapshot is retracted"):
        build_dataset_version(store, drive, latest, None)
    assert not store.exists(LATEST_DATASET_REF)  # nothing was stored
