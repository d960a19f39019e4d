"""IO managers: DataFrames as Parquet files, other values pickled, under ``<home>/storage``."""


import os

import dagster as dg
import pandas as pd
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager
from dagster._core.storage.upath_io_manager import UPathIOManager
from upath import UPath


class ParquetIOManager(UPathIOManager):
    """Stores a pandas DataFrame as ``<base>/<asset>/<partition>.parquet``, written atomically."""

    extension = ".parquet"

    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{path.name}")
        obj.to_parquet(str(tmp), index=False)
        os.replace(str(tmp), str(path))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        return pd.read_parquet(str(path))


class LocalParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Parquet tables under ``<home>/storage``."""

    home: str

    def create_io_manager(self, context) -> ParquetIOManager:
        return ParquetIOManager(base_path=UPath(self.home) / "storage")


class PartitionDictPickleIOManager(PickledObjectFilesystemIOManager):
    """Pickled values. An unpartitioned step that reads a partitioned asset always gets
    ``{partition: value}`` -- also for one partition or none, where Dagster's UPath IO managers
    return the bare value or ``None`` -- and partitions never materialized are left out."""

    def load_input(self, context: dg.InputContext):
        if context.has_asset_partitions and not context.has_partition_key:
            paths = self._get_paths_for_partitions(context)
            loaded = {key: self._load_partition_from_path(context, key, paths[key]) for key in context.asset_partition_keys}
            return {key: value for key, value in loaded.items() if value is not None}
        return super().load_input(context)


class LocalPickleIOManager(dg.ConfigurableIOManagerFactory):
    """Small values (snapshot and dataset references) pickled under ``<home>/storage``."""

    home: str

    def create_io_manager(self, context) -> dg.IOManager:
        return PartitionDictPickleIOManager(base_dir=os.path.join(self.home, "storage"))
