"""Jobs: one scientist's data (a partition), and training on every scientist's snapshot."""

import dagster as dg

from imgassets.defs.partitions import scientists
from imgassets.defs.scientist_assets import image_index, image_snapshot, label_table
from imgassets.defs.training_assets import model_evaluation, training_dataset, yolo_model

scientist_job = dg.define_asset_job(
    "scientist_job",
    selection=dg.AssetSelection.assets(image_index, label_table, image_snapshot),
    partitions_def=scientists,
    description="Index, label table, quality checks and snapshot of one scientist's folder.",
)

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.assets(training_dataset, yolo_model, model_evaluation),
    description="Merge every scientist's latest good snapshot into a dataset, train YOLO on it, evaluate it.",
)
