"""Training assets: retractions, training dataset -> YOLO model -> model evaluation -> champion.

Each asset calls one core use case (:mod:`imgassets.core.versioning.build`,
:mod:`imgassets.core.training.train`, :mod:`imgassets.core.training.challenger`) and turns its
result into Dagster metadata; policies come from the resources of :mod:`imgassets.defs.policies`."""


import dataclasses
import datetime
import hashlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd

from imgassets.core import progress
from imgassets.core.images.thumbnails import markdown_image, thumbnail
from imgassets.core.labels.class_registry import is_hole
from imgassets.core.store.keys import class_registry_key, dataset_manifest_key
from imgassets.core.training.benchmark import METRICS, BenchmarkScores
from imgassets.core.training.benchmark_analysis import error_types_chart_png, slice_galleries
from imgassets.core.training.challenger import ChallengerEvaluation, evaluate_challenger, promote
from imgassets.core.training.evaluate import worst_images
from imgassets.core.training.label_review import LabelReview
from imgassets.core.training.models import read_champion, store_model
from imgassets.core.training.tracking import TrainingTracker, log_evaluation, reopen, set_champion_alias
from imgassets.core.training.train import TrainingSettings, preset, train_yolo
from imgassets.core.versioning.build import DatasetBuildError, build_dataset_version
from imgassets.core.versioning.dataset import DatasetVersion
from imgassets.core.versioning.dataset_store import load_dataset
from imgassets.core.versioning.diff import VersionDiff
from imgassets.core.versioning.health import dataset_health, unmeasurable_classes
from imgassets.core.versioning.pull import pull_dataset
from imgassets.core.versioning.retraction import load_retractions
from imgassets.core.versioning.splits import DEFAULT_BENCHMARK_FRACTION, DEFAULT_VAL_FRACTION
from imgassets.defs.deployment import store_kind
from imgassets.defs.kubernetes import GPU_TRAINING_K8S_CONFIG
from imgassets.defs.materializations import latest_dataset_id, latest_snapshots
from imgassets.defs.metadata import ASSET_GROUP, Key, markdown_table
from imgassets.defs.policies import DatasetPolicyResource, EvaluationPolicyResource, TrainingPresetResource
from imgassets.defs.resources import ObjectStoreResource, SharedDrive, WorkDirs
from imgassets.defs.scientist.assets import image_snapshot
from imgassets.defs.training.conditions import TRAINING_POOL, dataset_condition, model_condition
from imgassets.settings import mlflow_tracking_uri

GROUP = ASSET_GROUP


class DatasetConfig(dg.Config):
    """Split settings: the fractions of new images (by content hash) that go to ``val`` and to the
    held-out ``benchmark`` split (:mod:`imgassets.core.versioning.dataset`)."""

    val_fraction: float = DEFAULT_VAL_FRACTION
    benchmark_fraction: float = DEFAULT_BENCHMARK_FRACTION
    resplit: bool = False
    """Split afresh, ignoring the previous version's splits (class ids still carry over): the way
    out of a degenerate split (no train image) that the append-only rule would otherwise keep."""


class YoloTrainingConfig(dg.Config):
    """Ultralytics training settings; a field left empty takes the deployment's preset
    (``IMGASSETS_TRAINING_PRESET``: Ultralytics' own defaults unless set; ``demo`` or ``smoke``).
    ``model``: a model ``.yaml`` or a local ``.pt``; ``device``: empty for automatic (GPU when torch
    sees one), or ``cpu``, ``0``..."""

    model: str | None = None
    epochs: int | None = None
    imgsz: int | None = None
    batch: int | None = None
    device: str = ""
    seed: int | None = None
    patience: int | None = None
    workers: int | None = None
    plots: bool | None = None

    def settings(self, preset_name: str) -> TrainingSettings:
        """The preset ``preset_name`` with every field given here in its place."""
        return preset(preset_name).overridden(
            model=self.model, epochs=self.epochs, imgsz=self.imgsz, batch=self.batch, device=self.device or None,
            seed=self.seed, patience=self.patience, workers=self.workers, plots=self.plots)


