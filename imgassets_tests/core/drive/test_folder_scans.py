"""Scanning every scientist folder at once (the sensor's tick): on a process pool once the drive is
large, with the same folder states as one scan at a time."""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest

from imgassets.core import worker_pool
from imgassets.core.drive import walk as drive
from imgassets.core.drive.walk import scan_folder, scan_folders

REAL_POOL = drive.process_pool


def _drive(root, sizes):
    folders = {}
    for number, count in enumerate(sizes):
        folder = root / f"scientist_{number}"
        (folder / "images").mkdir(parents=True)
        for i in range(count):
            (folder / "images" / f"{i:03d}.jpg").write_bytes(b"\xff\xd8" + bytes([number, i % 256]) * (i + 1))
        (folder / "images" / ".DS_Store").write_bytes(b"junk")
        folders[folder.name] = folder
    folders["gone"] = root / "gone"  # a folder removed between listing and scanning: an empty state
    return folders


@pytest.fixture
def spied_pool(monkeypatch):
    """The real pool, recording each time the scan asks for it."""
    asked = []
    monkeypatch.setattr(drive, "process_pool", lambda workers: asked.append(workers) or REAL_POOL(workers))
    monkeypatch.setattr(drive, "_LISTED", {})
    return asked



def test_a_parallel_scan_gives_the_same_states_as_one_folder_at_a_time(tmp_path, spied_pool):
    folders = _drive(tmp_path, [5, 40, 12])
    parallel = scan_folders(folders, workers=2, min_files=0)
    assert spied_pool == [2]
    assert list(parallel) == list(folders)  # in the order given, not the order scanned
    for name, folder in folders.items():
        alone = scan_folder(folder)
        assert (parallel[name].fingerprint, parallel[name].files, parallel[name].bytes, parallel[name].listing) == (
            alone.fingerprint, alone.files, alone.bytes, alone.listing)
    assert [parallel[n].files for n in folders] == [5, 40, 12, 0]


def test_a_small_drive_and_the_first_scan_of_a_process_are_scanned_without_a_pool(tmp_path, spied_pool):
    folders = _drive(tmp_path, [30, 30])
    first = scan_folders(folders, workers=2, min_files=50)  # nothing listed yet in this process: serial
    assert spied_pool == []
    second = scan_folders(folders, workers=2, min_files=50)  # 60 files last time: worth a pool
    assert spied_pool == [2]
    assert {n: s.fingerprint for n, s in second.items()} == {n: s.fingerprint for n, s in first.items()}
    (folders["scientist_0"] / "images" / "000.jpg").unlink()
    for path in (folders["scientist_1"] / "images").glob("*.jpg"):
        path.unlink()
    scan_folders(folders, workers=2, min_files=50)  # 60 files last time: a pool once more
    changed = scan_folders(folders, workers=2, min_files=50)  # 29 files last time: serial again
    assert spied_pool == [2, 2]
    assert changed["scientist_0"].files == 29 and changed["scientist_0"].fingerprint != first["scientist_0"].fingerprint
    assert scan_folders({"only": folders["scientist_0"]}, workers=2, min_files=0)["only"].files == 29  # one folder: no pool
    assert spied_pool == [2, 2]


def test_a_threaded_process_scans_on_workers_from_the_fork_server(tmp_path, spied_pool):
    folders = _drive(tmp_path, [8, 3])
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait)  # the code server evaluates the sensor beside its gRPC threads
    busy.start()
    try:
        parallel = scan_folders(folders, workers=5, min_files=0)
    finally:
        stop.set()
        busy.join()
    assert spied_pool == [5] and worker_pool.POOLS[5]._mp_context.get_start_method() == "forkserver"
    assert {n: s.fingerprint for n, s in parallel.items()} == {n: scan_folder(f).fingerprint for n, f in folders.items()}


def test_a_broken_pool_costs_a_serial_scan_not_a_failed_tick(tmp_path, monkeypatch):
    folders = _drive(tmp_path, [4, 6])
    broken = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork"))
    broken.submit(os.getpid).result()  # workers started
    for process in list(broken._processes.values()):
        process.kill()  # as the OOM killer would
        process.join()
    monkeypatch.setattr(drive, "process_pool", lambda workers: broken)
    states = scan_folders(folders, workers=2, min_files=0)
    assert {n: s.fingerprint for n, s in states.items()} == {n: scan_folder(f).fingerprint for n, f in folders.items()}
    broken.shutdown()
