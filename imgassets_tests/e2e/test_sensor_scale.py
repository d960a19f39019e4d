"""The sensor at scale: 100k files in 50 scientist folders (benchmarks/sensor_scale.py)."""

from __future__ import annotations

import pytest

from benchmarks.sensor_scale import run


@pytest.mark.slow
def test_sensor_tick_over_100k_files(tmp_path, capsys):
    figures = run(tmp_path / "drive", files=100_000, scientists=50)
    with capsys.disabled():
        print(f"\nsensor scale: {figures}")
    assert figures["files"] == 100_000
    assert figures["first_tick_runs"] == 50 and figures["no_change_runs"] == 0
    assert figures["one_change_runs"] == ["scientist_07"]
    assert figures["cursor_bytes"] < 5_000  # a fingerprint per scientist, not a list of files
    # Dagster kills a sensor evaluation after 60 s: a hard limit, not a speed target.
    assert max(figures["first_tick_s"], figures["no_change_tick_s"], figures["one_change_tick_s"]) < 60