@dg.asset(group_name=GROUP, kinds={store_kind()})
def retractions(context: dg.AssetExecutionContext, object_store: ObjectStoreResource) -> dg.Output[dict]:
    """Every retraction record in the store (``retractions/*.json``, written by ``imgassets retract``
    and by the departed-folder policy): content hashes and snapshots that every later dataset leaves
    out (:mod:`imgassets.core.versioning.retraction`). Its data version changes with the records, so
    a new retraction makes the training automation build a dataset without them."""
    retracted = load_retractions(object_store.get_store())
    ids = sorted(r.retraction_id for r in retracted.records)
    rows = [(r.retraction_id, r.created_at[:19], r.by, len(r.hashes), ", ".join(r.snapshots), r.reason)
            for r in retracted.records]
    return dg.Output({"retraction_ids": ids, "images": len(retracted.hashes)},
                     data_version=dg.DataVersion(hashlib.sha256(",".join(ids).encode()).hexdigest()[:16]), metadata={
        "retractions": len(ids), "retracted_images": len(retracted.hashes),
        "retracted_snapshots": len(retracted.snapshots),
        "records": markdown_table(["id", "at", "by", "images", "snapshots", "reason"], rows)
        if rows else dg.MetadataValue.md("no retraction"),
    })


@dg.asset(deps=[dg.AssetDep(image_snapshot, partition_mapping=dg.AllPartitionMapping()), retractions],
          group_name=GROUP, kinds={"parquet"}, automation_condition=dataset_condition)
def training_dataset(context: dg.AssetExecutionContext, config: DatasetConfig, shared_drive: SharedDrive,
                     object_store: ObjectStoreResource, dataset_policy: DatasetPolicyResource) -> dg.Output[dict]:
    """Every scientist's latest snapshot (a snapshot only exists once its blocking checks passed),
    merged and split by content hash (near-duplicates and the frames of one burst or recording
    session in one split: :mod:`imgassets.core.versioning.sequences`), without retracted content; class names mapped through the
    class registry when there is one, class ids stable across versions; manifest, near-duplicate
    pairs and ``data.yaml`` stored under ``datasets/<dataset_id>/`` and logged
    (``refs/log/datasets/``). Metadata: what changed against the previous version (the semantic
    diff), the dataset's health (per split and scientist, an annotation heatmap), scientist folders
    gone from the drive (the departed policy). Nothing is staged here: each step that needs the
    images pulls them from the store onto its own disk, as a pod must."""
    store = object_store.get_store()
    try:
        built = build_dataset_version(store, Path(shared_drive.root), latest_snapshots(context.instance),
                                      latest_dataset_id(context.instance), dataset_policy.policy(),
                                      config.val_fraction, config.benchmark_fraction, config.resplit)
    except DatasetBuildError as exc:
        raise dg.Failure(str(exc)) from None
    for note in built.notes:
        context.log.warning(note)
    dataset, previous, departed, changes = built.dataset, built.previous, built.departed, built.changes
    value = {"dataset_id": dataset.dataset_id, "manifest_key": dataset.manifest_key,
             "data_yaml_key": dataset.data_yaml_key, "snapshots": dataset.snapshots,
             "class_names": dataset.class_names}
    return dg.Output(value, data_version=dg.DataVersion(dataset.dataset_id), metadata={
        "dataset_id": dataset.dataset_id,
        "manifest_key": dataset.manifest_key,
        "images_train": dataset.count("train"),
        "images_val": dataset.count("val"),
        "images_benchmark": dataset.count("benchmark"),
        "boxes": dataset.box_count(),
        "classes": len(dataset.class_names),
        "class_names": dg.MetadataValue.json(dict(enumerate(dataset.class_names))),
        "class_registry": class_registry_key(dataset.class_registry) if dataset.class_registry else "none (names as written)",
        "duplicates_dropped": dataset.duplicates_dropped,
        "near_duplicate_pairs": len(dataset.near_duplicates),
        "sequence_links": len(dataset.sequence_links),
        "sequence_rules": dg.MetadataValue.json(dataset.sequence_rules),
        "duplicate_groups": dataset.group_count(),
        "label_conflicts": len(dataset.label_conflicts),
        "retracted_images_left_out": dataset.retracted_images,
        "unlabelled_images_left_out": sum(dataset.unlabelled_images.values()),
        "unlabelled_images": dg.MetadataValue.json(dataset.unlabelled_images),
        **flywheel_metadata(dataset.flywheel, read_champion(store)),
        "groups_kept_in_train": dg.MetadataValue.json(dataset.groups_kept_in_train),
        "previous_dataset_id": previous.dataset_id if previous else "",
        "departed_scientists": dg.MetadataValue.json([dataclasses.asdict(d) for d in departed]),
        Key.SNAPSHOTS: dg.MetadataValue.json(dataset.snapshots),
        **diff_metadata(changes),
        **health_metadata(dataset),
    })


