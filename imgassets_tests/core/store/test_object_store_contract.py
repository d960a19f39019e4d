"""Contract tests: every object-store behaviour, against the local store, S3 over HTTP on moto's
emulation and on a real S3 server (SeaweedFS)."""

from __future__ import annotations

import time

import pytest

from imgassets.core.store.base import IntegrityError, ObjectNotFoundError
from imgassets.core.store.hashing import sha256_bytes
from imgassets.core.store.keys import content_key
from imgassets.core.store.local import LocalObjectStore


@pytest.fixture(params=["local", "s3", "seaweedfs"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store")
    return request.getfixturevalue("s3_store" if request.param == "s3" else "seaweed_store")


def test_put_get_exists_stat_list(store, tmp_path):
    key = content_key(sha256_bytes(b"abc"))
    assert not store.exists(key)
    store.put_bytes(key, b"abc", sha256=sha256_bytes(b"abc"))
    store.put_bytes("snapshots/ana/x.parquet", b"manifest")
    assert store.exists(key) and store.get_bytes(key) == b"abc" and store.stat(key).size == 3
    assert list(store.list_keys("objects/")) == [key]
    assert list(store.list_keys("snapshots/")) == ["snapshots/ana/x.parquet"]
    store.get_file(key, tmp_path / "out" / "f.bin")
    assert (tmp_path / "out" / "f.bin").read_bytes() == b"abc"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["f.bin"]


def test_delete_removes_only_that_key_and_a_missing_key_is_no_error(store):
    store.put_bytes("listings/ana/a.zlib", b"a")
    store.put_bytes("listings/ana/b.zlib", b"b")
    store.delete("listings/ana/a.zlib")
    store.delete("listings/ana/a.zlib")
    assert list(store.list_keys("listings/")) == ["listings/ana/b.zlib"] and not store.exists("listings/ana/a.zlib")


def test_put_file_roundtrip_large_enough_for_several_parts(store, tmp_path):
    data = bytes(range(256)) * (6 * 1024 * 1024 // 256 * 3)  # 18 MiB: multipart at 16 MiB parts
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    key = content_key(sha256_bytes(data))
    store.put_file(key, source, sha256=sha256_bytes(data))
    assert store.stat(key).size == len(data)
    store.get_file(key, tmp_path / "back.bin")
    assert sha256_bytes((tmp_path / "back.bin").read_bytes()) == sha256_bytes(data)


def test_missing_key_raises_not_found_naming_key_and_store(store, tmp_path):
    with pytest.raises(ObjectNotFoundError, match=r"nope/x not found in (local object store|S3 bucket)"):
        store.get_bytes("nope/x")
    with pytest.raises(ObjectNotFoundError):
        store.get_file("nope/x", tmp_path / "x")
    with pytest.raises(ObjectNotFoundError):
        store.stat("nope/x")
    assert not (tmp_path / "x").exists()


def test_content_under_a_wrong_hash_is_never_returned(store, tmp_path):
    key = content_key(sha256_bytes(b"the real bytes"))
    store.put_bytes(key, b"tampered bytes")
    with pytest.raises(IntegrityError, match=key):
        store.get_bytes(key)
    with pytest.raises(IntegrityError):
        store.get_file(key, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_s3_sha256_metadata_is_verified_on_read(s3_store):
    """S3 only: the local store keeps no metadata and verifies content-addressed keys by name."""
    store = s3_store
    store.put_bytes("models/m/best.pt", b"weights", sha256=sha256_bytes(b"other weights"))
    with pytest.raises(IntegrityError, match="models/m/best.pt"):
        store.get_bytes("models/m/best.pt")


def test_missing_source_file_uploads_nothing(store, tmp_path):
    with pytest.raises(FileNotFoundError):
        store.put_file("a/b", tmp_path / "does-not-exist")
    assert not store.exists("a/b")


def test_list_objects_gives_size_and_modification_time_in_key_order(store):
    before = time.time() - 5  # S3 keeps Last-Modified to the second
    store.put_bytes("snapshots/ana/b.parquet", b"bb")
    store.put_bytes("snapshots/ana/a.parquet", b"a")
    store.put_bytes("datasets/x/manifest.parquet", b"ccc")
    listed = list(store.list_objects("snapshots/"))
    assert [(o.key, o.size) for o in listed] == [("snapshots/ana/a.parquet", 1), ("snapshots/ana/b.parquet", 2)]
    assert all(before <= o.modified <= time.time() + 5 for o in listed)
    assert {o.key for o in store.list_objects("")} == {"snapshots/ana/a.parquet", "snapshots/ana/b.parquet",
                                                       "datasets/x/manifest.parquet"}
    assert store.stat("snapshots/ana/a.parquet").modified == pytest.approx(listed[0].modified, abs=1)


def test_touch_renews_an_old_object_keeps_its_bytes_and_metadata_and_says_when_it_is_missing(store):
    data = b"reused content"
    key = content_key(sha256_bytes(data))
    store.put_bytes(key, data, sha256=sha256_bytes(data))
    assert not store.touch(content_key(sha256_bytes(b"never stored")))
    first = store.stat(key).modified
    assert store.touch(key) and store.stat(key).modified == first  # younger than an hour: left as it is
    time.sleep(1.2)
    assert store.touch(key, fresh_enough_s=0)
    assert store.stat(key).modified > first
    assert store.get_bytes(key) == data and store.stat(key).size == len(data)
