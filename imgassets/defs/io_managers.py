"""IO managers: DataFrames as Parquet files, other values pickled, under ``<home>/storage``."""


import io
import os

import dagster as dg
import pandas as pd

from imgassets.core.store.atomic import atomic_path
from imgassets.core.store.keys import dagster_value_key
from imgassets.defs.resources import ObjectStoreResource


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores a pandas DataFrame as ``<base_dir>/<asset key path>/<partition>.parquet`` (an
    unpartitioned asset: ``<base_dir>/<asset key path>.parquet``), written atomically; the path is
    added to the output's metadata as ``path``.

    One partition per output and per input: every partitioned asset here is read by steps of its
    own partition. A plain ``IOManager`` rather than Dagster's ``UPathIOManager``, which logs
    events to the run's event log for every input it loads and every output it writes, to support
    loading many partitions at once, which nothing here does. Raises ``FileNotFoundError`` naming
    the file when an input was never written."""

    base_dir: str

    def path(self, context: dg.InputContext | dg.OutputContext) -> str:
        """The Parquet file of ``context``'s asset (and partition)."""
        stem = os.path.join(self.base_dir, *context.asset_key.path)
        return f"{stem}/{context.asset_partition_key}.parquet" if context.has_asset_partitions else f"{stem}.parquet"

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        path = self.path(context)
        with atomic_path(path) as tmp:  # unique per writer: concurrent runs of a partition never tear it
            obj.to_parquet(tmp, index=False)
        context.add_output_metadata({"path": dg.MetadataValue.path(path)})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        return pd.read_parquet(self.path(context))


class LocalParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Parquet tables under ``<home>/storage`` (:class:`ParquetIOManager`)."""

    home: str

    def create_io_manager(self, context) -> ParquetIOManager:
        return ParquetIOManager(base_dir=os.path.join(self.home, "storage"))


def local_pickle_io_manager(home: str | dg.EnvVar) -> dg.FilesystemIOManager:
    """Small values (snapshot and dataset references) pickled under ``<home>/storage`` (Dagster's
    public ``FilesystemIOManager``)."""
    base = home.get_value() if isinstance(home, dg.EnvVar) else home
    return dg.FilesystemIOManager(base_dir=os.path.join(base, "storage"))


class ObjectStoreParquetIOManager(dg.ConfigurableIOManager):
    """DataFrames as Parquet objects ``dagster/<asset>/<partition>.parquet`` in the object store, so
    steps in other processes or pods read what this one wrote (the production deployment)."""

    object_store: dg.ResourceDependency[ObjectStoreResource]

    def _key(self, context: dg.InputContext | dg.OutputContext) -> str:
        return dagster_value_key(list(context.asset_key.path),
                                 context.asset_partition_key if context.has_asset_partitions else None)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        buffer = io.BytesIO()
        obj.to_parquet(buffer, index=False)
        self.object_store.get_store().put_bytes(self._key(context), buffer.getvalue())

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.object_store.get_store().get_bytes(self._key(context))))
