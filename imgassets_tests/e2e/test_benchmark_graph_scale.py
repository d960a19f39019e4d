"""The graph and lineage benchmarks run as a user runs them (processes, tiny sizes) and print
every figure their tables claim, so the scripts cannot rot between the runs at the users' sizes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _module(*args: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_graph_scale_prints_every_column_at_each_size(tmp_path):
    # 80 and 100 images, as many labels, a folder: above the image index's worker-pool threshold (64 files)
    done = _module("benchmarks.graph_scale", "--sizes", "160", "200", "--reference", "80", "--scientists", "2",
                   "--size", "96x64", "--change-images", "8", "--change-fraction", "0.05", "--training-start", "160",
                   "--drives", str(tmp_path / "drives"), "--dir", str(tmp_path / "work"),
                   "--write", str(tmp_path / "table.md"), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stderr[done.stderr.rindex('{"machine"'):])
    sizes = result["sizes"]
    assert set(sizes) == {"80", "160", "200"}
    for figures in sizes.values():
        assert figures["ingest_wall_s"] > figures["ingest_steps_s"] * 0.5 > 0
        assert figures["ingest_floor_with_copy_s"] == pytest.approx(figures["ingest_floor_s"] + figures["copy_s"])
        assert figures["change_runs"] == ["scientist_00", "scientist_01"] and figures["share_images"] >= 2
        assert figures["share_rerun_s"] > 0
        expected = (figures["share_change_s"] - figures["share_tick_s"] - 2 * figures["share_rerun_s"]) / figures["ingest_wall_s"]
        assert figures["share_beyond_runs_vs_cold"] == pytest.approx(expected)
    start, large = sizes["160"]["training_start"], sizes["200"]
    assert start["ratio"] == pytest.approx(start["ours_s"] / start["plain_s"])
    assert start["vs_own_cache"] == pytest.approx(start["ours_s"] / start["own_cache_s"])
    assert "training_start" not in large  # above --training-start
    assert math.isfinite(large["change_vs_4k"]) and set(large["growth_per_doubling"]) == {"ingest", "dataset"}
    table = (tmp_path / "table.md").read_text()
    header, rule, *rows = [line for line in table.splitlines() if line.startswith("|")]
    assert [row.split("|")[1].strip() for row in rows] == ["80", "160", "200"]
    assert all(row.count("|") == header.count("|") == rule.count("|") for row in rows)
    # the training start measured at 160 only: its two cells are figures there, empty at 200
    assert all(cell.strip() for cell in rows[1].split("|")[-3:-1]) and rows[2].endswith("|  |  |")
    assert "nan" not in table


def test_lineage_benchmark_finds_the_probe_through_the_index(tmp_path):
    done = _module("benchmarks.lineage_scale", "--scientists", "3", "--versions", "2", "--images", "300", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    # the probe is scientist_00's image 1, replaced in version 1 (every fifth image is, in turn): in versions 0 and 2
    assert figures["manifests"] == 6 and figures["snapshots_found"] == 2
    assert figures["lookup_s"] > 0 and figures["full_scan_s"] > 0 and figures["lookup_vs_scan"] > 0  # rounded figures
