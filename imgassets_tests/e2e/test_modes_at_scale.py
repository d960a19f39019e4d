"""Every way people run imgassets, on a drive above every threshold the code has: two scientists of
100+ real images each (coco128 and books_roboflow; the image index's process pool starts at
:data:`imgassets.core.images.index.PARALLEL_THRESHOLD` files) plus, in one folder, enough notes for
the sensor's folder scans to go parallel (:data:`imgassets.core.drive.walk.PARALLEL_SCAN_FILES`).

* ``imgassets ui`` with its daemon: the sensor launches each scientist's run, the automation
  launches training, and every run reaches SUCCESS;
* a materialization launched from the UI: partitions added and a partition backfill launched
  through the webserver's GraphQL (``addDynamicPartition``, ``launchPartitionBackfill``, the
  mutations the asset graph's "Materialize" uses), the sensor off;

each stopped afterwards with no process left behind (:func:`imgassets_tests.e2e.dagster_dev.dagster_dev`).
``materialize`` in-process at this size is :mod:`imgassets_tests.e2e.test_pipeline_real_data`; the
production stack (Postgres, separate daemon and code server) is
:mod:`imgassets_tests.e2e.test_production_postgres`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imgassets.core.drive.walk import PARALLEL_SCAN_FILES
from imgassets.core.images.index import PARALLEL_THRESHOLD
from imgassets_tests.conftest import copy_dataset, small_books
from imgassets_tests.e2e.dagster_dev import Dagit, dagster_dev

pytestmark = pytest.mark.slow
IN_PROGRESS = ("NOT_STARTED", "QUEUED", "STARTING", "STARTED", "CANCELING")


def large_drive(drive: Path, notes: bool = True) -> dict[str, int]:
    """``ana``: coco128 (128 images, YOLO); ``ben``: 120 books_roboflow images; with ``notes``,
    ana also holds :data:`PARALLEL_SCAN_FILES` small text files. Returns the images per scientist."""
    copy_dataset("coco128", drive / "ana")
    small_books(drive / "ben", count=120)
    if notes:
        (drive / "ana" / "notes").mkdir()
        for i in range(PARALLEL_SCAN_FILES):
            (drive / "ana" / "notes" / f"note-{i:05d}.txt").write_text(f"capture note {i}\n")
    images = {"ana": 128, "ben": 120}
    assert min(images.values()) >= 100 > PARALLEL_THRESHOLD
    return images


def settled_runs(ui: Dagit, timeout: float) -> list[dict]:
    """The instance's runs once none is in progress (and at least one exists)."""
    def settled():
        runs = ui.runs()
        return runs if runs and all(r["status"] not in IN_PROGRESS for r in runs) else None
    return ui.wait_for("every run to end", settled, timeout)


def tags_of(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def test_imgassets_ui_sensor_and_automation_runs_all_end_on_a_large_drive(tmp_path):
    drive = tmp_path / "drive"
    images = large_drive(drive)
    with dagster_dev(tmp_path, drive, via="imgassets") as ui:
        ui.wait_for("the champion", lambda: ui.materializations("champion_model"), 900)
        runs = settled_runs(ui, 600)
        snapshots = ui.materializations("image_snapshot")
        index_meta = {p: ui.query("query($k: AssetKeyInput!) { assetOrError(assetKey: $k) { ... on Asset {"
                                  " assetMaterializations(partitions: [\"" + p + "\"], limit: 1) { metadataEntries"
                                  " { label ... on IntMetadataEntry { intValue } } } } } }", k={"path": ["image_index"]})
                      for p in images}
    log = ui.log.read_text()
    assert "starting dg dev" in log and "SupersessionWarning" not in log and "will not be used" not in log
    statuses = [(r["jobName"], tags_of(r).get("dagster/partition"), r["status"]) for r in runs]
    assert {s for *_, s in statuses} == {"SUCCESS"}, statuses
    sensor_runs = sorted(tags_of(r)["dagster/partition"] for r in runs
                         if tags_of(r).get("dagster/sensor_name") == "shared_drive_sensor")
    assert sensor_runs == ["ana", "ben"]
    assert any(tags_of(r).get("dagster/sensor_name") == "training_automation" for r in runs)
    assert sorted(m["partition"] for m in snapshots) == ["ana", "ben"]
    for scientist, count in images.items():
        entries = index_meta[scientist]["assetOrError"]["assetMaterializations"][0]["metadataEntries"]
        indexed = {e["label"]: e.get("intValue") for e in entries}
        assert indexed["images"] == count and indexed["indexed_files"] > PARALLEL_THRESHOLD


REPOSITORY = {"repositoryName": "__repository__", "repositoryLocationName": "imgassets"}


def test_a_backfill_launched_from_the_ui_ends_on_a_large_drive(tmp_path):
    """As a user does in the asset graph with the drive sensor off: add the scientists'
    partitions, select the scientist assets, Materialize (a partition backfill)."""
    drive = tmp_path / "drive"
    images = large_drive(drive, notes=False)
    with dagster_dev(tmp_path, drive, IMGASSETS_DRIVE_SENSOR="stopped") as ui:
        for scientist in images:
            added = ui.query("mutation($r: RepositorySelector!, $k: String!) { addDynamicPartition("
                             "repositorySelector: $r, partitionsDefName: \"scientists\", partitionKey: $k) {"
                             " __typename } }", r=REPOSITORY, k=scientist)
            assert added["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess", added
        launched = ui.query("mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {"
                            " __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }",
                            p={"partitionNames": sorted(images),
                               "assetSelection": [{"path": [a]} for a in ("image_index", "label_table", "image_snapshot")]})
        assert launched["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", launched
        ui.wait_for("both snapshots", lambda: len(ui.materializations("image_snapshot")) == 2, 600)
        ui.wait_for("the model the automation trains", lambda: ui.materializations("yolo_model"), 600)
        runs = settled_runs(ui, 600)
    statuses = [(r["jobName"], tags_of(r).get("dagster/partition"), r["status"]) for r in runs]
    assert {s for *_, s in statuses} == {"SUCCESS"}, statuses
    backfill = launched["launchPartitionBackfill"]["backfillId"]  # the automation launches its own (labeling queues)
    backfilled = sorted(tags_of(r)["dagster/partition"] for r in runs if tags_of(r).get("dagster/backfill") == backfill)
    assert backfilled == ["ana", "ben"]
