"""The training job: every scientist's latest good snapshot merged, trained on, evaluated."""

import dagster as dg

from imgassets.defs.training.assets import (
    champion_model,
    model_evaluation,
    retractions,
    training_dataset,
    yolo_model,
)

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.assets(retractions, training_dataset, yolo_model, model_evaluation, champion_model),
    description="Merge every scientist's latest good snapshot into a dataset, train YOLO on it, score it against "
                "the champion on the benchmark split, promote it when it is not worse.",
)
