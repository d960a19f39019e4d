"""Hostile input, round three: each case as ``imgassets`` processes on copies of the shared datasets,
asserting the exit code, the message a scientist reads (file and reason), what reached the home, and
that the drive is unchanged."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from imgassets_tests.e2e.test_commands_real_drive import coco128_folder, run_command
from imgassets_tests.e2e.test_hostile_share import SMOKE, drive_state

SECRET = b"OUTSIDE-THE-ROOT-7f3a"


def _bytes_anywhere(root: Path, needle: bytes) -> list[Path]:
    """Every file under ``root`` (links not followed) that holds ``needle``."""
    return [path for path in root.rglob("*") if path.is_file() and not path.is_symlink()
            and needle in path.read_bytes()]


def _swap_during_label_reading(folder: Path, outside: Path, home: Path, stop: threading.Event) -> list[str]:
    """Once the image index step has written its output, replace ``folder/labels`` by a link to
    ``outside`` until the label table step has written its own (or ``stop``), then put the real
    folder back, its parent's mtime as it was. Returns what happened, for the assertion message."""
    events: list[str] = []
    index_out = home / "storage" / "image_index" / folder.name
    table_out = home / "storage" / "label_table" / folder.name
    labels, parked = folder / "labels", folder.parent.parent / "parked_labels"
    mtime = os.stat(folder).st_mtime_ns
    while not stop.is_set() and not any(index_out.parent.glob(f"{folder.name}*")):
        time.sleep(0.002)
    if stop.is_set():
        return events
    os.rename(labels, parked)
    os.symlink(outside, labels)
    events.append("swapped")
    while not stop.is_set() and not any(table_out.parent.glob(f"{folder.name}*")):
        time.sleep(0.005)
    os.unlink(labels)
    os.rename(parked, labels)
    os.utime(folder, ns=(mtime, mtime))
    events.append("restored")
    return events


@pytest.mark.slow
def test_a_labels_folder_swapped_for_a_link_during_the_run_is_never_read(tmp_path):
    drive, home, outside = tmp_path / "drive", tmp_path / "home", tmp_path / "outside"
    folder = coco128_folder(drive / "ana")
    for label in (folder / "labels").rglob("*.txt"):  # same names, outside the root
        target = outside / label.relative_to(folder / "labels")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(SECRET + b" 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.2 0.2\n")
    before = drive_state(drive)
    stop, events = threading.Event(), []
    swapper = threading.Thread(target=lambda: events.extend(_swap_during_label_reading(folder, outside, home, stop)))
    swapper.start()
    try:
        code, out, err, _ = run_command("run", "--json", "--shared-root", str(drive), "--home", str(home), *SMOKE)
    finally:
        stop.set()
        swapper.join()
    assert events == ["swapped", "restored"], events
    assert SECRET.decode() not in out + err
    assert _bytes_anywhere(home, SECRET) == []
    assert "on its path is a symbolic link" in out, out[-3000:]
    assert code in (0, 1), err[-3000:]
    assert drive_state(drive) == before
