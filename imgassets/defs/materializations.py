"""Reading lineage back from Dagster's event log (never "the newest file" in a folder)."""

import dagster as dg

from imgassets.defs.partitions import scientists

SNAPSHOT_KEY = dg.AssetKey("image_snapshot")


def latest_snapshot(instance: dg.DagsterInstance, scientist: str) -> dict | None:
    """``{snapshot_id, manifest_key}`` of the scientist's latest ``image_snapshot`` materialization
    (a snapshot only materializes after its blocking checks passed), or ``None``."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=SNAPSHOT_KEY, asset_partitions=[scientist]), limit=1).records
    if not records:
        return None
    metadata = records[0].asset_materialization.metadata
    return {key: metadata[key].value for key in ("snapshot_id", "manifest_key")}


def latest_label_report(instance: dg.DagsterInstance, scientist: str) -> dict | None:
    """The quality report the scientist's latest ``label_table`` materialization computed (its
    ``quality_report_json`` metadata: the table the snapshot is made from), or ``None``."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("label_table"), asset_partitions=[scientist]), limit=1).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get("quality_report_json")
    return value.value if value is not None else None


def latest_snapshots(instance: dg.DagsterInstance) -> dict[str, dict]:
    """:func:`latest_snapshot` of every scientist partition that has one."""
    found = {name: latest_snapshot(instance, name) for name in instance.get_dynamic_partitions(scientists.name)}
    return {name: ref for name, ref in found.items() if ref is not None}


def latest_dataset_id(instance: dg.DagsterInstance) -> str | None:
    """The dataset id of the latest ``training_dataset`` materialization, or ``None``."""
    event = instance.get_latest_materialization_event(dg.AssetKey("training_dataset"))
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("dataset_id")
    return value.value if value is not None else None
