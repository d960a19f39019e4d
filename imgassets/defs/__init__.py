"""The thin Dagster layer: assets, asset checks, sensors, jobs and resources wiring the core."""

import warnings

import dagster as dg

# Partitioned asset checks (one evaluation per scientist) are a Dagster preview feature and
# ``Output(data_version=...)`` (snapshot and dataset ids as data versions) a beta one; we rely on
# both knowingly, so their warnings are not repeated on every import and run.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)
