"""Asset checks on the training dataset and the trained model.

* ``no_split_leakage`` (ERROR, blocking): no image has an exact or near-duplicate in the other
  split (leakage inflates validation metrics).
* ``duplicate_labels_agree``, ``class_ids_consistent`` (WARN): copies of an image carry the same
  boxes; a local class id names one class for every scientist.
* ``classes_measurable`` (WARN): every class has enough val and benchmark boxes to be measured.
* ``weights_predict`` (ERROR, blocking): the stored ``best.pt`` downloads (verified), loads with
  ``ultralytics.YOLO`` and predicts on a validation image. Weights that cannot do this are useless
  to anyone pulling them.
* ``beats_champion`` (WARN, on ``model_evaluation``): the challenger's benchmark mAP50-95 is not
  below the champion's, scored on the same benchmark images in the same run, by more than
  ``IMGASSETS_CHAMPION_MARGIN`` (:mod:`imgassets.core.training.benchmark`). It reports the
  promotion decision; ``champion_model`` (the ``refs/models/champion`` ref) materializes only for a
  promoted model. A refusal is an expected outcome, so it neither fails the run nor the asset.
* ``no_slice_regressed`` (WARN, on ``model_evaluation``): no benchmark slice with enough support
  (a scientist, a class, an object size, a camera, a quality bucket) where the challenger is worse
  than the champion beyond the margin and the bootstrap interval
  (:mod:`imgassets.core.training.slices`), even when it is promoted overall; a regression on a
  protected slice (``IMGASSETS_PROTECTED_SLICES``) also blocked the promotion.
"""

import tempfile
from pathlib import Path

import dagster as dg

from imgassets.core.labels.checks import Finding
from imgassets.core.labels.class_registry import look_alike_names
from imgassets.core.training.models import read_benchmark
from imgassets.core.training.train import predict_smoke
from imgassets.core.versioning.dataset import DatasetVersion
from imgassets.core.versioning.dataset_store import load_dataset
from imgassets.core.versioning.health import MIN_MEASURABLE_BOXES, dataset_health, unmeasurable_classes
from imgassets.core.versioning.leakage import split_leaks
from imgassets.core.versioning.pull import fetch_validation_image
from imgassets.core.versioning.sequences import SequenceRules, load_captures, sequence_links
from imgassets.defs.metadata import check_result
from imgassets.defs.resources import ObjectStoreResource
from imgassets.defs.training.assets import model_evaluation, training_dataset, yolo_model
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


@dg.asset_check(asset=model_evaluation, blocking=False, additional_ins={"yolo_model": dg.AssetIn("yolo_model")})
def beats_champion(object_store: ObjectStoreResource, yolo_model: dict) -> dg.AssetCheckResult:
    """The challenger's benchmark mAP50-95 is within the margin of the champion's on the same
    images, each model scored at the image size it was trained at (the decision model_evaluation
    recorded in benchmark.json). WARN when it is not: the model stays a candidate, champion_model
    does not change, and the champion keeps serving. A refusal is the rule working, not a failure."""
    benchmark = read_benchmark(object_store.get_store(), yolo_model)
    decision = (benchmark or {}).get("decision") or {"promoted": False, "reason": "no benchmark record for this model"}
    findings = [] if decision["promoted"] else [Finding(yolo_model["model_key"], 0, decision["reason"],
                                                        Reason.NOT_PROMOTED)]
    champion = (benchmark or {}).get("champion") or {}
    challenger = ((benchmark or {}).get("challenger") or {}).get("overall", {})
    theirs = (champion.get("scores") or {}).get("overall", {})
    # a score that does not exist (no champion yet, no benchmark image) is left out, not plotted as a number
    scores = {f"{who}_mAP50-95": float(overall["mAP50-95"]) for who, overall in
              (("challenger", challenger), ("champion", theirs)) if "mAP50-95" in overall}
    return check_result(findings, WARN, "promotion refusals", {
        "decision": decision["reason"], "champion": champion.get("model_id") or "none yet", **scores,
        "margin": float((benchmark or {}).get("margin", 0.0))})


