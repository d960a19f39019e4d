"""End to end with the real daemon: `dagster dev` on a temporary DAGSTER_HOME; images dropped into
a scientist folder are picked up by the sensor, and the snapshot, dataset and model materialize
with no click; a bad label then fails the blocking check visibly and training does not follow.
Observed through Dagster's GraphQL API. Every process the test starts is stopped."""

from __future__ import annotations

import time

import pytest

from imgassets_tests.conftest import small_books
from imgassets_tests.e2e.dagster_dev import dagster_dev

pytestmark = pytest.mark.slow


def test_sensor_and_automation_under_dagster_dev(tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    with dagster_dev(tmp_path, drive) as ui:
        small_books(drive / "ana", count=8)

        ui.wait_for("yolo_model to materialize", lambda: ui.materializations("yolo_model"), 300)
        # the labeling queue follows the snapshot and the champion by itself too (ana has no unlabelled image)
        ui.wait_for("ana's labeling queue after the champion", lambda: ui.materializations("champion_model") and len(
            [m for m in ui.materializations("labeling_queue") if m["partition"] == "ana"]) >= 1, 300)
        assert [m["partition"] for m in ui.materializations("image_snapshot")] == ["ana"]
        assert len(ui.materializations("training_dataset")) == 1
        runs = ui.runs()
        launched_by = {r["runId"]: {t["key"]: t["value"] for t in r["tags"]} for r in runs}
        sensor_runs = [r for r in runs if launched_by[r["runId"]].get("dagster/sensor_name") == "shared_drive_sensor"]
        assert [r["jobName"] for r in sensor_runs] == ["scientist_job"]

        def automated_runs_ended():
            automated = [r for r in ui.runs() if {t["key"]: t["value"] for t in r["tags"]}.get("dagster/sensor_name")
                         == "training_automation"]
            return automated if automated and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED")
                                                  for r in automated) else None

        automated = ui.wait_for("the automation's runs to end", automated_runs_ended, 300)
        assert len(automated) >= 3 and {r["status"] for r in automated} == {"SUCCESS"}  # training, labeling queues

        labels = sorted((drive / "ana" / "labels").iterdir())
        labels[0].write_text("0 0.9 0.5 0.4 0.4\n")  # reaches x = 1.1

        def failed_check():
            return [e for e in ui.check_executions("label_table", "box_geometry") if e["status"] == "FAILED"]

        failure = ui.wait_for("box_geometry to fail", failed_check, 180)[0]
        assert failure["evaluation"]["partition"] == "ana"
        time.sleep(20)  # several automation ticks
        assert len(ui.materializations("training_dataset")) == 1 and len(ui.materializations("yolo_model")) == 1
        assert len(ui.materializations("image_snapshot")) == 1
