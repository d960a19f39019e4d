"""The comparison benchmark runs end to end on a tiny tree and reports every figure it claims:
our side always, DVC and rclone when installed (reported as n/a otherwise, never faked)."""

from __future__ import annotations

import shutil

import pytest

from benchmarks.generated_tree import TreeSpec, apply_change, generate_tree
from benchmarks.versus_tools import TARGETS, dvc_executable, markdown, run, verdicts

pytestmark = pytest.mark.slow


def test_generated_tree_has_distinct_images_duplicates_and_labels(tmp_path):
    images = generate_tree(tmp_path / "drive", TreeSpec(images=40, scientists=2, width=96, height=64,
                                                        duplicate_fraction=0.5))
    assert len(images) == 40
    contents = [p.read_bytes() for p in images]
    assert 1 < len(contents) - len(set(contents)) < 20  # some byte duplicates, mostly distinct
    for image in images:
        label = image.parents[2] / "labels" / image.parent.name / f"{image.stem}.txt"
        cls, *xywh = label.read_text().split()
        assert cls in {"0", "1", "2"} and all(0 <= float(v) <= 1 for v in xywh)
    modified, added = apply_change(tmp_path / "drive", 0.1, 0, 96, 64)
    assert (modified, added) == (2, 2)
    assert len(list((tmp_path / "drive").glob("scientist_*/images/*/*_new.jpg"))) == 2


def test_benchmark_reports_every_figure_and_ratio(tmp_path):
    result = run(tmp_path / "work", TreeSpec(images=80, scientists=2, width=96, height=64), change=0.05)
    figures, ratios = result["figures"], result["ratios"]
    assert figures["images"] == 80 and figures["changed_images"] == 4
    assert figures["change_runs"] == 2  # both scientists changed, both launched
    assert figures["cold_ingest_s"] >= figures["index_cold_s"]  # the cold ingest indexes, then labels and stores
    stages = [figures[f"change_{stage}_s"] for stage in ("tick", "index", "labels", "snapshot")]
    assert all(seconds > 0 for seconds in stages) and figures["change_s"] == pytest.approx(sum(stages), abs=0.003)
    assert figures["schema_call_s"] > 0
    assert figures["change_floor_s"] == pytest.approx(stages[0] + stages[1] + 2 * figures["schema_call_s"], abs=0.003)
    from benchmarks.versus_tools import RATIOS

    for key in ("validation_vs_decode_floor", "cold_ingest_vs_floors", "rescan_vs_find", "change_vs_cold",
                "warm_pull_vs_cp_al", "tick_vs_find", "cold_pull_vs_cp_r", "change_floor_vs_cold"):
        numerator, denominator = RATIOS[key]  # each ratio is the quotient of the figures it names
        assert ratios[key] == pytest.approx(figures[numerator] / figures[denominator], rel=0.02), key
    assert (ratios["archival_vs_rclone"] is None) == (shutil.which("rclone") is None)
    assert (ratios["archival_vs_dvc"] is None) == (dvc_executable() is None)
    rows = verdicts(result)
    assert len(rows) == len(TARGETS)
    text = markdown(result)
    assert text.count("\n| ") >= len(TARGETS) + len(figures)
    assert "n/a" in text or (shutil.which("rclone") and dvc_executable())


def test_change_path_benchmark_times_every_stage_of_every_round(tmp_path):
    from benchmarks.change_path import STAGES
    from benchmarks.change_path import run as change_rounds
    result = change_rounds(tmp_path, TreeSpec(images=40, scientists=2, width=96, height=64), change=0.1, rounds=2)
    assert result["cold_s"] > 0 and len(result["rounds"]) == 2
    for row in result["rounds"]:
        assert all(row[stage] > 0 for stage in STAGES)
        assert row["total_s"] >= sum(row[stage] for stage in STAGES) - 1e-3
        # both figures are rounded to the millisecond: at this size that alone moves the ratio by >1%
        assert row["vs_cold"] == pytest.approx(row["total_s"] / result["cold_s"], rel=0.01, abs=0.002 / result["cold_s"])
    from imgassets.core.store.local import LocalObjectStore
    from imgassets.core.versioning.snapshot import load_snapshot
    store = LocalObjectStore(tmp_path / "store")
    rows = [r for key in result["manifests"].values() for r in load_snapshot(store, key)]
    assert sorted(r["path"] for r in rows) == sorted(  # the last snapshots hold the changed drive
        str(p.relative_to(p.parents[2])) for p in (tmp_path / "drive").glob("scientist_*/images/*/*.jpg"))
