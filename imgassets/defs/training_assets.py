"""Training assets: training dataset (all scientists, split, staged) -> YOLO model."""


import dagster as dg

from imgassets.core.dataset import (
    DEFAULT_VAL_FRACTION,
    EmptyDatasetError,
    load_dataset,
    load_snapshot,
    merge_snapshots,
    store_dataset,
)
from imgassets.core.pull import materialize_dataset, pull_dataset, write_latest_ref
from imgassets.core.training import DEFAULT_MODEL, TrainingSettings, train_yolo
from imgassets.defs.automation_conditions import TRAINING_POOL, dataset_condition, model_condition
from imgassets.defs.lineage import latest_dataset_id, latest_snapshots
from imgassets.defs.resources import ObjectStoreResource, WorkDirs
from imgassets.defs.scientist_assets import image_snapshot

GROUP = "training"


class DatasetConfig(dg.Config):
    """Split settings: the fraction of images (by content hash) that go to ``val``."""

    val_fraction: float = DEFAULT_VAL_FRACTION


class YoloTrainingConfig(dg.Config):
    """Ultralytics training settings. ``model``: a model ``.yaml`` or a local ``.pt``; ``device``:
    empty for automatic (GPU when torch sees one), or ``cpu``, ``0``..."""

    model: str = DEFAULT_MODEL
    epochs: int = 1
    imgsz: int = 64
    batch: int = 16
    device: str = ""
    seed: int = 0

    def settings(self) -> TrainingSettings:
        return TrainingSettings(model=self.model, epochs=self.epochs, imgsz=self.imgsz, batch=self.batch,
                                device=self.device or None, seed=self.seed)


@dg.asset(deps=[dg.AssetDep(image_snapshot, partition_mapping=dg.AllPartitionMapping())],
          group_name=GROUP, kinds={"parquet"}, automation_condition=dataset_condition)
def training_dataset(context: dg.AssetExecutionContext, config: DatasetConfig, object_store: ObjectStoreResource,
                     workdirs: WorkDirs) -> dg.Output[dict]:
    """Every scientist's latest snapshot (a snapshot only exists once its blocking checks passed),
    merged and split by content hash; manifest and ``data.yaml`` stored under
    ``datasets/<dataset_id>/``; images staged on local disk in the Ultralytics layout."""
    image_snapshot = latest_snapshots(context.instance)
    if not image_snapshot:
        raise dg.Failure("no scientist has an image snapshot yet: materialize image_snapshot for at least one "
                         "scientist (its blocking checks must pass) before building a training dataset")
    store = object_store.get_store()
    previous = latest_dataset_id(context.instance)
    previous_splits = {r["sha256"]: r["split"] for r in load_dataset(store, previous).records} if previous else None
    try:
        dataset = merge_snapshots(
            {sci: (ref["snapshot_id"], load_snapshot(store, ref["manifest_key"])) for sci, ref in image_snapshot.items()},
            config.val_fraction, previous_splits,
        )
    except EmptyDatasetError as exc:
        raise dg.Failure(str(exc)) from None
    store_dataset(store, dataset)
    write_latest_ref(store, dataset.dataset_id)
    data_yaml = materialize_dataset(store, dataset, workdirs.staging(dataset.dataset_id), workdirs.cache).data_yaml
    value = {"dataset_id": dataset.dataset_id, "manifest_key": dataset.manifest_key,
             "data_yaml_key": dataset.data_yaml_key, "snapshots": dataset.snapshots,
             "class_names": dataset.class_names, "staged_data_yaml": str(data_yaml)}
    return dg.Output(value, data_version=dg.DataVersion(dataset.dataset_id), metadata={
        "dataset_id": dataset.dataset_id,
        "manifest_key": dataset.manifest_key,
        "images_train": dataset.count("train"),
        "images_val": dataset.count("val"),
        "boxes": sum(len(r["boxes"]) for r in dataset.records),
        "classes": len(dataset.class_names),
        "duplicates_dropped": dataset.duplicates_dropped,
        "near_duplicate_pairs": len(dataset.near_duplicates),
        "duplicate_groups": len({r["group"] for r in dataset.records}),
        "label_conflicts": len(dataset.label_conflicts),
        "previous_dataset_id": previous or "",
        "snapshots": dg.MetadataValue.json(dataset.snapshots),
        "staged_at": dg.MetadataValue.path(str(data_yaml.parent)),
    })


@dg.asset(group_name=GROUP, kinds={"pytorch"}, automation_condition=model_condition, pool=TRAINING_POOL)
def yolo_model(context: dg.AssetExecutionContext, config: YoloTrainingConfig, object_store: ObjectStoreResource,
               workdirs: WorkDirs, training_dataset: dict) -> dg.Output[dict]:
    """YOLO weights trained with Ultralytics on the staged training dataset; ``best.pt`` stored at
    ``models/<dataset_id>/<run_id>/best.pt`` with mAP50, mAP50-95, precision, recall as metadata."""
    store = object_store.get_store()
    dataset_id = training_dataset["dataset_id"]
    data_yaml = pull_dataset(store, dataset_id, workdirs.staging(dataset_id), workdirs.cache).data_yaml
    result = train_yolo(data_yaml, config.settings(), workdirs.training(context.run_id))
    prefix = f"models/{dataset_id}/{context.run_id}"
    model_key = f"{prefix}/best.pt"
    store.put_file(model_key, result.best_weights)
    if result.results_csv:
        store.put_file(f"{prefix}/results.csv", result.results_csv)
    value = {"model_key": model_key, "dataset_id": dataset_id, "run_id": context.run_id, "metrics": result.metrics,
             "epochs": result.epochs, "training_seconds": result.seconds, "device": result.device}
    return dg.Output(value, metadata={
        **{name: dg.MetadataValue.float(v) for name, v in result.metrics.items()},
        "epochs": result.epochs,
        "training_seconds": dg.MetadataValue.float(round(result.seconds, 2)),
        "device": result.device,
        "dataset_id": dataset_id,
        "model_key": model_key,
        "model_source": config.model,
    })
