"""Asset checks on the trained model.

* ``weights_predict`` (ERROR, blocking): the stored ``best.pt`` downloads (verified), loads with
  ``ultralytics.YOLO`` and predicts on a validation image. Weights that cannot do this are useless
  to anyone pulling them.
* ``map_not_regressed`` (WARN): mAP50-95 has not dropped more than ``IMGASSETS_MAX_MAP_DROP``
  (absolute, default 0.05) below the previous model's. A warning: new data can make validation
  harder without the model being worse.
"""

import os
import tempfile
from pathlib import Path

import dagster as dg

from imgassets.core.label_checks import Finding
from imgassets.core.model_registry import list_models
from imgassets.core.training import map_regression, predict_smoke
from imgassets.defs.metadata import check_result
from imgassets.defs.resources import ObjectStoreResource
from imgassets.defs.training_assets import yolo_model

MAX_MAP_DROP = float(os.environ.get("IMGASSETS_MAX_MAP_DROP", "0.05"))


@dg.asset_check(asset=yolo_model, blocking=True)
def weights_predict(object_store: ObjectStoreResource, yolo_model: dict) -> dg.AssetCheckResult:
    """best.pt loads with Ultralytics and predicts on a validation image. Blocking."""
    staged = Path(yolo_model["staged_data_yaml"]).parent / "images" / "val"
    image = next(iter(sorted(staged.iterdir())), None) if staged.is_dir() else None
    findings = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "best.pt"
        try:
            object_store.get_store().get_file(yolo_model["model_key"], weights)
            boxes = predict_smoke(weights, image, yolo_model["imgsz"]) if image else None
        except Exception as exc:  # any failure to load or predict is the finding
            findings.append(Finding(yolo_model["model_key"], 0, f"cannot load or predict: {type(exc).__name__}: {exc}"))
            boxes = None
    if image is None:
        findings.append(Finding(str(staged), 0, "no validation image to predict on"))
    return check_result(findings, dg.AssetCheckSeverity.ERROR, "problems loading or predicting",
                        {"boxes_predicted": boxes if boxes is not None else -1, "image": str(image)})


@dg.asset_check(asset=yolo_model, blocking=False)
def map_not_regressed(object_store: ObjectStoreResource, yolo_model: dict) -> dg.AssetCheckResult:
    """mAP50-95 has not dropped more than the allowed amount against the previous model. WARN."""
    earlier = [m for m in list_models(object_store.get_store()) if m["model_id"] != yolo_model["model_id"]]
    previous = earlier[-1] if earlier else None
    reason = map_regression(yolo_model["metrics"], previous["metrics"] if previous else None, MAX_MAP_DROP)
    findings = [Finding(yolo_model["model_key"], 0, f"{reason}; previous model {previous['model_id']}")] if reason else []
    return check_result(findings, dg.AssetCheckSeverity.WARN, "metric regressions", {
        "previous_model": previous["model_id"] if previous else "",
        "previous_mAP50-95": float(previous["metrics"].get("mAP50-95", 0)) if previous else 0.0})


MODEL_CHECKS = [weights_predict, map_not_regressed]
