"""Archive mode "move": sources leave the drive only once verified in the store and unchanged,
and under injected failures no image is ever lost."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import pytest

from imgassets.cli.run import run_scientist
from imgassets.core.labels.table import build_label_table
from imgassets.core.store.keys import content_key
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning import archive
from imgassets.core.versioning.snapshot import commit_snapshot, load_snapshot
from imgassets.defs.resources import SharedDrive
from imgassets_tests.conftest import build_image_index, graph_on, jpeg_bytes, snapshot_records


def _drop(folder: Path, start: int, count: int) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(exist_ok=True)
    (folder / "data.yaml").write_text("names: [cat, dog]\n")
    for i in range(start, start + count):
        (folder / "images" / f"img{i}.jpg").write_bytes(jpeg_bytes(color=(i * 11 % 256, 60, 60)))
        (folder / "labels" / f"img{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.2 0.2\n")


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


def assert_nothing_lost(before: dict[str, str], folder: Path, store) -> None:
    """Every file that was on the drive is still there unchanged, or its bytes are in the store."""
    for path, sha in before.items():
        if (folder / path).is_file():
            assert hashlib.sha256((folder / path).read_bytes()).hexdigest() == sha, path
        else:
            assert hashlib.sha256(store.get_bytes(content_key(sha))).hexdigest() == sha, path


@pytest.mark.slow
def test_move_mode_through_dagster(tmp_path):
    drive, home = tmp_path / "drive", tmp_path / "home"
    folder = drive / "ana"
    _drop(folder, 0, 6)
    before = _hashes(folder)
    store = LocalObjectStore(home / "objects")
    with graph_on(tmp_path, drive, home, ["ana"], shared_drive=SharedDrive(root=str(drive), archive_mode="move")) \
            as (defs, instance):
        first, _ = run_scientist(defs, instance, "ana")
        assert first.success
        assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == ["data.yaml"]
        assert_nothing_lost(before, folder, store)
        rows = load_snapshot(store, f"snapshots/ana/{first.snapshot_id}.parquet")
        assert [(r["path"], len(r["boxes"])) for r in rows] == [(f"images/img{i}.jpg", 1) for i in range(6)]
        log = store.get_bytes(archive.archive_log_key("ana", first.snapshot_id)).decode()
        assert log.count('"path"') == 12

        unchanged, _ = run_scientist(defs, instance, "ana")
        assert unchanged.snapshot_id == first.snapshot_id and unchanged.uploaded_objects == 0

        _drop(folder, 6, 1)
        more, _ = run_scientist(defs, instance, "ana")
        rows = load_snapshot(store, f"snapshots/ana/{more.snapshot_id}.parquet")
        assert len(rows) == 7 and more.uploaded_objects == 1
        assert not (folder / "images").exists()
        event = instance.get_latest_materialization_event(dg.AssetKey("image_snapshot")).asset_materialization
        assert event.metadata["moved_files"].value == 2 and event.metadata["archive_mode"].value == "move"
        assert event.metadata["checked_objects"].value == 1  # the previous manifest vouches for the six moved away


def _committed(tmp_path: Path):
    folder = tmp_path / "ana"
    _drop(folder, 0, 5)
    store = LocalObjectStore(tmp_path / "store")
    index = build_image_index(folder)
    records = snapshot_records(index, build_label_table(folder, index))
    result = commit_snapshot(store, "ana", folder, records)
    return folder, store, index, records, result


def test_corrupt_object_in_store_keeps_the_source_and_its_label(tmp_path):
    folder, store, index, records, result = _committed(tmp_path)
    before = _hashes(folder)
    victim = records[1]
    (store.root / content_key(victim["sha256"])).write_bytes(b"bit rot")
    outcome = archive.archive_sources(store, "ana", result.snapshot_id, folder, index, records)
    kept = dict(outcome.kept)
    assert "not verified in the store" in kept["images/img1.jpg"]
    assert kept["labels/img1.txt"] == "kept with its image images/img1.jpg"
    assert len(outcome.moved) == 8 and (folder / "images" / "img1.jpg").is_file()
    assert_nothing_lost(before, folder, store)


def test_a_file_changed_after_hashing_is_kept(tmp_path):
    folder, store, index, records, result = _committed(tmp_path)
    before = _hashes(folder)
    (folder / "images" / "img2.jpg").write_bytes(jpeg_bytes(color=(1, 1, 1)))
    outcome = archive.archive_sources(store, "ana", result.snapshot_id, folder, index, records)
    assert dict(outcome.kept)["images/img2.jpg"].startswith("changed since it was indexed")
    before["images/img2.jpg"] = hashlib.sha256((folder / "images" / "img2.jpg").read_bytes()).hexdigest()
    assert_nothing_lost(before, folder, store)


def test_a_failing_delete_is_reported_and_nothing_is_lost(tmp_path, monkeypatch):
    folder, store, index, records, result = _committed(tmp_path)
    before = _hashes(folder)
    real_remove = archive.remove_source

    def flaky_remove(folder, path):
        if str(path).endswith("img3.jpg"):
            raise PermissionError(13, "Permission denied")
        real_remove(folder, path)

    monkeypatch.setattr(archive, "remove_source", flaky_remove)
    outcome = archive.archive_sources(store, "ana", result.snapshot_id, folder, index, records)
    assert dict(outcome.kept)["images/img3.jpg"] == "cannot remove: Permission denied"
    assert (folder / "labels" / "img3.txt").is_file()
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["data.yaml", "img3.jpg", "img3.txt"]
    assert_nothing_lost(before, folder, store)


def test_carry_forward_keeps_moved_rows_and_prefers_current_ones():
    previous = [{"path": "a.jpg", "sha256": "1"}, {"path": "b.jpg", "sha256": "2"}, {"path": "gone.jpg", "sha256": "3"}]
    current = [{"path": "b.jpg", "sha256": "22"}, {"path": "c.jpg", "sha256": "4"}]
    merged = archive.carry_forward(previous, current, present_paths={"b.jpg", "c.jpg"})
    assert [(r["path"], r["sha256"]) for r in merged] == [("a.jpg", "1"), ("b.jpg", "22"), ("c.jpg", "4"), ("gone.jpg", "3")]


def test_unknown_archive_mode_is_refused():
    with pytest.raises(ValueError, match="archive_mode must be one of copy, move"):
        SharedDrive(root="/x", archive_mode="delete")
