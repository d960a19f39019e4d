"""A scientist with a corrupt image and an out-of-range box: the blocking check fails, the
scientist gets no snapshot, training does not run; the good scientist is unaffected."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from imgassets.core.training import TrainingSettings
from imgassets.definitions import build_defs
from imgassets.defs.deployment import local_resources
from imgassets.graph_run import materialize_all
from imgassets_tests.conftest import shared_data_dir, tree_hashes

pytestmark = pytest.mark.slow


def _small_books(dest, count: int = 12) -> None:
    source = shared_data_dir() / "books_roboflow"
    (dest / "images").mkdir(parents=True)
    (dest / "labels").mkdir()
    shutil.copy(source / "data.yaml", dest / "data.yaml")
    for image in sorted((source / "train" / "images").iterdir())[:count]:
        shutil.copy(image, dest / "images" / image.name)
        shutil.copy(source / "train" / "labels" / f"{image.stem}.txt", dest / "labels" / f"{image.stem}.txt")


def test_blocking_check_stops_snapshot_and_training(tmp_path):
    drive = tmp_path / "drive"
    _small_books(drive / "good")
    _small_books(drive / "bad")
    images = sorted((drive / "bad" / "images").iterdir())
    corrupt = images[0]
    data = corrupt.read_bytes()
    corrupt.write_bytes(data[: len(data) // 2] + b"\xff\xd9")  # truncated, end marker put back
    bad_label = drive / "bad" / "labels" / f"{images[1].stem}.txt"
    bad_label.write_text("0 0.9 0.5 0.4 0.3\n")  # reaches x = 1.1
    before = tree_hashes(drive)
    home = tmp_path / "home"
    defs = build_defs(local_resources(home=str(home), shared_root=str(drive)))
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        summary = materialize_all(defs, instance, str(drive), str(home), ["bad", "good"], TrainingSettings())

        checks = {(c.partition, c.name): c for c in summary.checks}
        geometry = checks[("bad", "box_geometry")]
        assert not geometry.passed and geometry.blocking and geometry.severity == "ERROR"
        assert geometry.findings == [{"file": f"labels/{bad_label.name}", "line": 1,
                                      "reason": "box outside the image: x 0.7000..1.1000, y 0.3500..0.6500 (must be within 0..1)"}]
        decode = checks[("bad", "images_decode")]
        assert not decode.passed and not decode.blocking
        assert decode.findings[0]["file"] == f"images/{corrupt.name}"
        assert decode.findings[0]["reason"].startswith("corrupt: JPEG data cannot be fully decoded")
        assert checks[("good", "box_geometry")].passed

        by_name = {s.name: s for s in summary.scientists}
        assert by_name["bad"].blocked_by == ["box_geometry"] and by_name["bad"].snapshot_id is None
        assert by_name["good"].success and by_name["good"].snapshot_id
        assert summary.model is None and summary.dataset is None and summary.exit_code == 1
        assert "bad/box_geometry" in summary.training_skipped
        assert instance.get_latest_materialization_event(dg.AssetKey("yolo_model")) is None
        assert instance.get_latest_materialization_event(dg.AssetKey("training_dataset")) is None
        partitions = instance.get_materialized_partitions(dg.AssetKey("image_snapshot"))
        assert partitions == {"good"}

        # Built later (e.g. from the UI), the dataset holds only snapshots whose checks passed.
        result = defs.resolve_job_def("training_job").execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey("training_dataset")])
        dataset = result.output_for_node("training_dataset")
        assert set(dataset["snapshots"]) == {"good"}
    assert tree_hashes(drive) == before


def test_a_single_scientist_trains(tmp_path):
    """One scientist, one partition: the dataset is built from it alone."""
    drive = tmp_path / "drive"
    _small_books(drive / "solo")
    home = tmp_path / "home"
    defs = build_defs(local_resources(home=str(home), shared_root=str(drive)))
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        summary = materialize_all(defs, instance, str(drive), str(home), ["solo"], TrainingSettings())
    assert summary.exit_code == 0, summary.as_dict()
    assert summary.dataset["images_train"] + summary.dataset["images_val"] == 12
    assert (home / "objects" / summary.model["model_key"]).is_file()
