"""The local object store: atomic puts, reads, listing and errors that name the key."""

from __future__ import annotations

import pytest

from imgassets.core.store.base import ObjectNotFoundError
from imgassets.core.store.hashing import sha256_bytes
from imgassets.core.store.keys import content_key
from imgassets.core.store.local import LocalObjectStore


def test_put_get_exists_stat_list(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    key = content_key(sha256_bytes(b"abc"))
    assert key.startswith("objects/sha256/ba/ba7816bf")
    assert not store.exists(key)
    store.put_bytes(key, b"abc")
    store.put_bytes("snapshots/ana/x.parquet", b"m")
    assert store.exists(key) and store.get_bytes(key) == b"abc" and store.stat(key).size == 3
    assert list(store.list_keys("objects")) == [key]
    store.get_file(key, tmp_path / "out" / "f.bin")
    assert (tmp_path / "out" / "f.bin").read_bytes() == b"abc"
    assert not [p for p in (tmp_path / "store").rglob(".tmp-*")]


def test_get_file_is_a_copy_not_a_hardlink(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    store.put_bytes("k/one", b"original")
    store.get_file("k/one", tmp_path / "staged")
    (tmp_path / "staged").write_bytes(b"rewritten in place by a consumer")
    assert store.get_bytes("k/one") == b"original"


def test_missing_key_error_names_key_and_store(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    with pytest.raises(ObjectNotFoundError, match="nope/x not found in local object store at"):
        store.get_bytes("nope/x")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b"])
def test_invalid_keys_are_refused(tmp_path, key):
    with pytest.raises(ValueError, match="invalid object key"):
        LocalObjectStore(tmp_path).put_bytes(key, b"x")


def test_failed_write_leaves_no_object(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    with pytest.raises(FileNotFoundError):
        store.put_file("a/b", tmp_path / "does-not-exist")
    assert not store.exists("a/b")
    assert not [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
