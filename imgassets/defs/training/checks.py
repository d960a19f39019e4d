"""Asset checks on the training dataset and the trained model.

* ``no_split_leakage`` (ERROR, blocking): no image has an exact or near-duplicate in the other
  split (leakage inflates validation metrics).
* ``duplicate_labels_agree``, ``class_ids_consistent`` (WARN): copies of an image carry the same
  boxes; a local class id names one class for every scientist.
* ``weights_predict`` (ERROR, blocking): the stored ``best.pt`` downloads (verified), loads with
  ``ultralytics.YOLO`` and predicts on a validation image. Weights that cannot do this are useless
  to anyone pulling them.
* ``map_not_regressed`` (WARN): mAP50-95 has not dropped more than ``IMGASSETS_MAX_MAP_DROP``
  (absolute, default 0.05) below the previous model's. A warning: new data can make validation
  harder without the model being worse.
"""

import tempfile
from pathlib import Path

import dagster as dg

from imgassets import settings
from imgassets.core.labels.checks import Finding
from imgassets.core.training.models import list_models
from imgassets.core.training.train import map_regression, predict_smoke
from imgassets.core.versioning.dataset import DatasetVersion, load_dataset, split_leaks
from imgassets.core.versioning.pull import fetch_validation_image
from imgassets.defs.metadata import check_result
from imgassets.defs.resources import ObjectStoreResource
from imgassets.defs.training.assets import training_dataset, yolo_model
from imgassets.errors import Reason

WARN = dg.AssetCheckSeverity.WARN
ERROR = dg.AssetCheckSeverity.ERROR



@dg.asset_check(asset=yolo_model, blocking=True)
def weights_predict(object_store: ObjectStoreResource, yolo_model: dict) -> dg.AssetCheckResult:
    """best.pt loads with Ultralytics and predicts on a validation image, both fetched from the
    store (this check may run in another pod than the training). Blocking."""
    findings = []
    image = boxes = None
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "best.pt"
        try:
            store = object_store.get_store()
            store.get_file(yolo_model["model_key"], weights)
            image = fetch_validation_image(store, yolo_model["dataset_id"], Path(tmp))
            boxes = predict_smoke(weights, image, yolo_model["imgsz"]) if image else None
        except Exception as exc:  # any failure to fetch, load or predict is the finding
            findings.append(Finding(yolo_model["model_key"], 0, f"cannot load or predict: {type(exc).__name__}: {exc}",
                                    Reason.WEIGHTS_UNUSABLE))
    if image is None and not findings:
        findings.append(Finding(yolo_model["dataset_id"], 0, "no validation image to predict on", Reason.WEIGHTS_UNUSABLE))
    return check_result(findings, dg.AssetCheckSeverity.ERROR, "problems loading or predicting",
                        {"boxes_predicted": boxes if boxes is not None else -1, "image": image.name if image else ""})


@dg.asset_check(asset=yolo_model, blocking=False)
def map_not_regressed(object_store: ObjectStoreResource, yolo_model: dict) -> dg.AssetCheckResult:
    """mAP50-95 has not dropped more than the allowed amount against the previous model. WARN."""
    earlier = [m for m in list_models(object_store.get_store()) if m["model_id"] != yolo_model["model_id"]]
    previous = earlier[-1] if earlier else None
    reason = map_regression(yolo_model["metrics"], previous["metrics"] if previous else None, settings.max_map_drop())
    findings = [Finding(yolo_model["model_key"], 0, f"{reason}; previous model {previous['model_id']}", Reason.MAP_REGRESSED)] if reason else []
    return check_result(findings, dg.AssetCheckSeverity.WARN, "metric regressions", {
        "previous_model": previous["model_id"] if previous else "",
        "previous_mAP50-95": float(previous["metrics"].get("mAP50-95", 0)) if previous else 0.0})


MODEL_CHECKS = [weights_predict, map_not_regressed]


def _dataset(object_store: ObjectStoreResource, training_dataset: dict) -> DatasetVersion:
    return load_dataset(object_store.get_store(), training_dataset["dataset_id"])


@dg.asset_check(asset=training_dataset, blocking=True)
def no_split_leakage(object_store: ObjectStoreResource, training_dataset: dict) -> dg.AssetCheckResult:
    """No image has an exact or near-duplicate in the other split: the stored near-duplicate pairs
    and, recomputed from the stored manifest's content and perceptual hashes, every train image
    near a val image. Blocking: leakage inflates validation metrics."""
    dataset = _dataset(object_store, training_dataset)
    leaks = split_leaks(dataset.table, dataset.near_duplicates)
    return check_result([Finding(training_dataset["dataset_id"], 0, leak, Reason.SPLIT_LEAK) for leak in leaks], ERROR,
                        "duplicate pairs across splits")


@dg.asset_check(asset=training_dataset, blocking=False)
def duplicate_labels_agree(object_store: ObjectStoreResource, training_dataset: dict) -> dg.AssetCheckResult:
    """Copies of the same image (same content hash) carry the same boxes. WARN: the first copy is kept."""
    conflicts = _dataset(object_store, training_dataset).label_conflicts
    findings = [Finding(c["dropped"], 0, f"same bytes as {c['kept']} but different boxes; {c['kept']} was kept",
                        Reason.LABEL_CONFLICT)
                for c in conflicts]
    return check_result(findings, WARN, "duplicates with conflicting labels")


@dg.asset_check(asset=training_dataset, blocking=False)
def class_ids_consistent(object_store: ObjectStoreResource, training_dataset: dict) -> dg.AssetCheckResult:
    """The same local class id names the same class for every scientist. WARN: the dataset maps
    classes by name, so this only flags a possible mix-up."""
    conflicts = _dataset(object_store, training_dataset).class_id_conflicts
    findings = [Finding(", ".join(c["names"]), 0, f"class id {c['class_id']} names "
                        + "; ".join(f"{s}: {'/'.join(n)}" for s, n in c["names"].items()),
                        Reason.CLASS_ID_CONFLICT) for c in conflicts]
    return check_result(findings, WARN, "class ids naming different classes")


DATASET_CHECKS = [no_split_leakage, duplicate_labels_agree, class_ids_consistent]
