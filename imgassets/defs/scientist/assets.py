"""Per-scientist assets: image index -> label table -> image snapshot (partition = scientist)."""

import json
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from imgassets.core.drive import layout
from imgassets.core.drive.listing import ListingError, discard_listing, load_listing
from imgassets.core.drive.walk import ListedFiles
from imgassets.core.images.index import rejected_images, update_image_index, valid_images
from imgassets.core.labeling.provenance import load_prelabels, provenance_summary, with_provenance
from imgassets.core.labels.checks import LabelFindings
from imgassets.core.labels.report import data_yaml_findings, quality_report, report_markdown
from imgassets.core.labels.table import build_label_table, usable_boxes
from imgassets.core.labels.unlabelled import declared_folders
from imgassets.core.store.base import ObjectStore
from imgassets.core.store.keys import snapshot_log_prefix, snapshot_report_key
from imgassets.core.store.table_cache import IMAGE_INDEX, LABEL_TABLE, load_cached_table, save_cached_table
from imgassets.core.training.review import load_review
from imgassets.core.versioning.archive import MOVE, archive_sources, carry_forward_snapshot
from imgassets.core.versioning.manifest import SNAPSHOT_SCHEMA, manifest_table
from imgassets.core.versioning.refs import log_version
from imgassets.core.versioning.sequences import store_snapshot_captures
from imgassets.core.versioning.snapshot import commit_snapshot, snapshot_table, stored_objects
from imgassets.defs.deployment import store_kind
from imgassets.defs.materializations import latest_label_report, latest_snapshot
from imgassets.defs.metadata import ASSET_GROUP, Key, archive_metadata, markdown_table, prelabel_metadata
from imgassets.defs.partitions import FINGERPRINT_TAG, scientists
from imgassets.defs.policies import DatasetPolicyResource
from imgassets.defs.resources import ObjectStoreResource, SharedDrive
from imgassets.defs.scientist.check_specs import LABEL_CHECK_SPECS, label_check_results

GROUP = ASSET_GROUP


def sensor_listing(context: dg.AssetExecutionContext, store: ObjectStore) -> tuple[ListedFiles | None, str | None]:
    """The folder listing stored by the sensor for this run's fingerprint tag, and its fingerprint
    (``None`` when none is used). ``None`` (walk the folder) for a run launched by hand, a
    re-execution (the folder may have changed since the original run) or a listing that is
    missing or corrupt (logged)."""
    fingerprint = context.run.tags.get(FINGERPRINT_TAG)
    listing = None
    if fingerprint and not context.run.parent_run_id:
        try:
            listing = load_listing(store, context.partition_key, fingerprint)
        except ListingError as exc:
            context.log.warning(f"{exc}; walking the folder instead")
    return (listing, fingerprint) if listing is not None else (None, None)


@dg.asset(partitions_def=scientists, io_manager_key="parquet_io_manager", group_name=GROUP, kinds={"parquet"})
def image_index(context: dg.AssetExecutionContext, shared_drive: SharedDrive,
                object_store: ObjectStoreResource) -> dg.Output[pd.DataFrame]:
    """Every file under the scientist's folder: size, mtime, inode, SHA-256, sniffed format,
    displayed size, EXIF orientation, perceptual hash and a status (``ok`` or why the image is
    rejected). Incremental: unchanged files (path, size, mtime_ns, inode) keep their previous row.
    A run the sensor launched indexes the listing the sensor stored (no second walk)."""
    store = object_store.get_store()
    previous = load_cached_table(store, IMAGE_INDEX, context.partition_key)
    listing, fingerprint = sensor_listing(context, store)
    update = update_image_index(shared_drive.folder(context.partition_key), previous, listing=listing)
    index = update.index
    save_cached_table(store, IMAGE_INDEX, context.partition_key, index)
    if fingerprint:  # used once: the run key never launches this folder state again
        discard_listing(store, context.partition_key, fingerprint)
    images = index[index["kind"] == layout.IMAGE]
    rejected = rejected_images(index)
    return dg.Output(index, metadata={
        "dagster/row_count": len(index),
        "listed_by": f"sensor listing {fingerprint}" if fingerprint else "walk of the folder",
        "reused_rows": update.reused,
        "indexed_files": update.indexed,
        Key.IMAGES: len(images),
        Key.IMAGES_VALID: len(valid_images(index)),
        "images_rejected": len(rejected),
        "label_files": int((index["kind"] == layout.LABEL).sum()),
        "other_files": int((index["kind"] == layout.OTHER).sum()),
        "formats": dg.MetadataValue.json(images["format"].value_counts(dropna=True).to_dict()),
        "rejected": markdown_table(["path", "status", "reason"],
                                   rejected[["path", "status", "reason"]].head(50).itertuples(index=False)),
    })


@dg.asset(partitions_def=scientists, io_manager_key="parquet_io_manager", group_name=GROUP, kinds={"parquet", "pandera"},
          check_specs=LABEL_CHECK_SPECS)
