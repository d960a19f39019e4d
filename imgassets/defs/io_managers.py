"""IO managers: DataFrames as Parquet files, other values pickled, under ``<home>/storage``."""


import io
import os

import dagster as dg
import pandas as pd
from upath import UPath

from imgassets.core.store.atomic import atomic_path
from imgassets.core.store.keys import dagster_value_key
from imgassets.defs.resources import ObjectStoreResource


class ParquetIOManager(dg.UPathIOManager):
    """Stores a pandas DataFrame as ``<base>/<asset>/<partition>.parquet``, written atomically."""

    extension = ".parquet"

    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        with atomic_path(str(path)) as tmp:  # unique per writer: concurrent runs of a partition never tear it
            obj.to_parquet(tmp, index=False)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        return pd.read_parquet(str(path))


class LocalParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Parquet tables under ``<home>/storage``."""

    home: str

    def create_io_manager(self, context) -> ParquetIOManager:
        return ParquetIOManager(base_path=UPath(self.home) / "storage")


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