def flywheel_metadata(flywheel: dict, champion: dict | None) -> dict:
    """The labeling flywheel of a dataset version as numbers the UI plots across versions
    (``flywheel/...``): labelled images added, of which pre-labelled, their boxes by provenance, the
    acceptance rate of the pre-annotations, and the benchmark mAP50-95 of the champion that made
    them (the one when the version is built)."""
    if not flywheel:
        return {}
    numbers = {f"flywheel/{k}": (v if v is not None else 0.0) for k, v in flywheel.items()}
    scores = ((champion or {}).get("scores") or {}).get("overall") or {}
    return {**numbers, "flywheel/champion_mAP50-95": float(scores.get("mAP50-95", 0.0))}


def diff_metadata(changes: VersionDiff | None) -> dict:
    """The semantic diff against the previous dataset version: the text, and its totals as numbers."""
    if changes is None:
        return {"diff": dg.MetadataValue.md("first dataset version: nothing to compare with")}
    return {"diff": dg.MetadataValue.md(f"```\n{changes.text()}\n```"),
            **{f"diff/{name}": value for name, value in changes.totals().items()},
            "diff/split_changes": len(changes.split_changes)}


def health_metadata(dataset: DatasetVersion) -> dict:
    """Dataset health (:mod:`imgassets.core.versioning.health`): a table per split and scientist,
    the annotation heatmap, and each number as numeric metadata (``health/<split>/<measure>``,
    ``health/<split>/boxes/<class>``) that the UI plots from one version to the next."""
    health = dataset_health(dataset.table)
    measures = ("images", "boxes", "boxes_per_image", "empty_images", "box_size_median", "aspect_median")
    rows = [(kind, name, *(s[m] for m in measures)) for kind, table in (("split", health.splits),
                                                                        ("scientist", health.scientists))
            for name, s in table.items()]
    numbers = {f"health/{split}/{m}": dg.MetadataValue.float(float(s[m])) for split, s in health.splits.items()
               for m in measures}
    numbers.update({f"health/{split}/boxes/{c}": dg.MetadataValue.int(n) for split, s in health.splits.items()
                    for c, n in s["boxes_by_class"].items()})
    weak = unmeasurable_classes(health, dataset.class_names)
    return {"health": markdown_table(["by", "name", *measures], rows),
            "annotation_heatmap": dg.MetadataValue.md(
                "where box centres sit in the frame (black: none, red: some, pale yellow: the most)\n\n" + markdown_image("annotation heatmap", health.heatmap_png, "image/png")),
            "boxes_by_class_and_split": markdown_table(
                ["class", *health.splits], [(c, *(s["boxes_by_class"].get(c, 0) for s in health.splits.values()))
                                            for c in dataset.class_names if not is_hole(c)]),
            "classes_hard_to_measure": len(weak),
            **numbers}


@dg.asset(group_name=GROUP, kinds={"pytorch"}, automation_condition=model_condition, pool=TRAINING_POOL,
          op_tags={"dagster-k8s/config": GPU_TRAINING_K8S_CONFIG})