@dg.asset_check(asset=model_evaluation, blocking=False, additional_ins={"yolo_model": dg.AssetIn("yolo_model")})
def no_slice_regressed(object_store: ObjectStoreResource, yolo_model: dict) -> dg.AssetCheckResult:
    """No benchmark slice with enough support regressed against the champion (the slices
    model_evaluation recorded in benchmark.json). WARN naming each regressed slice with its scores,
    interval and support; a protected one says it blocked the promotion."""
    benchmark = read_benchmark(object_store.get_store(), yolo_model) or {}
    analysis = benchmark.get("analysis") or {}
    protected = set(analysis.get("protected") or [])
    findings = []
    for row in analysis.get("slices") or []:
        name = f"{row['kind']}:{row['slice']}"
        if row.get("regressed"):
            blocked = " (protected: blocks promotion)" if name in protected else ""
            findings.append(Finding(name, 0, f"slice {name}{blocked}: mAP50-95 {row['challenger']:.4f} against the "
                                    f"champion's {row['champion']:.4f} ({row['difference']:+.4f}, 95% interval "
                                    f"{row['difference_low']:+.4f}..{row['difference_high']:+.4f}) on {row['images']} "
                                    f"images, {row['boxes']} boxes", Reason.SLICE_REGRESSED))
    judged = sum(1 for row in analysis.get("slices") or [] if row.get("enough_support"))
    return check_result(findings, WARN, "regressed slices", {
        "slices_judged": judged, "champion": ((benchmark.get("champion") or {}).get("model_id")) or "none yet"})


MODEL_CHECKS = [weights_predict, beats_champion, no_slice_regressed]


def _dataset(object_store: ObjectStoreResource, training_dataset: dict) -> DatasetVersion:
    return load_dataset(object_store.get_store(), training_dataset["dataset_id"])


@dg.asset_check(asset=training_dataset, blocking=True)
def no_split_leakage(object_store: ObjectStoreResource, training_dataset: dict) -> dg.AssetCheckResult:
    """No image has an exact or near-duplicate, or a frame of its burst or recording session, in
    another split: the stored near-duplicate pairs and sequence links, and, recomputed from the
    stored manifest's content and perceptual hashes and from its snapshots' capture facts (by the
    rules the dataset was merged by), every train image near a val image and every link across
    splits. Blocking: leakage inflates validation metrics."""
    dataset = _dataset(object_store, training_dataset)
    table = dataset.table
    recomputed = sequence_links(table, load_captures(object_store.get_store(), dataset.snapshots),
                                SequenceRules.recorded(dataset.sequence_rules))
    leaks = split_leaks(table, dataset.near_duplicates, frame_links=[*dataset.sequence_links, *recomputed])
    return check_result([Finding(training_dataset["dataset_id"], 0, leak, Reason.SPLIT_LEAK) for leak in leaks], ERROR,
                        "duplicate pairs or frames across splits")


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
    """The same local class id names the same class for every scientist, and no two class names
    differ only by look-alike characters (a Cyrillic `а` in `cаr`). WARN, informational: the
    dataset matches classes by name (each scientist's class map), never by id, so every box keeps
    the class its own scientist named; act only if a scientist's class map is wrong."""
    dataset = _dataset(object_store, training_dataset)
    findings = [Finding(", ".join(c["names"]), 0, class_id_conflict_reason(c), Reason.CLASS_ID_CONFLICT)
                for c in dataset.class_id_conflicts]
    findings += [Finding(f"{name}, {other}", 0, f"classes {other!r} and {name!r} differ only by look-alike characters "
                         f"({why}): they train as two classes; retype one, or map it with a class registry alias",
                         Reason.CLASS_ID_CONFLICT) for name, other, why in look_alike_names(dataset.class_names)]
    return check_result(findings, WARN, "class ids naming different classes")


def class_id_conflict_reason(conflict: dict) -> str:
    """A sentence for one of :func:`imgassets.core.versioning.dataset.class_id_conflicts`:
    ``{"class_id": 0, "names": {"ana": ["circle"], "ben": ["square"]}}``."""
    by_name: dict[str, list[str]] = {}
    for scientist, names in conflict["names"].items():
        by_name.setdefault("/".join(names), []).append(scientist)
    meanings = " and ".join(f"{name!r} for {', '.join(who)}" for name, who in by_name.items())
    return (f"class id {conflict['class_id']} means {meanings}; boxes are matched by class name, so each keeps "
            "its own scientist's class (nothing to do unless a class map is wrong)")


@dg.asset_check(asset=training_dataset, blocking=False)
def classes_measurable(object_store: ObjectStoreResource, training_dataset: dict) -> dg.AssetCheckResult:
    """Every class has enough boxes in val and in benchmark to be measured (MIN_MEASURABLE_BOXES of
    imgassets.core.versioning.health). WARN: below that, the class's mAP there (and so the champion
    decision for it) is noise; label more of it."""
    dataset = _dataset(object_store, training_dataset)
    weak = unmeasurable_classes(dataset_health(dataset.table), dataset.class_names)
    findings = [Finding(dataset.dataset_id, 0, f"class {name!r} has {boxes} box(es) in {split} (fewer than "
                        f"{MIN_MEASURABLE_BOXES}): its {split} metrics are noise", Reason.CLASS_HARD_TO_MEASURE)
                for name, split, boxes in weak]
    return check_result(findings, WARN, "classes too rare to measure")


DATASET_CHECKS = [no_split_leakage, duplicate_labels_agree, class_ids_consistent, classes_measurable]