def label_table(context: dg.AssetExecutionContext, shared_drive: SharedDrive, object_store: ObjectStoreResource,
                dataset_policy: DatasetPolicyResource, image_index: pd.DataFrame) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """One row per box of every label file (YOLO txt, including segmentation and OBB rows, DOTA,
    Pascal VOC, CVAT XML, COCO, Label Studio JSON, box CSV): image content hash and path, class id
    and name, normalized xywh in the displayed frame, the polygon when one was drawn, source file
    and line. Its checks (the pandera ``LabelTableSchema`` and the box rules) are reported by this
    step, from findings computed once; the quality report is here. Incremental: a YOLO file whose
    label, image and class map are unchanged keeps its previous rows."""
    folder = shared_drive.folder(context.partition_key)
    store = object_store.get_store()
    table = build_label_table(folder, image_index, load_cached_table(store, LABEL_TABLE, context.partition_key))
    table = with_provenance(table, load_prelabels(store, context.partition_key))
    review = load_review(store, context.partition_key, table)  # the latest model's word on these labels
    findings = LabelFindings.of(table)
    data_yaml = data_yaml_findings(folder, image_index)
    declared = declared_folders(context.partition_key, dataset_policy.policy().unlabelled_folders)
    report = quality_report(context.partition_key, folder, image_index, table, findings, review, data_yaml,
                            provenance_summary(table), declared)
    save_cached_table(store, LABEL_TABLE, context.partition_key, table)
    parsed = table[table["parse_error"].isna() & table["superseded_by"].isna()]  # usable_boxes, less the pairing
    yield dg.Output(table, metadata={
        "quality_report": dg.MetadataValue.md(report_markdown(report)),
        "quality_report_json": dg.MetadataValue.json(report),
        "dagster/row_count": len(table),
        Key.BOXES: int(usable_boxes(table).sum()),
        Key.UNLABELLED: report["images"]["unlabelled"],
        "boxes_without_image": int(parsed["image_path"].isna().sum()),
        "label_files": int(table["label_file"].nunique()),
        "label_formats": dg.MetadataValue.json(report["label_formats"]),
        "shapes": dg.MetadataValue.json({str(k): int(v) for k, v in table["shape"].value_counts().items()}),
        "class_histogram": dg.MetadataValue.json(report["class_histogram"]),
        **prelabel_metadata(report["prelabels"]),
    })
    yield from label_check_results(context.partition_key, folder, review, image_index, table, findings,
                                   dataset_policy.policy().class_registry, data_yaml)


@dg.asset(partitions_def=scientists, group_name=GROUP, kinds={store_kind()})
def image_snapshot(context: dg.AssetExecutionContext, shared_drive: SharedDrive, object_store: ObjectStoreResource,
                   dataset_policy: DatasetPolicyResource, image_index: pd.DataFrame,
                   label_table: pd.DataFrame) -> dg.Output[dict]:
    """The scientist's valid images in the object store under content-addressed keys, then an
    immutable Parquet manifest ``snapshots/<scientist>/<snapshot_id>.parquet``. The snapshot id
    (hash of the manifest's content) is the asset's data version."""
    scientist = context.partition_key
    store = object_store.get_store()
    folder = shared_drive.folder(scientist)
    findings = LabelFindings.of(label_table)  # computed again: a snapshot never trusts a stored verdict
    declared = declared_folders(scientist, dataset_policy.policy().unlabelled_folders)
    manifest = snapshot_table(image_index, label_table, findings, declared)
    move = shared_drive.archive_mode == MOVE
    fresh = manifest.to_pylist() if move else []
    previous = latest_snapshot(context.instance, scientist)  # lineage: its objects need no existence check
    if previous and move:  # moved files are gone from the drive: keep them
        manifest, stored = carry_forward_snapshot(store, previous["manifest_key"], fresh, set(image_index["path"]))
    else:
        stored = stored_objects(store, previous["manifest_key"] if previous else None)
    result = commit_snapshot(store, scientist, folder, manifest, object_store.upload_workers, stored)
    store_snapshot_captures(store, scientist, result.snapshot_id, image_index,
                            manifest_table(manifest, SNAPSHOT_SCHEMA).column("sha256").to_pylist(),
                            previous["snapshot_id"] if previous and move else None)
    log_version(store, snapshot_log_prefix(scientist), result.snapshot_id)
    archived = archive_sources(store, scientist, result.snapshot_id, folder, image_index, fresh) \
        if move else None
    report_key = snapshot_report_key(scientist, result.snapshot_id)
    report = latest_label_report(context.instance, scientist) or quality_report(  # as the label table step made it
        scientist, folder, image_index, label_table, findings, load_review(store, scientist, label_table),
        prelabels=provenance_summary(label_table), declared=declared)
    store.put_bytes(report_key, json.dumps(report, indent=1).encode())
    for path, reason in result.left_out:
        context.log.warning(f"{path} left out of snapshot {result.snapshot_id}: {reason}")
    context.log.info(f"snapshot {result.snapshot_id}: {result.uploaded_objects} objects uploaded, "
                     f"{result.existing_objects} already in {store.describe()} "
                     f"({result.checked_objects} checked, the rest listed by the previous snapshot)")
    value = {"scientist": scientist, "snapshot_id": result.snapshot_id, "manifest_key": result.manifest_key,
             "images": result.images, "boxes": result.boxes}
    return dg.Output(value, data_version=dg.DataVersion(result.snapshot_id), metadata={
        Key.SNAPSHOT_ID: result.snapshot_id,
        "manifest_key": result.manifest_key,
        "quality_report_key": report_key,
        Key.IMAGES: result.images,
        Key.BOXES: result.boxes,
        Key.UPLOADED_OBJECTS: result.uploaded_objects,
        "uploaded_bytes": result.uploaded_bytes,
        "existing_objects": result.existing_objects,
        "checked_objects": result.checked_objects,
        Key.LEFT_OUT: dg.MetadataValue.json([{"file": p, "line": 0, "reason": r} for p, r in result.left_out]),
        "object_store": store.describe(),
        "archive_mode": shared_drive.archive_mode,
        **(archive_metadata(archived) if archived else {}),
    })
