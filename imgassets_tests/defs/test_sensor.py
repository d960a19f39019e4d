"""The shared-drive sensor, evaluated with build_sensor_context on a real instance."""

from __future__ import annotations

import json
import os

import dagster as dg
import pytest

from imgassets.defs.partitions import scientists
from imgassets.defs.scientist.sensor import default_sensor_status
from imgassets_tests.conftest import sensor_tick


def test_new_folder_changed_file_and_no_change(tmp_path):
    root = tmp_path / "drive"
    (root / "ana" / "images").mkdir(parents=True)
    (root / "ana" / "images" / "a.jpg").write_bytes(b"x")
    (root / "ben").mkdir()
    (root / "ben" / "b.png").write_bytes(b"y")
    with dg.instance_for_test() as instance:
        first = sensor_tick(instance, root, None)
        assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["ana", "ben"]]
        assert sorted(r.partition_key for r in first.run_requests) == ["ana", "ben"]
        assert set(instance.get_dynamic_partitions(scientists.name)) == {"ana", "ben"}
        cursor = first.cursor
        assert set(json.loads(cursor)) == {"ana", "ben"} and len(cursor) < 120

        unchanged = sensor_tick(instance, root, cursor)
        assert unchanged.run_requests == [] and unchanged.dynamic_partitions_requests == []

        # A file copied in with an old mtime still counts as a change.
        (root / "ben" / "old.jpg").write_bytes(b"z")
        os.utime(root / "ben" / "old.jpg", ns=(10**9, 10**9))
        changed = sensor_tick(instance, root, cursor)
        assert [r.partition_key for r in changed.run_requests] == ["ben"]
        assert changed.run_requests[0].run_key == f"ben:{json.loads(changed.cursor)['ben'][0]}"
        assert changed.dynamic_partitions_requests == []

        (root / "chloe").mkdir()
        new_folder = sensor_tick(instance, root, changed.cursor)
        assert [r.partition_keys for r in new_folder.dynamic_partitions_requests] == [["chloe"]]
        assert [r.partition_key for r in new_folder.run_requests] == ["chloe"]


def test_a_fresh_change_waits_for_the_settle_window(tmp_path):
    root = tmp_path / "drive"
    (root / "ana").mkdir(parents=True)
    (root / "ana" / "a.jpg").write_bytes(b"x")
    with dg.instance_for_test() as instance:
        waiting = sensor_tick(instance, root, None, settle=3600)
        assert waiting.run_requests == [] and waiting.dynamic_partitions_requests == []
        assert json.loads(waiting.cursor)["ana"][0] is None  # pending, not launched
        assert instance.get_dynamic_partitions(scientists.name) == []


def test_a_vanished_folder_keeps_its_partition(tmp_path):
    root = tmp_path / "drive"
    (root / "ana").mkdir(parents=True)
    with dg.instance_for_test() as instance:
        first = sensor_tick(instance, root, None)
        (root / "ana").rmdir()
        gone = sensor_tick(instance, root, first.cursor)
        assert gone.run_requests == [] and json.loads(gone.cursor) == json.loads(first.cursor)
        assert instance.get_dynamic_partitions(scientists.name) == ["ana"]


@pytest.mark.parametrize(("value", "expected"), [(None, "RUNNING"), ("running", "RUNNING"), ("Stopped", "STOPPED")])
def test_drive_sensor_default_status_from_environment(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("IMGASSETS_DRIVE_SENSOR", raising=False)
    else:
        monkeypatch.setenv("IMGASSETS_DRIVE_SENSOR", value)
    assert default_sensor_status().name == expected


def test_drive_sensor_default_status_refuses_a_typo(monkeypatch):
    monkeypatch.setenv("IMGASSETS_DRIVE_SENSOR", "off")
    with pytest.raises(ValueError, match="IMGASSETS_DRIVE_SENSOR must be 'running' or 'stopped', not 'off'"):
        default_sensor_status()
