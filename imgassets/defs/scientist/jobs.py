"""The job of one scientist's data (a partition of ``scientists``)."""

import dagster as dg

from imgassets.defs.partitions import scientists
from imgassets.defs.scientist.assets import image_index, image_snapshot, label_table

scientist_job = dg.define_asset_job(
    "scientist_job",
    selection=dg.AssetSelection.assets(image_index, label_table, image_snapshot),
    partitions_def=scientists,
    description="Index, label table, quality checks and snapshot of one scientist's folder.",
)