def yolo_model(context: dg.AssetExecutionContext, config: YoloTrainingConfig, object_store: ObjectStoreResource,
               workdirs: WorkDirs, training_preset: TrainingPresetResource, training_dataset: dict) -> dg.Output[dict]:
    """YOLO weights trained with Ultralytics on the staged training dataset. Stored under
    ``models/<dataset_id>/<model_id>/`` (model id = run id): best.pt, last.pt, results.csv,
    args.yaml and model.json; metrics (mAP50, mAP50-95, precision, recall, per-class mAP50-95),
    training seconds and images/second as metadata, and the per-epoch curves as a table."""
    store = object_store.get_store()
    dataset_id = training_dataset["dataset_id"]
    data_yaml = pull_dataset(store, dataset_id, workdirs.staging(dataset_id), workdirs.cache).data_yaml
    settings = config.settings(training_preset.preset)
    def warn(message: str) -> None:  # the run's log in the UI, and the command line's stderr
        context.log.warning(message)
        progress.warn(message)

    tracker = TrainingTracker(mlflow_tracking_uri(), warn=warn)
    tags = {"dagster.run_id": context.run_id, "imgassets.model_id": context.run_id, "imgassets.dataset_id": dataset_id}
    tracker.start(context.run_id, dataclasses.asdict(settings), tags, dataset_id, dataset_manifest_key(dataset_id))

    def log_epoch(epoch: int, epochs: int, values: dict[str, float]) -> None:  # the run's log in the UI, live
        context.log.info(f"epoch {epoch}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
        tracker.log_metrics(values, epoch)

    try:
        result = train_yolo(data_yaml, settings, workdirs.training(context.run_id), on_epoch=log_epoch)
    except BaseException:
        tracker.finish("FAILED")
        raise
    tracker.log_artifacts({"results.csv": result.results_csv, "args.yaml": result.args_yaml, **result.plots})
    version = tracker.register(result.best_weights, "detect", tags)
    tracker.finish()
    run = tracker.record()
    tracked = {**run, "version": version} if run else None
    record = store_model(store, {
        "model_id": context.run_id, "dataset_id": dataset_id, "snapshots": training_dataset.get("snapshots", {}),
        "metrics": result.metrics, "per_class_map50_95": result.per_class_map, "epochs": result.epochs,
        "training_seconds": round(result.seconds, 2), "images_per_second": round(result.images_per_second, 2),
        "device": result.device, "settings": dataclasses.asdict(settings),
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(), "mlflow": tracked,
    }, {"best.pt": result.best_weights, "last.pt": result.last_weights, "results.csv": result.results_csv,
        "args.yaml": result.args_yaml, **result.plots})
    model_key = record["keys"]["best.pt"]
    value = {"model_key": model_key, "model_id": context.run_id, "dataset_id": dataset_id, "run_id": context.run_id,
             "metrics": result.metrics, "epochs": result.epochs, "training_seconds": result.seconds,
             "device": result.device, "imgsz": settings.imgsz, "mlflow": tracked}
    return dg.Output(value, metadata={
        **({"mlflow_run": dg.MetadataValue.url(tracked["url"]), "mlflow_model_version": str(version)} if tracked else {}),
        **{name: dg.MetadataValue.float(v) for name, v in result.metrics.items()},
        Key.EPOCHS: result.epochs,
        Key.TRAINING_SECONDS: dg.MetadataValue.float(round(result.seconds, 2)),
        "images_per_second": dg.MetadataValue.float(round(result.images_per_second, 2)),
        Key.DEVICE: result.device,
        Key.DATASET_ID: dataset_id,
        "model_id": context.run_id,
        Key.MODEL_KEY: model_key,
        "model_source": config.model,
        "per_class_map50_95": dg.MetadataValue.json(result.per_class_map),
        "epoch_curves": epoch_curves(result.results_csv),
        "training_plots": training_plots(result.plots),
    })


def training_plots(plots: dict[str, Path]) -> dg.MetadataValue:
    """Ultralytics' plots of the run as small images in Markdown (stored whole beside the weights)."""
    if not plots:
        return dg.MetadataValue.md("no plots (training ran with plots off, e.g. the smoke preset)")
    return dg.MetadataValue.md("\n\n".join(f"**{name}**\n\n" + markdown_image(name, thumbnail(path, max_side=640))
                                            for name, path in plots.items()))


def epoch_curves(results_csv) -> dg.MetadataValue:
    """Ultralytics' results.csv (one row per epoch) as a Markdown table: losses and metrics."""
    if results_csv is None:
        return dg.MetadataValue.md("no results.csv")
    frame = pd.read_csv(results_csv)
    frame.columns = [c.strip() for c in frame.columns]
    wanted = [c for c in ("epoch", "train/box_loss", "train/cls_loss", "metrics/precision(B)", "metrics/recall(B)",
                          "metrics/mAP50(B)", "metrics/mAP50-95(B)") if c in frame.columns]
    return markdown_table(wanted, frame[wanted].round(4).itertuples(index=False))


@dg.asset(group_name=GROUP, kinds={"parquet"}, io_manager_key="parquet_io_manager",
          automation_condition=dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed())
def model_evaluation(context: dg.AssetExecutionContext, object_store: ObjectStoreResource, workdirs: WorkDirs,
                     evaluation_policy: EvaluationPolicyResource, yolo_model: dict) -> dg.Output[pd.DataFrame]:
    """The model (the challenger) on its dataset's held-out images, each predicted once
    (:mod:`imgassets.core.training.challenger`). On the validation split, image by image: missed
    and spurious boxes; per scientist, the images where it does worst (where more or better labels
    help), stored as ``models/<dataset_id>/<model_id>/evaluation.parquet`` with the benchmark's
    images (their quality signals, camera and bucket beside their counts). On the benchmark split:
    the challenger's and the current champion's scores on the same images
    (:mod:`imgassets.core.training.benchmark`), overall, per class and per scientist, as numeric
    metadata (plotted across materializations) and tables, and the promotion decision, stored as
    ``benchmark.json`` beside the model and reported by the ``beats_champion`` check; pictures of
    the worst benchmark images; why AP is lost (TIDE's error types, challenger beside champion, as a
    chart), COCO's reference mAP, the slices with their bootstrap intervals and the false-positive
    and missed-box galleries of the weakest or regressed ones, the confusion matrix with missed and
    spurious boxes, the operating point chosen on val (:mod:`imgassets.core.training.benchmark_analysis`);
    and the model-assisted label review of the held-out images
    (:mod:`imgassets.core.training.label_review`)."""
    store = object_store.get_store()
    dataset = load_dataset(store, yolo_model["dataset_id"])
    staged = pull_dataset(store, dataset.dataset_id, workdirs.staging(dataset.dataset_id), workdirs.cache).data_yaml.parent
    judged = evaluate_challenger(store, dataset, staged, yolo_model, evaluation_policy.policy())
    context.log.info(f"benchmark: {judged.decision.reason}")
    evaluation, challenger = judged.evaluation, judged.challenger
    val = evaluation[evaluation["split"] == "val"]
    worst = worst_images(val, per_scientist=5)
    log_evaluation(reopen(yolo_model.get("mlflow"), context.log.warning), judged)
    return dg.Output(evaluation, metadata={
        "dagster/row_count": len(evaluation),
        Key.EVALUATION_KEY: judged.evaluation_key,
        Key.MISSED_BOXES: int(val["missed"].sum()),
        Key.SPURIOUS_BOXES: int(val["spurious"].sum()),
        "worst_images": markdown_table(["scientist", "path", "missed", "spurious"],
                                       worst[["scientist", "path", "missed", "spurious"]].itertuples(index=False)),
        Key.BENCHMARK_KEY: judged.benchmark_key,
        Key.PROMOTED: judged.decision.promoted,
        Key.DECISION: judged.decision.reason,
        "benchmark_images": challenger.images if challenger else 0,
        "worst_benchmark_images": dg.MetadataValue.md(judged.worst_benchmark or "no benchmark image with an error"),
        **review_metadata(judged.review),
        **benchmark_metadata(challenger, judged.champion),
        **analysis_metadata(judged, staged),
    })


def review_metadata(review: LabelReview) -> dict:
    """The label review as metadata: findings by scientist, the most confident ones as a table
    and as pictures; or why the model is too weak to judge."""
    ranked = review.ranked
    if review.skipped:
        table = dg.MetadataValue.md(review.skipped)
    elif ranked:
        table = markdown_table(["file", "line", "kind", "confidence", "reason"],
                               [(f["file"], f["line"], f["kind"], f"{f['confidence']:.2f}", f["reason"])
                                for f in ranked[:50]])
    else:
        table = dg.MetadataValue.md("the model agrees with every label of the held-out images")
    return {
        "label_review": table,
        "label_review_findings": len(ranked),
        "label_review_folds": dg.MetadataValue.json(review.fold_runs),
        **{f"label_review/{s}": len(found) for s, found in review.reviews.items()},
        "label_review_pictures": dg.MetadataValue.md(review.pictures or "nothing to show"),
    }


def benchmark_metadata(challenger: BenchmarkScores | None, champion: BenchmarkScores | None) -> dict:
    """Numeric metadata (``benchmark/<metric>`` for the challenger, ``champion/<metric>`` for the
    champion on the same images: the UI plots each across materializations) and tables per class
    and per scientist."""
    meta: dict = {}
    for prefix, scores in (("benchmark", challenger), ("champion", champion)):
        if scores is not None:
            meta.update({f"{prefix}/{m}": dg.MetadataValue.float(round(scores.overall[m], 4)) for m in METRICS})
            meta[f"{prefix}/imgsz"] = dg.MetadataValue.int(scores.imgsz)
    if challenger is not None:
        classes = sorted(challenger.per_class)
        meta["benchmark_per_class"] = markdown_table(
            ["class", "challenger mAP50-95", "champion mAP50-95"],
            [(c, f"{challenger.per_class[c]:.4f}", f"{champion.per_class[c]:.4f}" if champion and c in champion.per_class
              else "") for c in classes])
        meta["benchmark_per_scientist"] = markdown_table(
            ["scientist", *[f"challenger {m}" for m in ("mAP50", "mAP50-95")], *[f"champion {m}" for m in ("mAP50", "mAP50-95")]],
            [(s, *(f"{v[m]:.4f}" for m in ("mAP50", "mAP50-95")),
              *((f"{champion.per_scientist[s][m]:.4f}" for m in ("mAP50", "mAP50-95")) if champion and s in champion.per_scientist
                else ("", ""))) for s, v in sorted(challenger.per_scientist.items())])
    return meta


def analysis_metadata(judged: ChallengerEvaluation, staged_dir) -> dict:
    """The benchmark analysis and the operating point as metadata: numbers the UI plots
    (``reference/*``, ``error_types/*``, ``operating_point/*``), the error-type chart, the slice
    table (regressed slices in bold), the galleries and the confusion matrix."""
    meta: dict = {}
    point = judged.operating_point
    if point:
        meta["operating_point/confidence"] = dg.MetadataValue.float(point["confidence"])
        meta["operating_point/val_f1"] = dg.MetadataValue.float(round(point["f1"], 4))
        for measure in ("precision", "recall"):
            if "benchmark" in point:
                meta[f"operating_point/benchmark_{measure}"] = dg.MetadataValue.float(round(point["benchmark"][measure], 4))
    analysis = judged.analysis
    if analysis is None:
        return meta
    for who, prefix in (("challenger", "reference"), ("champion", "champion_reference")):
        for name, value in analysis.reference.get(who, {}).items():
            meta[f"{prefix}/{name}"] = dg.MetadataValue.float(round(value, 4))
    found = analysis.error_types
    meta.update({f"error_types/{name}": dg.MetadataValue.float(round(v, 4))
                 for name, v in found["challenger"]["dAP"].items()})
    meta["error_types"] = dg.MetadataValue.md(
        markdown_image("error types", error_types_chart_png(found), "image/png") + "\n\n" + markdown_table(
            ["error type", *[f"{who} mAP50 lost" for who in found], *[f"{who} errors" for who in found]],
            [(name, *(f"{found[w]['dAP'][name]:.4f}" for w in found), *(str(found[w]["counts"][name]) for w in found))
             for name in found["challenger"]["dAP"]]).value)
    meta["slices"] = slice_markdown(analysis.slices)
    meta["slices_regressed"] = dg.MetadataValue.text(", ".join(analysis.regressed) or "none")
    meta["slice_galleries"] = dg.MetadataValue.md(
        slice_galleries(judged.on_benchmark, judged.evaluation, analysis, staged_dir) or "no slice to show")
    names, counts = analysis.confusion
    meta["confusion_matrix"] = dg.MetadataValue.md(
        f"at the operating point (confidence {analysis.confidence}); rows predicted, columns labelled; the last "
        "row counts missed boxes, the last column spurious ones\n\n" + markdown_table(
            ["predicted \\ labelled", *names], [(n, *map(str, row)) for n, row in zip(names, counts, strict=True)]).value)
    return meta


def slice_markdown(slices: pd.DataFrame) -> dg.MetadataValue:
    """The slice table: each slice's support, the challenger's mAP50-95 with its interval, the
    champion's, and the difference with its interval; a regressed slice in bold, one without
    enough support in italics."""
    def cell(value, low=None, high=None) -> str:
        if pd.isna(value):
            return ""
        return f"{value:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None and not pd.isna(low) else "")

    rows = []
    for r in slices.itertuples():
        name = f"**{r.kind}: {r.slice}** (regressed)" if r.regressed else (
            f"{r.kind}: {r.slice}" if r.enough_support else f"*{r.kind}: {r.slice}* (little support)")
        rows.append((name, str(r.images), str(r.boxes), cell(r.challenger, r.challenger_low, r.challenger_high),
                     cell(r.champion), cell(r.difference, r.difference_low, r.difference_high)))
    return markdown_table(["slice", "images", "boxes", "challenger mAP50-95 [95%]", "champion", "difference [95%]"], rows)


@dg.asset(group_name=GROUP, kinds={store_kind()}, output_required=False,
          automation_condition=dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed())
def champion_model(context: dg.AssetExecutionContext, object_store: ObjectStoreResource, yolo_model: dict,
                   model_evaluation: pd.DataFrame) -> Iterator[dg.Output[dict]]:
    """The model a deployment serves: `refs/models/champion` names it, with the SHA-256 of its
    weights, the benchmark scores that won it and its operating point; with MLflow tracking, the
    registered model's ``champion`` alias moves to its version. Materializes when model_evaluation promoted the
    new model (the decision beats_champion reports); after a refusal the step succeeds without a
    materialization, so the catalog keeps showing the champion that still serves."""
    store = object_store.get_store()
    champion, reason = promote(store, yolo_model)
    if champion is None:
        current = read_champion(store)
        context.log.info(f"champion unchanged ({current['model_id'] if current else 'none yet'}): {reason}")
        return
    context.log.info(f"champion: {yolo_model['model_id']} ({reason})")
    aliased = set_champion_alias(yolo_model.get("mlflow"), warn=context.log.warning)  # the registry follows the ref
    point = champion.get("operating_point") or {}
    yield dg.Output(champion, metadata={"model_id": champion["model_id"], Key.MODEL_KEY: champion["model_key"],
                                        "sha256": champion["sha256"], Key.DATASET_ID: champion["dataset_id"],
                                        **({"operating_point/confidence": dg.MetadataValue.float(point["confidence"])}
                                           if point else {}),
                                        **({"mlflow_champion_version": str(yolo_model["mlflow"]["version"])}
                                           if aliased else {})})
