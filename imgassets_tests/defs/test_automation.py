"""Automation conditions evaluated for real (dg.evaluate_automation_conditions) on an instance with
real materializations: training follows changed snapshots, not re-runs; a failing scientist does
not hold the others back; the model waits for the dataset's blocking checks."""

from __future__ import annotations

import datetime

import dagster as dg
import pytest

from imgassets.cli.run import run_scientist
from imgassets_tests.conftest import add_scientists, graph_on, small_books

DATASET, MODEL = dg.AssetKey("training_dataset"), dg.AssetKey("yolo_model")


def _requested(defs, instance, cursor):
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor,
                                               asset_selection=dg.AssetSelection.assets(DATASET, MODEL))
    return {key for key in (DATASET, MODEL) if result.get_num_requested(key)}, result.cursor


@pytest.mark.slow
def test_training_follows_snapshots_and_blocking_checks(tmp_path):
    drive, home = tmp_path / "drive", tmp_path / "home"
    small_books(drive / "ana", count=6)
    small_books(drive / "ben", count=6)
    with graph_on(tmp_path, drive, home, ["ana", "ben"]) as (defs, instance):
        requested, cursor = _requested(defs, instance, None)
        assert requested == set()  # nothing to train on yet

        assert run_scientist(defs, instance, "ana")[0].success
        requested, cursor = _requested(defs, instance, cursor)
        assert requested == {DATASET}  # ben has no snapshot: ana's data is not held back

        dataset_run = defs.resolve_job_def("training_job").execute_in_process(
            instance=instance, asset_selection=[DATASET], raise_on_error=False)
        assert dataset_run.success
        requested, cursor = _requested(defs, instance, cursor)
        assert requested == {MODEL}  # dataset changed and its blocking check passed

        assert run_scientist(defs, instance, "ana")[0].success  # same files again
        requested, cursor = _requested(defs, instance, cursor)
        assert requested == set()  # same snapshot id: nothing to do

        (drive / "ben" / "labels" / sorted((drive / "ben" / "labels").iterdir())[0].name).write_text("0 0.9 0.5 0.4 0.4\n")
        assert run_scientist(defs, instance, "ben")[0].blocked_by == ["box_geometry"]
        requested, cursor = _requested(defs, instance, cursor)
        assert requested == set()  # a blocked scientist produces no snapshot, so no new dataset

        small_books(drive / "cleo", count=4)
        add_scientists(instance, "cleo")
        assert run_scientist(defs, instance, "cleo")[0].success
        requested, cursor = _requested(defs, instance, cursor)
        assert requested == {DATASET}
        defs.resolve_job_def("training_job").execute_in_process(instance=instance, asset_selection=[DATASET])
        leak = {"asset_key": DATASET, "check_name": "no_split_leakage", "blocking": True,
                "severity": dg.AssetCheckSeverity.ERROR}
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(passed=False, **leak))
        requested, cursor = _requested(defs, instance, cursor)
        assert MODEL not in requested  # the dataset's blocking check failed: no training


def test_training_assets_carry_the_conditions_and_the_pool():
    from imgassets.definitions import defs

    graph = defs.resolve_asset_graph()
    assert graph.get(DATASET).automation_condition.get_label() == "a scientist's snapshot changed"
    assert graph.get(MODEL).automation_condition.get_label() == "a checked dataset changed"
    assert defs.get_assets_def(MODEL).op.pool == "yolo_training"
    assert defs.resolve_sensor_def("training_automation").default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_schedule_def("nightly_sweep").cron_schedule == "0 2 * * *"


def test_nightly_sweep_requests_every_scientist():
    from imgassets.defs.training.automation import nightly_sweep

    with dg.instance_for_test() as instance:
        add_scientists(instance, "ana", "ben")
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime.datetime(2026, 11, 21, 2))
        requests = nightly_sweep(context)
    assert [(r.partition_key, r.run_key) for r in requests] == [("ana", "nightly:2026-11-21:ana"), ("ben", "nightly:2026-11-21:ben")]
