"""The one ``Definitions`` of imgassets: assembles assets, checks, jobs, sensors and resources."""

import dagster as dg

from imgassets.defs.automation import nightly_sweep, training_automation
from imgassets.defs.deployment import executor_for, resources_for
from imgassets.defs.jobs import scientist_job, training_job
from imgassets.defs.model_checks import MODEL_CHECKS
from imgassets.defs.quality_checks import DATASET_CHECKS, QUALITY_CHECKS
from imgassets.defs.run_health import dead_runs_sensor
from imgassets.defs.scientist_assets import image_index, image_snapshot, label_table
from imgassets.defs.sensors import shared_drive_sensor
from imgassets.defs.training_assets import model_evaluation, training_dataset, yolo_model


def build_defs(resources: dict, executor=None) -> dg.Definitions:
    """The graph with the given resources and executor (``resources_for()``/``executor_for()``
    here; tests pass temporary ones)."""
    return dg.Definitions(
        executor=executor,
        assets=[image_index, label_table, image_snapshot, training_dataset, yolo_model, model_evaluation],
        asset_checks=[*QUALITY_CHECKS, *DATASET_CHECKS, *MODEL_CHECKS],
        jobs=[scientist_job, training_job],
        sensors=[shared_drive_sensor, training_automation, dead_runs_sensor],
        schedules=[nightly_sweep],
        resources=resources,
    )


defs = build_defs(resources_for(), executor_for())
