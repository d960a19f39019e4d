"""A scientist with a corrupt image and an out-of-range box: the blocking check fails and the
scientist gets no snapshot; the good scientist is unaffected and trains, as the automation does it."""

from __future__ import annotations

import dagster as dg
import pytest

from imgassets.cli.run import materialize_all
from imgassets.core.training.train import PRESETS
from imgassets_tests.conftest import graph_on, small_books, tree_hashes

pytestmark = pytest.mark.slow


def test_a_blocked_scientist_is_left_out_and_the_others_train(tmp_path):
    drive = tmp_path / "drive"
    small_books(drive / "good")
    small_books(drive / "bad")
    images = sorted((drive / "bad" / "images").iterdir())
    corrupt = images[0]
    data = corrupt.read_bytes()
    corrupt.write_bytes(data[: len(data) // 2] + b"\xff\xd9")  # truncated, end marker put back
    bad_label = drive / "bad" / "labels" / f"{images[1].stem}.txt"
    bad_label.write_text("0 0.9 0.5 0.4 0.3\n")  # reaches x = 1.1
    before = tree_hashes(drive)
    home = tmp_path / "home"
    with graph_on(tmp_path, drive, home) as (defs, instance):
        summary = materialize_all(defs, instance, str(drive), str(home), ["bad", "good"], PRESETS["smoke"])

        checks = {(c.partition, c.name): c for c in summary.checks}
        geometry = checks[("bad", "box_geometry")]
        assert not geometry.passed and geometry.blocking and geometry.severity == "ERROR"
        assert geometry.findings == [{"file": f"labels/{bad_label.name}", "line": 1,
                                      "reason": "box outside the image: x 0.7000..1.1000, y 0.3500..0.6500 (must be within 0..1)",
                                      "code": "box_outside_image"}]
        decode = checks[("bad", "images_decode")]
        assert not decode.passed and not decode.blocking
        assert decode.findings[0]["file"] == f"images/{corrupt.name}"
        assert decode.findings[0]["reason"].startswith("corrupt: JPEG data cannot be fully decoded")
        assert checks[("good", "box_geometry")].passed

        by_name = {s.name: s for s in summary.scientists}
        assert by_name["bad"].blocked_by == ["box_geometry"] and by_name["bad"].snapshot_id is None
        assert by_name["good"].success and by_name["good"].snapshot_id
        # As the automation does it: the blocked scientist is left out, the others train; still exit 1.
        assert summary.exit_code == 1 and summary.training_skipped is None
        assert summary.left_out == [{"scientist": "bad", "reason": "blocked by box_geometry", "snapshot_used": None}]
        assert set(summary.dataset["snapshots"]) == {"good"} and summary.model is not None
        partitions = instance.get_materialized_partitions(dg.AssetKey("image_snapshot"))
        assert partitions == {"good"}

        # Fixed, "bad" gets a snapshot; broken again, its last good snapshot stands in for it.
        bad_label.write_text("0 0.5 0.5 0.4 0.3\n")
        fixed = materialize_all(defs, instance, str(drive), str(home), ["bad", "good"], PRESETS["smoke"])
        assert fixed.exit_code == 0 and fixed.left_out == [], fixed.as_dict()
        last_good = {s.name: s.snapshot_id for s in fixed.scientists}["bad"]
        bad_label.write_text("0 0.9 0.5 0.4 0.3\n")
        again = materialize_all(defs, instance, str(drive), str(home), ["bad", "good"], PRESETS["smoke"])
        assert again.exit_code == 1
        assert again.left_out == [{"scientist": "bad", "reason": "blocked by box_geometry", "snapshot_used": last_good}]
        assert again.dataset["snapshots"] == {"bad": last_good, "good": fixed.dataset["snapshots"]["good"]}
    assert tree_hashes(drive) == before


def test_a_single_scientist_trains(tmp_path):
    """One scientist, one partition: the dataset is built from it alone."""
    drive = tmp_path / "drive"
    small_books(drive / "solo")
    home = tmp_path / "home"
    with graph_on(tmp_path, drive, home) as (defs, instance):
        summary = materialize_all(defs, instance, str(drive), str(home), ["solo"], PRESETS["smoke"])
    assert summary.exit_code == 0, summary.as_dict()
    d = summary.dataset
    assert d["images_train"] + d["images_val"] + d["images_benchmark"] == 12 and d["images_benchmark"] >= 1
    assert (home / "objects" / summary.model["model_key"]).is_file()
