"""The one ``Definitions`` of imgassets: assembles assets, checks, jobs, sensors and resources."""

import dagster as dg

from imgassets.defs.deployment import executor_for, resources_for
from imgassets.defs.descriptions import readable_assets
from imgassets.defs.labeling.assets import labeling_queue
from imgassets.defs.labeling.jobs import labeling_job
from imgassets.defs.policies import policy_resources
from imgassets.defs.run_health import dead_runs_sensor
from imgassets.defs.scientist.assets import image_index, image_snapshot, label_table
from imgassets.defs.scientist.checks import QUALITY_CHECKS
from imgassets.defs.scientist.jobs import scientist_job
from imgassets.defs.scientist.sensor import shared_drive_sensor
from imgassets.defs.training.assets import (
    champion_model,
    model_evaluation,
    retractions,
    training_dataset,
    yolo_model,
)
from imgassets.defs.training.automation import nightly_sweep, training_automation
from imgassets.defs.training.checks import DATASET_CHECKS, MODEL_CHECKS
from imgassets.defs.training.jobs import training_job


def build_defs(resources: dict, executor=None) -> dg.Definitions:
    """The graph with the given resources and executor (``resources_for()``/``executor_for()``
    here; tests pass temporary ones). The policy resources come from the environment
    (:func:`~imgassets.defs.policies.policy_resources`) unless ``resources`` names them."""
    return dg.Definitions(
        executor=executor,
        assets=readable_assets([image_index, label_table, image_snapshot, retractions, training_dataset, yolo_model,
                                model_evaluation, champion_model, labeling_queue]),
        asset_checks=[*QUALITY_CHECKS, *DATASET_CHECKS, *MODEL_CHECKS],
        jobs=[scientist_job, training_job, labeling_job],
        sensors=[shared_drive_sensor, training_automation, dead_runs_sensor],
        schedules=[nightly_sweep],
        resources={**policy_resources(), **resources},
    )


defs = build_defs(resources_for(), executor_for())
