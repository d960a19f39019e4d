"""``imgassets lineage PATH``: a recorded path is resolved in its scientist's manifests only."""

from __future__ import annotations

import hashlib

from imgassets.core.store.local import LocalObjectStore
from imgassets.core.training.models import resolve_image
from imgassets.core.versioning.manifest import SNAPSHOT_SCHEMA, to_parquet_bytes


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _snapshot(store: LocalObjectStore, scientist: str, version: int, paths: list[str]) -> None:
    snapshot_id = _sha(f"{scientist}{version}")[:16]
    rows = [{"sha256": _sha(f"{scientist}/{path}/{version}"), "path": path, "size_bytes": 1, "format": "JPEG",
             "width": 8, "height": 8, "phash": "0" * 16, "boxes": []} for path in paths]
    store.put_bytes(f"snapshots/{scientist}/{snapshot_id}.parquet",
                    to_parquet_bytes(rows, SNAPSHOT_SCHEMA, {"scientist": scientist, "snapshot_id": snapshot_id}))


class CountingStore(LocalObjectStore):
    """A local store that records the keys read."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.read: list[str] = []

    def get_bytes(self, key: str) -> bytes:
        self.read.append(key)
        return super().get_bytes(key)


def test_a_path_under_a_scientist_reads_only_that_scientists_manifests(tmp_path):
    store = CountingStore(tmp_path / "store")
    for version in (1, 2):
        _snapshot(store, "ana", version, ["images/a.jpg", "images/b.jpg"])
        _snapshot(store, "ben", version, ["images/a.jpg", "carl/images/a.jpg"])
    ana_versions = sorted(_sha(f"ana/images/a.jpg/{v}") for v in (1, 2))

    assert resolve_image(store, "ana/images/a.jpg") == ana_versions
    assert store.read and all(key.startswith("snapshots/ana/") for key in store.read)
    assert len(store.read) == 2

    store.read.clear()
    both = sorted(ana_versions + [_sha(f"ben/images/a.jpg/{v}") for v in (1, 2)])
    assert resolve_image(store, "images/a.jpg") == both  # no scientist named: every manifest
    assert len(store.read) == 4
    # "carl" has no snapshots: the whole path is a recorded path, in ben's folder
    assert resolve_image(store, "/carl/images/a.jpg") == sorted(_sha(f"ben/carl/images/a.jpg/{v}") for v in (1, 2))
    assert resolve_image(store, "ana/images/missing.jpg") == []
    assert resolve_image(store, _sha("x")) == [_sha("x")]
