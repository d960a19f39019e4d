"""The image index is incremental (unchanged files are not read again), parallel, and skips the
same junk the sensor skips."""

from __future__ import annotations

import os
import threading

import pandas as pd
import pytest

from imgassets.core import worker_pool
from imgassets.core.drive import walk as drive
from imgassets.core.drive.walk import is_ignored
from imgassets.core.images import index as index_module
from imgassets.core.images.index import update_image_index
from imgassets_tests.conftest import build_image_index, jpeg_bytes


def _folder(tmp_path, count=6):
    folder = tmp_path / "ana"
    (folder / "images").mkdir(parents=True)
    for i in range(count):
        (folder / "images" / f"{i:03d}.jpg").write_bytes(jpeg_bytes(color=(i % 256, i // 256, 7)))
    return folder


def test_unchanged_files_are_not_read_again(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    first = update_image_index(folder, None, workers=1)
    assert (first.reused, first.indexed) == (0, 6)
    reads = []
    real = index_module._index_one
    monkeypatch.setattr(index_module, "_index_one", lambda f, p, k: reads.append(p) or real(f, p, k))

    same = update_image_index(folder, first.index, workers=1)
    assert (same.reused, same.indexed, reads) == (6, 0, [])
    pd.testing.assert_frame_equal(same.index, first.index)

    (folder / "images" / "001.jpg").write_bytes(jpeg_bytes(color=(200, 1, 1)))  # changed
    (folder / "images" / "002.jpg").unlink()                                     # deleted
    (folder / "images" / "new.jpg").write_bytes(jpeg_bytes(color=(1, 200, 1)))   # new
    changed = update_image_index(folder, same.index, workers=1)
    assert sorted(reads) == ["images/001.jpg", "images/new.jpg"]
    assert (changed.reused, changed.indexed) == (4, 2)
    assert "images/002.jpg" not in set(changed.index["path"])
    assert changed.index.set_index("path").loc["images/001.jpg", "sha256"] != first.index.set_index("path").loc["images/001.jpg", "sha256"]


def test_parallel_index_equals_serial(tmp_path):
    folder = _folder(tmp_path, count=80)
    serial = build_image_index(folder, workers=1)
    parallel = build_image_index(folder, workers=2)
    pd.testing.assert_frame_equal(serial, parallel)


def test_workers_fork_only_from_a_single_threaded_process(tmp_path, monkeypatch):
    real_new_pool = worker_pool.new_pool
    assert worker_pool.pool_context().get_start_method() == ("fork" if threading.active_count() == 1 else "forkserver")
    folder = _folder(tmp_path, count=80)
    started = []
    monkeypatch.setattr(worker_pool, "new_pool", lambda workers: started.append(real_new_pool(workers)) or started[-1])
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait)  # a Dagster run has log and heartbeat threads
    busy.start()
    try:
        assert worker_pool.pool_context().get_start_method() == "forkserver"
        from_threaded_parent = build_image_index(folder, workers=3)  # a new pool, started from the fork server
    finally:
        stop.set()
        busy.join()
    assert [pool._mp_context.get_start_method() for pool in started] == ["forkserver"]
    pd.testing.assert_frame_equal(from_threaded_parent, build_image_index(folder, workers=1))


def test_junk_and_partial_transfers_are_skipped(tmp_path):
    folder = _folder(tmp_path, count=1)
    for junk in (".DS_Store", "Thumbs.db", "~$notes.docx", "big.jpg.part", "x.jpg.crdownload", "upload.tmp",
                 ".hidden/inside.jpg", "images/.a.jpg.XyZ12"):
        (folder / junk).parent.mkdir(parents=True, exist_ok=True)
        (folder / junk).write_bytes(b"junk")
    assert list(build_image_index(folder)["path"]) == ["images/000.jpg"]


def test_is_ignored():
    assert [n for n in ("a.jpg", ".git", "Thumbs.db", "DESKTOP.INI", "~$x.xlsx", "a.PART", "ok.txt") if is_ignored(n)] == [
        ".git", "Thumbs.db", "DESKTOP.INI", "~$x.xlsx", "a.PART"]


@pytest.mark.parametrize("name", [
    ".git", ".DS_Store", "Thumbs.db", "tHuMbS.Db", "DESKTOP.INI", "desktop.ini", "~$x.xlsx", "~$", "a.PART", "b.pArT",
    "c.crdownload", "d.CRDOWNLOAD", "e.tmp", "f.TmP", "a.jpg", "ok.txt", "train.jpg", "x.dat", "thumbs.db.jpg", "t", "d.b",
])
def test_the_walks_pre_test_never_misses_an_ignored_name(name):
    may_be_ignored = name[0] in drive._MAYBE_FIRST or name[-2:] in drive._MAYBE_LAST2
    assert may_be_ignored or not is_ignored(name)


def test_symlinked_folders_are_not_followed_but_reported(tmp_path):
    folder = _folder(tmp_path, count=1)
    os.symlink(folder, folder / "loop")
    index = build_image_index(folder)
    assert list(index["path"]) == ["images/000.jpg", "loop"]
    loop = index.set_index("path").loc["loop"]
    assert loop["status"] == "not_a_regular_file" and "a folder" in loop["reason"]


def test_an_unchanged_listing_returns_the_previous_index_but_unreadable_and_touched_files_are_read_again(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    first = update_image_index(folder, None, workers=1)
    listing = sorted(drive.walk_files(folder), key=lambda s: s.path)
    same = update_image_index(folder, first.index, workers=1, listing=listing)
    assert same.index is first.index and (same.reused, same.indexed) == (6, 0)

    reads = []
    real = index_module._index_one
    monkeypatch.setattr(index_module, "_index_one", lambda f, p, k: reads.append(p) or real(f, p, k))
    unreadable = first.index.copy()
    unreadable.loc[2, ["status", "reason"]] = ["unreadable", "cannot read file: Permission denied"]
    again = update_image_index(folder, unreadable, workers=1, listing=listing)
    assert reads == ["images/002.jpg"] and set(again.index["status"]) == {"ok"}

    reads.clear()
    stat = (folder / "images" / "004.jpg").stat()
    os.utime(folder / "images" / "004.jpg", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # touched, same bytes
    touched = update_image_index(folder, first.index, workers=1, listing=sorted(drive.walk_files(folder), key=lambda s: s.path))
    assert reads == ["images/004.jpg"] and (touched.reused, touched.indexed) == (5, 1)


def test_kinds_are_kept_only_under_the_same_layout_rules(tmp_path, monkeypatch):
    from imgassets.core.drive import layout
    from imgassets.core.images.index import LAYOUT_RULES
    from imgassets.core.store.local import LocalObjectStore
    from imgassets.core.store.table_cache import IMAGE_INDEX, load_cached_table, save_cached_table
    from imgassets_tests.conftest import image_bytes

    folder = _folder(tmp_path)
    (folder / "images" / "anim.gif").write_bytes(image_bytes("GIF"))
    store = LocalObjectStore(tmp_path / "store")
    save_cached_table(store, IMAGE_INDEX, "ana", update_image_index(folder, None, workers=1).index)
    kept = load_cached_table(store, IMAGE_INDEX, "ana")  # the stamp survives the kept Parquet
    assert kept.attrs[LAYOUT_RULES] == layout.RULES_FINGERPRINT
    assert kept.set_index("path").at["images/anim.gif", "kind"] == "other"
    assert update_image_index(folder, kept, workers=1).index is kept  # same rules, same files: as it was

    reads = []
    real = index_module._index_one
    monkeypatch.setattr(index_module, "_index_one", lambda f, p, k: reads.append(p) or real(f, p, k))
    monkeypatch.setattr(layout, "IMAGE_EXTENSIONS", layout.IMAGE_EXTENSIONS | {".gif"})  # a release adds GIF
    monkeypatch.setattr(layout, "RULES_FINGERPRINT", "rules-with-gif")
    update = update_image_index(folder, kept, workers=1)
    assert reads == ["images/anim.gif"] and (update.reused, update.indexed) == (6, 1)
    row = update.index.set_index("path").loc["images/anim.gif"]
    assert row["kind"] == "image" and row["width"] == 32 and update.index.attrs[LAYOUT_RULES] == "rules-with-gif"

    reads.clear()
    unstamped = kept.copy()
    unstamped.attrs.clear()  # an index kept before indexes recorded their rules: classified again
    assert update_image_index(folder, unstamped, workers=1).index.set_index("path").at["images/anim.gif", "kind"] == "image"
    assert reads == ["images/anim.gif"]


def test_the_rules_fingerprint_covers_every_image_extension_and_class_map_name():
    from imgassets.core.drive import layout
    kinds = layout.classify_paths(list(layout.RULE_PROBES))
    probed = {p.rpartition(".")[2].lower() for p, k in kinds.items() if k == layout.IMAGE}
    assert {e.lstrip(".") for e in layout.IMAGE_EXTENSIONS} <= probed
    assert layout.CLASS_MAP_NAMES <= {p.rpartition("/")[2] for p, k in kinds.items() if k == layout.CLASS_MAP}
    assert {layout.LABEL, layout.OTHER} <= set(kinds.values())


def test_an_empty_folder_has_an_empty_index(tmp_path):
    (tmp_path / "ana").mkdir()
    first = update_image_index(tmp_path / "ana", None, workers=1)
    again = update_image_index(tmp_path / "ana", first.index, workers=1)
    assert len(first.index) == 0 and list(first.index.columns) == index_module.INDEX_COLUMNS
    assert (again.reused, again.indexed, len(again.index)) == (0, 0, 0)


def test_random_changes_index_as_a_fresh_build_and_read_only_what_changed(tmp_path, monkeypatch):
    import random
    rng = random.Random(7)
    folder = _folder(tmp_path, count=12)
    (folder / "labels").mkdir()
    for i in range(0, 12, 2):
        (folder / "labels" / f"{i:03d}.txt").write_text(f"0 0.5 0.5 0.{i + 1} 0.1\n")
    index = update_image_index(folder, None, workers=1).index
    reads = []
    real = index_module._index_one
    monkeypatch.setattr(index_module, "_index_one", lambda f, p, k: reads.append(p) or real(f, p, k))
    for round_number in range(8):
        reads.clear()
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        touched = set()
        for _ in range(3):
            action, victim = rng.choice(["add", "modify", "delete", "touch"]), rng.choice(files)
            rel = victim.relative_to(folder).as_posix()
            if action == "add":
                new = folder / "images" / f"new{round_number}_{rng.randrange(10**6)}.jpg"
                new.write_bytes(jpeg_bytes(color=(rng.randrange(256), 9, 9)))
                touched.add(new.relative_to(folder).as_posix())
            elif action == "modify" and victim.exists():
                victim.write_bytes(victim.read_bytes() + b"\0")
                touched.add(rel)
            elif action == "delete" and victim.exists():
                victim.unlink()
            elif action == "touch" and victim.exists():
                os.utime(victim, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns + 10**9))
                touched.add(rel)
        index = update_image_index(folder, index, workers=1).index
        assert set(reads) <= touched, round_number  # (reads before the fresh build below)
        fresh = build_image_index(folder, workers=1)
        pd.testing.assert_frame_equal(index.reset_index(drop=True), fresh.reset_index(drop=True))
