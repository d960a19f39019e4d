"""Training assets: training dataset (all scientists, split, staged) -> YOLO model."""


import dataclasses
import datetime
import functools
import hashlib
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd

from imgassets import settings
from imgassets.core.images.thumbnails import MAX_PICTURES, markdown_image, thumbnail
from imgassets.core.labels.class_registry import ClassRegistry, ClassRegistryError, is_hole, load_registry
from imgassets.core.store.hashing import sha256_file
from imgassets.core.store.keys import (
    DATASET_LOG_PREFIX,
    EVALUATION,
    MODEL_RECORD,
    class_registry_key,
    model_file_key,
    review_key,
)
from imgassets.core.store.records import get_record, put_record
from imgassets.core.store.table_cache import LABEL_TABLE, load_cached_table
from imgassets.core.training.benchmark import (
    METRICS,
    BenchmarkScores,
    PromotionDecision,
    promotion_decision,
    score_on_benchmark,
)
from imgassets.core.training.evaluate import evaluate_model, pictures_of, worst_images, worst_pictures
from imgassets.core.training.models import read_champion, store_model, trained_imgsz, write_benchmark, write_champion
from imgassets.core.training.review import ReviewSettings, kfold_review, model_can_judge, review_dataset
from imgassets.core.training.train import TrainingSettings, preset, train_yolo
from imgassets.core.versioning.dataset import (
    DEFAULT_BENCHMARK_FRACTION,
    DEFAULT_VAL_FRACTION,
    DatasetVersion,
    EmptyDatasetError,
    ManifestError,
    load_dataset,
    load_snapshot_table,
    merge_snapshots,
    store_dataset,
)
from imgassets.core.versioning.departed import DepartedPolicyError, apply_policy
from imgassets.core.versioning.diff import VersionDiff, diff_versions
from imgassets.core.versioning.health import dataset_health, unmeasurable_classes
from imgassets.core.versioning.lineage_index import update_lineage_index
from imgassets.core.versioning.pull import pull_dataset
from imgassets.core.versioning.refs import log_version, write_latest_ref
from imgassets.core.versioning.retraction import load_retractions
from imgassets.core.versioning.sequences import load_captures
from imgassets.defs.deployment import store_kind
from imgassets.defs.kubernetes import GPU_TRAINING_K8S_CONFIG
from imgassets.defs.lineage import latest_dataset_id, latest_snapshots
from imgassets.defs.metadata import ASSET_GROUP, Key, markdown_table
from imgassets.defs.resources import ObjectStoreResource, SharedDrive, WorkDirs
from imgassets.defs.scientist.assets import image_snapshot
from imgassets.defs.training.conditions import TRAINING_POOL, dataset_condition, model_condition

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

    def settings(self) -> TrainingSettings:
        """The preset of ``IMGASSETS_TRAINING_PRESET`` with every field given here in its place."""
        return preset(settings.training_preset()).overridden(
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


def _previous_dataset(context: dg.AssetExecutionContext, store) -> DatasetVersion | None:
    """The dataset the last ``training_dataset`` built (its splits and class ids carry over), or
    ``None`` (first build, or one whose manifest fails its id: splits and ids start afresh)."""
    previous = latest_dataset_id(context.instance)
    if not previous:
        return None
    try:
        return load_dataset(store, previous)
    except ManifestError as exc:
        context.log.warning(f"previous dataset {previous} not used for stable splits and class ids: {exc}")
        return None


def _class_registry(store) -> ClassRegistry | None:
    """The class registry of ``$IMGASSETS_CLASS_REGISTRY`` (kept in the store by its hash), or ``None``."""
    path = settings.class_registry_path()
    if path is None:
        return None
    try:
        registry = load_registry(path)
    except ClassRegistryError as exc:
        raise dg.Failure(f"{exc} ({settings.CLASS_REGISTRY_ENV})") from None
    if not store.exists(class_registry_key(registry.digest)):
        store.put_bytes(class_registry_key(registry.digest), registry.text)
    return registry


@dg.asset(deps=[dg.AssetDep(image_snapshot, partition_mapping=dg.AllPartitionMapping()), retractions],
          group_name=GROUP, kinds={"parquet"}, automation_condition=dataset_condition)
def training_dataset(context: dg.AssetExecutionContext, config: DatasetConfig, shared_drive: SharedDrive,
                     object_store: ObjectStoreResource) -> dg.Output[dict]:
    """Every scientist's latest snapshot (a snapshot only exists once its blocking checks passed),
    merged and split by content hash (near-duplicates and the frames of one burst or recording
    session in one split: :mod:`imgassets.core.versioning.sequences`), without retracted content; class names mapped through the
    class registry when there is one, class ids stable across versions; manifest, near-duplicate
    pairs and ``data.yaml`` stored under ``datasets/<dataset_id>/`` and logged
    (``refs/log/datasets/``). Metadata: what changed against the previous version (the semantic
    diff), the dataset's health (per split and scientist, an annotation heatmap), scientist folders
    gone from the drive (the departed policy). Nothing is staged here: each step that needs the
    images pulls them from the store onto its own disk, as a pod must."""
    image_snapshot = latest_snapshots(context.instance)
    if not image_snapshot:
        raise dg.Failure("no scientist has an image snapshot yet: materialize image_snapshot for at least one "
                         "scientist (its blocking checks must pass) before building a training dataset")
    store = object_store.get_store()
    retracted = load_retractions(store)
    try:
        policy, grace_days = settings.departed_policy()
        departed = apply_policy(store, Path(shared_drive.root), {s: r["snapshot_id"] for s, r in image_snapshot.items()},
                                policy, grace_days, retracted)
    except (DepartedPolicyError, ValueError) as exc:  # an unknown policy, a grace period that is not a number
        raise dg.Failure(str(exc)) from None
    if any(d.action == "retracted" and f"{d.scientist}/{d.snapshot_id}" not in retracted.snapshots for d in departed):
        retracted = load_retractions(store)  # the policy recorded a retraction just now
    sources = {s: r for s, r in image_snapshot.items() if f"{s}/{r['snapshot_id']}" not in retracted.snapshots}
    for gone in departed:
        context.log.warning(f"scientist folder {gone.scientist} is missing from the shared drive since "
                            f"{gone.missing_since[:10]}: its snapshot {gone.snapshot_id} {gone.action}")
    if not sources:
        raise dg.Failure("every scientist's latest snapshot is retracted: nothing to build a dataset from")
    previous = _previous_dataset(context, store)
    try:
        dataset = merge_snapshots(
            {sci: (ref["snapshot_id"], load_snapshot_table(store, ref["manifest_key"])) for sci, ref in sources.items()},
            config.val_fraction, previous.splits_by_hash() if previous and not config.resplit else None,
            benchmark_fraction=config.benchmark_fraction,
            previous_class_names=previous.class_names if previous else None, registry=_class_registry(store),
            retracted=retracted.hashes, previous_id=previous.dataset_id if previous else "",
            captures=load_captures(store, {s: r["snapshot_id"] for s, r in sources.items()}),
            sequence_rules=settings.sequence_rules(),
        )
    except (EmptyDatasetError, ClassRegistryError, ValueError) as exc:
        raise dg.Failure(str(exc)) from None
    for group in dataset.groups_kept_in_train:
        context.log.warning(f"a group of {group['images']} linked images (a burst, a recording session or "
                            f"near-duplicates; named {group['group'][:12]}) is larger than the val share allows: "
                            "trained on, kept out of val and benchmark so that the splits keep their shares")
    store_dataset(store, dataset)
    write_latest_ref(store, dataset.dataset_id)
    log_version(store, DATASET_LOG_PREFIX, dataset.dataset_id)
    update_lineage_index(store)  # every snapshot and this dataset: `imgassets lineage` reads one shard
    value = {"dataset_id": dataset.dataset_id, "manifest_key": dataset.manifest_key,
             "data_yaml_key": dataset.data_yaml_key, "snapshots": dataset.snapshots,
             "class_names": dataset.class_names}
    changes = diff_versions(previous.table, dataset.table, "dataset", previous.dataset_id, dataset.dataset_id,
                            previous.class_names, dataset.class_names) if previous else None
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
        "groups_kept_in_train": dg.MetadataValue.json(dataset.groups_kept_in_train),
        "previous_dataset_id": previous.dataset_id if previous else "",
        "departed_scientists": dg.MetadataValue.json([dataclasses.asdict(d) for d in departed]),
        Key.SNAPSHOTS: dg.MetadataValue.json(dataset.snapshots),
        **diff_metadata(changes),
        **health_metadata(dataset),
    })


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
               workdirs: WorkDirs, training_dataset: dict) -> dg.Output[dict]:
    """YOLO weights trained with Ultralytics on the staged training dataset. Stored under
    ``models/<dataset_id>/<model_id>/`` (model id = run id): best.pt, last.pt, results.csv,
    args.yaml and model.json; metrics (mAP50, mAP50-95, precision, recall, per-class mAP50-95),
    training seconds and images/second as metadata, and the per-epoch curves as a table."""
    store = object_store.get_store()
    dataset_id = training_dataset["dataset_id"]
    data_yaml = pull_dataset(store, dataset_id, workdirs.staging(dataset_id), workdirs.cache).data_yaml
    settings = config.settings()
    def log_epoch(epoch: int, epochs: int, values: dict[str, float]) -> None:  # the run's log in the UI, live
        context.log.info(f"epoch {epoch}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))

    result = train_yolo(data_yaml, settings, workdirs.training(context.run_id), on_epoch=log_epoch)
    record = store_model(store, {
        "model_id": context.run_id, "dataset_id": dataset_id, "snapshots": training_dataset.get("snapshots", {}),
        "metrics": result.metrics, "per_class_map50_95": result.per_class_map, "epochs": result.epochs,
        "training_seconds": round(result.seconds, 2), "images_per_second": round(result.images_per_second, 2),
        "device": result.device, "settings": dataclasses.asdict(settings),
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
    }, {"best.pt": result.best_weights, "last.pt": result.last_weights, "results.csv": result.results_csv,
        "args.yaml": result.args_yaml, **result.plots})
    model_key = record["keys"]["best.pt"]
    value = {"model_key": model_key, "model_id": context.run_id, "dataset_id": dataset_id, "run_id": context.run_id,
             "metrics": result.metrics, "epochs": result.epochs, "training_seconds": result.seconds,
             "device": result.device, "imgsz": settings.imgsz}
    return dg.Output(value, metadata={
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
                     yolo_model: dict) -> dg.Output[pd.DataFrame]:
    """The model (the challenger) on its dataset's held-out images. On the validation split, image
    by image: missed and spurious boxes; per scientist, the images where it does worst (where more
    or better labels help), stored as ``models/<dataset_id>/<model_id>/evaluation.parquet``. On the
    benchmark split: the challenger's and the current champion's scores on the same images
    (:mod:`imgassets.core.training.benchmark`), overall, per class and per scientist, as numeric
    metadata (plotted across materializations) and tables, and the promotion decision, stored as
    ``benchmark.json`` beside the model and enforced by the ``beats_champion`` check; pictures of
    the worst benchmark images; and the model-assisted label review of the held-out images
    (:func:`_label_review`)."""
    store = object_store.get_store()
    dataset = load_dataset(store, yolo_model["dataset_id"])
    staged = pull_dataset(store, dataset.dataset_id, workdirs.staging(dataset.dataset_id), workdirs.cache).data_yaml.parent
    champion = read_champion(store)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "best.pt"
        store.get_file(yolo_model["model_key"], weights)
        evaluation = evaluate_model(weights, dataset.records, staged, yolo_model["imgsz"])
        challenger = score_on_benchmark(weights, staged, dataset.records, dataset.class_names, yolo_model["imgsz"])
        on_benchmark = evaluate_model(weights, dataset.records, staged, yolo_model["imgsz"], split="benchmark")
        worst_benchmark = worst_pictures(weights, dataset.records, staged, yolo_model["imgsz"], on_benchmark,
                                         dataset.class_names)
        review = _label_review(store, weights, dataset, staged, yolo_model, challenger)
        champion_scores, not_comparable = _champion_scores(store, champion, yolo_model, challenger, staged, dataset,
                                                           Path(tmp))
    margin = settings.champion_margin()
    champion_id = champion["model_id"] if champion else None
    if champion_id == yolo_model["model_id"]:
        decision = PromotionDecision(True, "already the champion (evaluated again)")
    else:
        decision = promotion_decision(challenger, champion_scores, champion_id, margin, not_comparable)
    benchmark = {"challenger": challenger.as_dict() if challenger else None,
                 "champion": {"model_id": champion_id, "scores": champion_scores.as_dict() if champion_scores else None,
                              "not_comparable": not_comparable} if champion_id else None,
                 "margin": margin, "decision": {"promoted": decision.promoted, "reason": decision.reason}}
    benchmark_key = write_benchmark(store, yolo_model["dataset_id"], yolo_model["model_id"], benchmark)
    context.log.info(f"benchmark: {decision.reason}")
    buffer = io.BytesIO()
    evaluation.to_parquet(buffer, index=False)
    key = model_file_key(yolo_model["dataset_id"], yolo_model["model_id"], EVALUATION)
    store.put_bytes(key, buffer.getvalue())
    worst = worst_images(evaluation, per_scientist=5)
    return dg.Output(evaluation, metadata={
        "dagster/row_count": len(evaluation),
        Key.EVALUATION_KEY: key,
        Key.MISSED_BOXES: int(evaluation["missed"].sum()),
        Key.SPURIOUS_BOXES: int(evaluation["spurious"].sum()),
        "worst_images": markdown_table(["scientist", "path", "missed", "spurious"],
                                       worst[["scientist", "path", "missed", "spurious"]].itertuples(index=False)),
        Key.BENCHMARK_KEY: benchmark_key,
        Key.PROMOTED: decision.promoted,
        Key.DECISION: decision.reason,
        "benchmark_images": challenger.images if challenger else 0,
        "worst_benchmark_images": dg.MetadataValue.md(worst_benchmark or "no benchmark image with an error"),
        **review,
        **benchmark_metadata(challenger, champion_scores),
    })


def _label_review(store, weights: Path, dataset, staged: Path, yolo_model: dict,
                  challenger: BenchmarkScores | None) -> dict:
    """Model-assisted label review (:mod:`imgassets.core.training.review`) of the dataset's held-out
    images by the model just trained: ``reviews/<scientist>.json`` for every scientist (read by
    the ``label_review`` check on their partition), and the metadata: findings by scientist, the
    most confident ones as a table and as pictures; or why the model is too weak to judge."""
    review_settings = ReviewSettings(**settings.review_settings())
    too_weak = model_can_judge(challenger.overall["mAP50"] if challenger else None, review_settings)
    tables = functools.cache(lambda scientist: load_cached_table(store, LABEL_TABLE, scientist))
    reviews = {s: [] for s in dataset.snapshots} if too_weak else review_dataset(
        weights, dataset.records, staged, yolo_model["imgsz"], dataset.class_names, tables, yolo_model["model_id"],
        review_settings)
    folds, fold_runs = settings.review_folds(), []
    if folds >= 2 and not too_weak:  # every train image judged by a model that did not train on it
        record = get_record(store, model_file_key(yolo_model["dataset_id"], yolo_model["model_id"], MODEL_RECORD))
        training = TrainingSettings(**record["settings"]).overridden(plots=False)
        with tempfile.TemporaryDirectory(prefix="imgassets-folds-") as workdir:
            out_of_sample, fold_runs = kfold_review(dataset.records, staged, dataset.class_names, training, folds,
                                                    workdir, tables, yolo_model["model_id"], review_settings)
        for scientist, found in out_of_sample.items():
            reviews[scientist] = sorted(reviews.get(scientist, []) + found, key=lambda f: -f["confidence"])
    for scientist, findings in reviews.items():
        put_record(store, review_key(scientist), {
            "model_id": yolo_model["model_id"], "dataset_id": dataset.dataset_id, "skipped": too_weak,
            "folds": fold_runs, "findings": findings})
    owned = sorted(((scientist, f) for scientist, found in reviews.items() for f in found),
                   key=lambda pair: -pair[1]["confidence"])
    ranked = [f for _, f in owned]
    by_path = {(r["scientist"], r["path"]): r for r in dataset.records}
    shown, seen = [], set()
    for scientist, finding in owned:
        if len(shown) >= MAX_PICTURES:
            break
        if (scientist, finding["image"]) not in seen:
            seen.add((scientist, finding["image"]))
            shown.append((by_path[(scientist, finding["image"])], f"{finding['kind']}: {finding['reason']}"))
    pictures = pictures_of(weights, [r for r, _ in shown], staged, yolo_model["imgsz"], dataset.class_names,
                           [note for _, note in shown], review_settings.min_confidence)
    return {
        "label_review": dg.MetadataValue.md(too_weak) if too_weak else markdown_table(
            ["file", "line", "kind", "confidence", "reason"],
            [(f["file"], f["line"], f["kind"], f"{f['confidence']:.2f}", f["reason"]) for f in ranked[:50]])
        if ranked else dg.MetadataValue.md("the model agrees with every label of the held-out images"),
        "label_review_findings": len(ranked),
        "label_review_folds": dg.MetadataValue.json(fold_runs),
        **{f"label_review/{s}": len(found) for s, found in reviews.items()},
        "label_review_pictures": dg.MetadataValue.md(pictures or "nothing to show"),
    }


def _champion_scores(store, champion: dict | None, yolo_model: dict, challenger: BenchmarkScores | None, staged: Path,
                     dataset, tmp: Path) -> tuple[BenchmarkScores | None, str | None]:
    """The champion's scores on the challenger's benchmark images at the image size the champion
    was trained at (:func:`imgassets.core.training.models.trained_imgsz`), or why it cannot be scored."""
    if champion is None or challenger is None or champion["model_id"] == yolo_model["model_id"]:
        return None, None
    weights = tmp / "champion.pt"
    store.get_file(champion["model_key"], weights)
    if champion.get("sha256") and sha256_file(str(weights)) != champion["sha256"]:
        return None, f"its weights {champion['model_key']} do not match the hash recorded in the champion ref"
    imgsz = trained_imgsz(store, champion) or yolo_model["imgsz"]
    try:
        return score_on_benchmark(weights, staged, dataset.records, dataset.class_names, imgsz), None
    except ValueError as exc:
        return None, str(exc)


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


@dg.asset(group_name=GROUP, kinds={store_kind()}, output_required=False,
          automation_condition=dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed())
def champion_model(context: dg.AssetExecutionContext, object_store: ObjectStoreResource, yolo_model: dict,
                   model_evaluation: pd.DataFrame) -> Iterator[dg.Output[dict]]:
    """The model a deployment serves: `refs/models/champion` names it, with the SHA-256 of its
    weights and the benchmark scores that won it. Materializes when model_evaluation promoted the
    new model (the decision beats_champion reports); after a refusal the step succeeds without a
    materialization, so the catalog keeps showing the champion that still serves."""
    from imgassets.core.training.models import read_benchmark

    store = object_store.get_store()
    benchmark = read_benchmark(store, yolo_model) or {}
    decision = benchmark.get("decision") or {"promoted": False, "reason": "no benchmark record for this model"}
    if not decision["promoted"]:
        current = read_champion(store)
        context.log.info(f"champion unchanged ({current['model_id'] if current else 'none yet'}): {decision['reason']}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "best.pt"
        store.get_file(yolo_model["model_key"], weights)
        digest = sha256_file(str(weights))
    champion = {"model_id": yolo_model["model_id"], "dataset_id": yolo_model["dataset_id"],
                "model_key": yolo_model["model_key"], "sha256": digest,
                "scores": benchmark.get("challenger"), "decision": decision,
                "promoted_at": datetime.datetime.now(datetime.UTC).isoformat()}
    write_champion(store, champion)
    context.log.info(f"champion: {yolo_model['model_id']} ({decision['reason']})")
    yield dg.Output(champion, metadata={"model_id": champion["model_id"], Key.MODEL_KEY: champion["model_key"],
                                        "sha256": digest, Key.DATASET_ID: champion["dataset_id"]})
