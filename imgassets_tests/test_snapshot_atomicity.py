"""A snapshot is all or nothing: a failure mid-upload leaves no manifest, and the next run uploads
only what is missing. Against S3 over HTTP (moto) with an injected failure."""

from __future__ import annotations

import threading

import pytest

from imgassets.core.image_index import build_image_index
from imgassets.core.label_table import build_label_table
from imgassets.core.object_store import content_key
from imgassets.core.snapshot import commit_snapshot, snapshot_records
from imgassets_tests.conftest import jpeg_bytes


class InjectedFailure(RuntimeError):
    pass


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
