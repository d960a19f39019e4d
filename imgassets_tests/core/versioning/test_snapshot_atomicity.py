"""A snapshot is all or nothing: a failure mid-upload leaves no manifest, and the next run uploads
only what is missing. Against S3 over HTTP (moto) with an injected failure."""

from __future__ import annotations

import threading

import pytest

from imgassets.core.labels.table import build_label_table
from imgassets.core.store.keys import content_key
from imgassets.core.versioning.snapshot import commit_snapshot, stored_objects
from imgassets.core.versioning.snapshot import load_snapshot as load_rows
from imgassets_tests.conftest import build_image_index, jpeg_bytes, snapshot_records


class InjectedFailure(RuntimeError):
    pass


class CountingStore:
    """Wraps a real store; counts existence checks (HEAD requests on S3) by key prefix."""

    def __init__(self, store):
        self._store, self.checked, self._lock = store, [], threading.Lock()

    def __getattr__(self, name):
        return getattr(self._store, name)

    def exists(self, key):
        with self._lock:
            self.checked.append(key)
        return self._store.exists(key)

    def touch(self, key, *args):
        """An existence check that also freshens (one HEAD on S3 for a recent object)."""
        with self._lock:
            self.checked.append(key)
        return self._store.touch(key, *args)

    def reuse(self, key, sha256):
        """An existence and integrity check that also freshens (one HEAD on S3)."""
        with self._lock:
            self.checked.append(key)
        return self._store.reuse(key, sha256)


class FailingStore:
    """Wraps a real store; the ``fail_at``-th put raises (as a dropped connection would)."""

    def __init__(self, store, fail_at: int):
        self._store, self._fail_at, self._puts, self._lock = store, fail_at, 0, threading.Lock()

    def __getattr__(self, name):
        return getattr(self._store, name)

    def put_bytes(self, key, data, sha256=None):
        with self._lock:
            self._puts += 1
            if self._puts == self._fail_at:
                raise InjectedFailure(f"injected failure uploading {key}")
        self._store.put_bytes(key, data, sha256=sha256)


def test_failure_mid_upload_leaves_no_manifest_and_the_rerun_uploads_only_the_rest(tmp_path, s3_store):
    folder = tmp_path / "ana"
    (folder / "images").mkdir(parents=True)
    for i in range(24):
        (folder / "images" / f"{i:02d}.jpg").write_bytes(jpeg_bytes(color=(i * 9, 40, 90)))
    index = build_image_index(folder)
    records = snapshot_records(index, build_label_table(folder, index))

    with pytest.raises(InjectedFailure):
        commit_snapshot(FailingStore(s3_store, fail_at=10), "ana", folder, records, workers=4)
    assert list(s3_store.list_keys("snapshots/")) == []
    partial = set(s3_store.list_keys("objects/"))
    assert 9 <= len(partial) < 24

    result = commit_snapshot(s3_store, "ana", folder, records, workers=4)
    assert result.uploaded_objects == 24 - len(partial)
    assert result.existing_objects == len(partial)
    assert list(s3_store.list_keys("snapshots/")) == [result.manifest_key]
    for record in records:
        assert s3_store.get_bytes(content_key(record["sha256"])) == (folder / record["path"]).read_bytes()


def _images(folder, start, count):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        (folder / "images" / f"{i:02d}.jpg").write_bytes(jpeg_bytes(color=(i * 9, 40, 90)))


def _records(folder):
    index = build_image_index(folder)
    return snapshot_records(index, build_label_table(folder, index))


def test_a_commit_checks_only_the_objects_its_previous_snapshot_does_not_list(tmp_path, s3_store):
    folder = tmp_path / "ana"
    _images(folder, 0, 12)
    first = commit_snapshot(s3_store, "ana", folder, _records(folder), workers=4)
    _images(folder, 12, 2)
    records = _records(folder)

    counting = CountingStore(s3_store)
    stored = stored_objects(counting, first.manifest_key)
    assert stored == {r["sha256"] for r in load_rows(s3_store, first.manifest_key)} and len(stored) == 12
    second = commit_snapshot(counting, "ana", folder, records, workers=4, stored=stored)
    new = {content_key(r["sha256"]) for r in records if r["sha256"] not in stored}
    assert len(new) == 2 and {k for k in counting.checked if k.startswith("objects/")} == new
    assert (second.uploaded_objects, second.existing_objects, second.checked_objects) == (2, 12, 2)
    for record in records:
        assert s3_store.get_bytes(content_key(record["sha256"])) == (folder / record["path"]).read_bytes()

    # the same manifest as a commit that checks every object
    again = commit_snapshot(s3_store, "ana", folder, records, workers=4)
    assert again.snapshot_id == second.snapshot_id and again.checked_objects == 14


def test_no_previous_snapshot_or_a_missing_or_unreadable_manifest_vouches_for_nothing(s3_store):
    assert stored_objects(s3_store, None) == frozenset()
    assert stored_objects(s3_store, "snapshots/ana/0000000000000000.parquet") == frozenset()
    s3_store.put_bytes("snapshots/ana/1111111111111111.parquet", b"not parquet")
    assert stored_objects(s3_store, "snapshots/ana/1111111111111111.parquet") == frozenset()


def test_an_image_that_vanished_or_changed_after_indexing_is_left_out_with_a_reason(tmp_path):
    from imgassets.core.labels.table import build_label_table
    from imgassets.core.store.local import LocalObjectStore
    from imgassets.core.versioning.snapshot import commit_snapshot, load_snapshot
    from imgassets_tests.conftest import build_image_index, jpeg_bytes, snapshot_records

    folder = tmp_path / "ana"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.jpg").write_bytes(jpeg_bytes(color=(i * 40, 1, 1)))
    index = build_image_index(folder)
    records = snapshot_records(index, build_label_table(folder, index))
    (folder / "1.jpg").unlink()
    (folder / "3.jpg").write_bytes(jpeg_bytes(color=(7, 7, 7)))
    store = LocalObjectStore(tmp_path / "objects")
    result = commit_snapshot(store, "ana", folder, records)
    assert [p for p, _ in result.left_out] == ["1.jpg", "3.jpg"]
    assert "vanished or unreadable since it was indexed" in dict(result.left_out)["1.jpg"]
    assert dict(result.left_out)["3.jpg"] == "changed since it was indexed (content hash differs)"
    assert sorted(r["path"] for r in load_snapshot(store, result.manifest_key)) == ["0.jpg", "2.jpg", "4.jpg"]
    remaining = [r for r in records if r["path"] not in ("1.jpg", "3.jpg")]
    assert result.snapshot_id == commit_snapshot(LocalObjectStore(tmp_path / "other"), "ana", folder, remaining).snapshot_id
