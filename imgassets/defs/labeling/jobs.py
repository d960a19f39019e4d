"""The labeling job: one scientist's labeling queue (a partition of ``scientists``)."""

import dagster as dg

from imgassets.defs.labeling.assets import labeling_queue
from imgassets.defs.partitions import scientists

labeling_job = dg.define_asset_job(
    "labeling_job",
    selection=dg.AssetSelection.assets(labeling_queue),
    partitions_def=scientists,
    description="Rank one scientist's unlabelled images for labeling with the champion, and its pre-annotations.",
)
