"""The sensor's decision rules as a pure function: settle window, old mtimes, vanished folders."""

from __future__ import annotations

from imgassets.core.drive.change_detection import decide
from imgassets.core.drive.walk import FolderState

SETTLE = 60
NS = 10**9


def state(fingerprint: str, newest_s: float) -> FolderState:
    return FolderState(fingerprint, 1, 1, int(newest_s * NS))


def test_a_change_launches_once_it_has_settled():
    t0 = 10_000.0
    first = decide({}, {"ana": state("f1", t0 - 5)}, t0, SETTLE)
    assert first.launch == [] and first.settling == ["ana"] and first.cursor["ana"] == [None, "f1", int(t0)]
    still = decide(first.cursor, {"ana": state("f1", t0 - 5)}, t0 + 30, SETTLE)
    assert still.launch == []
    settled = decide(still.cursor, {"ana": state("f1", t0 - 5)}, t0 + 61, SETTLE)
    assert settled.launch == [("ana", "f1")] and settled.cursor["ana"] == ["f1", None, None]
    again = decide(settled.cursor, {"ana": state("f1", t0 - 5)}, t0 + 200, SETTLE)
    assert again.launch == [] and again.settling == []


def test_a_half_copied_file_restarts_the_wait():
    t0 = 10_000.0
    tick = decide({}, {"ana": state("copying-1", t0)}, t0, SETTLE)
    tick = decide(tick.cursor, {"ana": state("copying-2", t0 + 50)}, t0 + 55, SETTLE)  # size grew
    assert tick.launch == [] and tick.cursor["ana"][1:] == ["copying-2", int(t0 + 55)]
    tick = decide(tick.cursor, {"ana": state("copying-2", t0 + 50)}, t0 + 100, SETTLE)
    assert tick.launch == []  # seen only 45 s
    tick = decide(tick.cursor, {"ana": state("copying-2", t0 + 50)}, t0 + 120, SETTLE)
    assert tick.launch == [("ana", "copying-2")]


def test_a_copy_with_an_old_mtime_is_still_a_change():
    t0 = 10_000.0
    launched = {"ana": ["before", None, None]}
    tick = decide(launched, {"ana": state("after", 1.0)}, t0, SETTLE)  # mtime from 1970
    tick = decide(tick.cursor, {"ana": state("after", 1.0)}, t0 + SETTLE, SETTLE)
    assert tick.launch == [("ana", "after")]


def test_no_settle_window_launches_at_once_and_missing_folders_are_kept():
    tick = decide({"gone": ["f9", None, None]}, {"ana": state("f1", 0)}, 5.0, 0)
    assert tick.launch == [("ana", "f1")] and tick.missing == ["gone"] and tick.cursor["gone"] == ["f9", None, None]
