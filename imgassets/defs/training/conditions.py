"""Automation conditions of the training assets and the training pool (rules in
:mod:`imgassets.defs.training.automation`). Kept apart so the asset modules can import them."""

import dagster as dg

TRAINING_POOL = "yolo_training"

_quiet = ~dg.AutomationCondition.any_deps_in_progress() & ~dg.AutomationCondition.in_progress()

dataset_condition = (
    dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed()).since_last_handled()
    & _quiet
).with_label("a scientist's snapshot changed")

labeling_condition = (
    dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed()).since_last_handled()
    & _quiet
).with_label("the scientist's snapshot or the champion changed")

model_condition = (
    dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed()).since_last_handled()
    & _quiet
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("a checked dataset changed")
