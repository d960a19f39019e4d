"""Garbage collection on real stores: the local one and a real S3 server (SeaweedFS)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from imgassets.core.store.keys import content_key, model_file_key, snapshot_manifest_key
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.store.sealed import put_record
from imgassets.core.training.models import lineage
from imgassets.core.versioning.dataset_store import load_dataset
from imgassets.core.versioning.gc import collect, plan_gc
from imgassets.core.versioning.refs import snapshot_history
from imgassets.core.versioning.retraction import record_retraction
from imgassets.core.versioning.snapshot import load_snapshot_table
from imgassets_tests.core.versioning.versions import box, build, commit, content_hash, image


@pytest.fixture(params=["local", "seaweedfs"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store")
    return request.getfixturevalue("seaweed_store")


def history_store(store, tmp_path):
    """ana's three snapshots: s1 {a, b, c} (dataset d1, which a model trained on), s2 {b, c, x2}
    (no dataset), s3 {c, d, e} (dataset d2, the latest); and an object no manifest lists."""
    drive = tmp_path / "drive"
    s1 = commit(store, drive, "ana", {"a": [box()], "b": [box()], "c": [box("dog")]})
    d1 = build(store, {"ana": s1})
    put_record(store, model_file_key(d1.dataset_id, "run-1", "model.json"), {"model_id": "run-1", "dataset_id": d1.dataset_id})
    s2 = commit(store, tmp_path / "drive2", "ana", {"b": [box()], "c": [box("dog")], "x2": [box()]})
    s3 = commit(store, tmp_path / "drive3", "ana", {"c": [box("dog")], "d": [box()], "e": [box()]})
    d2 = build(store, {"ana": s3}, d1)
    orphan = image("orphan")
    store.put_bytes(content_key(content_hash("orphan")), orphan)
    return {"s1": s1, "s2": s2, "s3": s3, "d1": d1, "d2": d2}


def readable(store, dataset_id: str) -> bool:
    """The dataset loads (verified) and every object it lists reads back with its hash."""
    dataset = load_dataset(store, dataset_id)
    return all(store.get_bytes(content_key(sha)) for sha in dataset.table.column("sha256").to_pylist())


def test_gc_deletes_what_no_retained_version_needs_and_keeps_models_refs_and_the_last_versions(store, tmp_path):
    v = history_store(store, tmp_path)
    plan = plan_gc(store, keep_datasets=1, keep_snapshots=1, grace_hours=0)
    assert plan.retained_datasets == sorted([v["d1"].dataset_id, v["d2"].dataset_id])  # d1: a model's
    assert plan.retained_snapshots == {"ana": sorted([v["s1"].snapshot_id, v["s3"].snapshot_id])}
    doomed = {o.key for o in plan.delete}
    s2_key = snapshot_manifest_key("ana", v["s2"].snapshot_id)
    assert s2_key in doomed and content_key(content_hash("x2")) in doomed
    assert content_key(content_hash("orphan")) in doomed
    assert any(k.startswith("refs/log/snapshots/ana/") and k.endswith(v["s2"].snapshot_id) for k in doomed)
    kept_content = {content_key(content_hash(n)) for n in "abcde"}
    assert not kept_content & doomed
    assert [o.key for o in plan.delete][-1].startswith("objects/")  # manifests first, content last
    result = collect(store, plan, grace_hours=0)
    assert result.deleted == len(plan.delete) and result.lineage_rebuilt
    assert not store.exists(s2_key) and not store.exists(content_key(content_hash("x2")))
    assert readable(store, v["d1"].dataset_id) and readable(store, v["d2"].dataset_id)
    assert snapshot_history(store, "ana") == [v["s1"].snapshot_id, v["s3"].snapshot_id]
    assert lineage(store, content_hash("x2")).snapshots == []  # the rebuilt lineage index forgets s2
    assert plan_gc(store, keep_datasets=1, keep_snapshots=1, grace_hours=0).delete == []  # nothing left to do


def test_the_grace_period_spares_young_objects(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    history_store(store, tmp_path)
    plan = plan_gc(store, keep_datasets=1, keep_snapshots=1, grace_hours=24)
    assert plan.delete == [] and plan.spared_young >= 3


def test_retracted_content_goes_only_when_no_retained_version_holds_it(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    v = history_store(store, tmp_path)
    record_retraction(store, [content_hash("e")], "consent withdrawn", ["images/e.jpg"])
    s4 = commit(store, tmp_path / "drive4", "ana", {"c": [box("dog")], "d": [box()], "e": [box()], "f": [box()]})  # e still on the drive
    d3 = build(store, {"ana": s4}, v["d2"], retracted={content_hash("e")})
    assert content_hash("e") not in d3.table.column("sha256").to_pylist() and d3.retracted_images == 1
    # s4 (ana's latest snapshot, retained) still lists e: kept
    assert content_key(content_hash("e")) not in {o.key for o in plan_gc(store, 1, 1, 0).delete}
    s5 = commit(store, tmp_path / "drive5", "ana", {"c": [box("dog")], "d": [box()], "f": [box()]})  # e is gone
    build(store, {"ana": s5}, d3)
    doomed = {o.key for o in plan_gc(store, 1, 1, 0).delete}
    assert content_key(content_hash("e")) in doomed
    put_record(store, model_file_key(v["d2"].dataset_id, "run-2", "model.json"), {})  # a model trained on it
    assert content_key(content_hash("e")) not in {o.key for o in plan_gc(store, 1, 1, 0).delete}


def _age(root, days: float) -> None:
    then = time.time() - days * 86400
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), (then, then))


def test_a_commit_reusing_an_unreachable_object_during_gc_keeps_it(tmp_path):
    """The race git's gc has: the collection lists an old unreachable object, a commit then reuses it
    instead of uploading it (it exists), and the collection deletes it under the new manifest. The
    commit freshens what it reuses, and the collection re-reads the time before each delete."""
    store = LocalObjectStore(tmp_path / "store")
    history_store(store, tmp_path)
    _age(tmp_path / "store", 3)
    plan = plan_gc(store, keep_datasets=1, keep_snapshots=1, grace_hours=24)
    orphan = content_key(content_hash("orphan"))
    assert orphan in {o.key for o in plan.delete}
    late = commit(store, tmp_path / "late", "ben", {"orphan": [box()]})  # reuses the orphan's bytes
    result = collect(store, plan, grace_hours=24)
    assert result.spared_freshened >= 1
    assert store.get_bytes(orphan) == image("orphan")
    assert load_snapshot_table(store, late.manifest_key).column("sha256").to_pylist() == [content_hash("orphan")]


def test_gc_running_while_snapshots_commit_never_breaks_a_committed_manifest(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    history_store(store, tmp_path)
    _age(tmp_path / "store", 3)
    committed, stop = [], threading.Event()

    def committer() -> None:
        for i in range(12):
            names = {n: [box()] for n in ("orphan", "x2", "b", f"new{i}")}  # unreachable, old and new bytes
            committed.append(commit(store, tmp_path / f"c{i}", "carl", names))
        stop.set()

    thread = threading.Thread(target=committer)
    thread.start()
    while not stop.is_set():
        collect(store, plan_gc(store, keep_datasets=1, keep_snapshots=20, grace_hours=24), grace_hours=24)
    thread.join()
    for result in committed:
        for sha in load_snapshot_table(store, result.manifest_key).column("sha256").to_pylist():
            assert store.exists(content_key(sha)), f"{result.snapshot_id} lost {sha}"


def test_seaweedfs_freshened_object_is_spared(seaweed_store, tmp_path):
    """On a real S3 server: an object renewed (a server-side copy onto itself) after the listing is
    spared; Last-Modified has one-second resolution there, hence the waits."""
    store = seaweed_store
    history_store(store, tmp_path)
    time.sleep(2.2)
    plan = plan_gc(store, keep_datasets=1, keep_snapshots=1, grace_hours=1 / 3600)
    orphan = content_key(content_hash("orphan"))
    assert orphan in {o.key for o in plan.delete}
    assert store.touch(orphan, fresh_enough_s=0)  # what a commit does to an old object it reuses
    result = collect(store, plan, grace_hours=1 / 3600)
    assert result.spared_freshened == 1 and store.exists(orphan)
    assert not store.exists(content_key(content_hash("x2")))


class CountingListings:
    """A store wrapper that counts listings."""

    def __init__(self, store) -> None:
        self._store, self.listings = store, []

    def __getattr__(self, name):
        return getattr(self._store, name)

    def list_objects(self, prefix):
        self.listings.append(prefix)
        return self._store.list_objects(prefix)

    def list_keys(self, prefix):
        self.listings.append(prefix)
        return self._store.list_keys(prefix)


def test_planning_lists_the_store_once(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    history_store(store, tmp_path)
    counting = CountingListings(store)
    plan_gc(counting, 1, 1, 0)
    assert counting.listings == [""]


def test_capture_facts_live_and_go_with_their_snapshot(tmp_path):
    from imgassets.core.store.keys import snapshot_capture_key

    store = LocalObjectStore(tmp_path / "store")
    v = history_store(store, tmp_path)
    for name in ("s2", "s3"):
        store.put_bytes(snapshot_capture_key("ana", v[name].snapshot_id), b"PAR1 capture facts")
    plan = plan_gc(store, keep_datasets=1, keep_snapshots=1, grace_hours=0)
    doomed = {o.key for o in plan.delete}
    assert snapshot_capture_key("ana", v["s2"].snapshot_id) in doomed
    assert snapshot_capture_key("ana", v["s3"].snapshot_id) not in doomed
    assert plan.retained_snapshots == {"ana": sorted([v["s1"].snapshot_id, v["s3"].snapshot_id])}


@pytest.mark.slow  # processes, servers or a timed race: the full suite runs it
def test_the_lineage_index_skips_a_manifest_gc_deletes_while_it_reads(tmp_path):
    """gc and the lineage index update (the dataset build's last step) in two threads, 20 times over a
    store with 30 unretained dataset manifests each time: the update never fails on a manifest gc
    deleted after it was listed, and a lookup afterwards is right."""
    import threading

    from imgassets.core.store.keys import dataset_manifest_key
    from imgassets.core.versioning.lineage_index import manifests_holding, update_lineage_index

    store = LocalObjectStore(tmp_path / "store")
    v = history_store(store, tmp_path)
    data = store.get_bytes(dataset_manifest_key(v["d1"].dataset_id))
    errors: list[BaseException] = []
    for round_ in range(20):
        for i in range(30):
            store.put_bytes(dataset_manifest_key(f"{round_:04x}{i:012x}"), data)
        for key in list(store.list_keys("lineage/")):
            store.delete(key)  # the update reads every manifest again
        collector = threading.Thread(target=lambda: collect(store, plan_gc(store, 1, 1, 0), 0))
        collector.start()
        try:
            update_lineage_index(store)
        except Exception as exc:  # noqa: BLE001 -- the failure under test, reported below
            errors.append(exc)
        collector.join()
    assert errors == []
    held = {row["id"] for row in manifests_holding(store, content_hash("c"))}
    assert v["d2"].dataset_id in held
