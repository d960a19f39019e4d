"""Automation: training follows new snapshots by itself; a nightly sweep catches what a sensor missed.

* ``training_dataset`` materializes when a scientist's snapshot *data version* changed (the
  snapshot id: re-runs on unchanged data do nothing) and nothing upstream is in progress. It does
  not wait for scientists whose partitions are failing or missing -- ``AutomationCondition.eager()``
  would (``any_deps_missing``) and so let one scientist hold everyone's data out forever; instead
  the dataset takes each scientist's last good snapshot (a snapshot only exists after its blocking
  checks passed).
* ``yolo_model`` materializes when the dataset's data version changed *and* every blocking check
  on it passed (``all_deps_blocking_checks_passed``: the leakage check). A failing blocking check
  stops the model in the same run, and this condition stops a later automatic run from training on
  the unchecked dataset -- eager alone would.
* ``labeling_queue`` (per scientist) materializes when the scientist's snapshot or index, or the
  champion, changed: a new champion ranks every scientist's unlabelled images again (each image
  predicted once per champion), a new snapshot ranks that scientist's.
* The automation sensor (on by default) evaluates these every ``IMGASSETS_AUTOMATION_INTERVAL``
  seconds (default 30). The nightly schedule re-runs every scientist at 02:00.
* At most one training run at a time, whoever launched it: ``yolo_model`` is in the concurrency
  pool ``yolo_training`` whose limit (1) is in ``dagster.yaml``.
"""


import dagster as dg

from imgassets import settings
from imgassets.defs.partitions import scientists
from imgassets.defs.scientist.jobs import scientist_job

training_automation = dg.AutomationConditionSensorDefinition(
    "training_automation",
    target=["training_dataset", "yolo_model", "model_evaluation", "champion_model", "labeling_queue"],
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=settings.automation_interval_seconds(),
    description="Builds the training dataset and trains YOLO when snapshots change (see imgassets.defs.training.automation).",
)


@dg.schedule(job=scientist_job, cron_schedule="0 2 * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def nightly_sweep(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    """Every night, one ``scientist_job`` run per known scientist, for changes a sensor could miss
    (an unchanged folder re-runs cheaply: the index reuses its rows and nothing is uploaded)."""
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [dg.RunRequest(partition_key=name, run_key=f"nightly:{day}:{name}")
            for name in context.instance.get_dynamic_partitions(scientists.name)]
