"""Asset checks on the per-scientist assets. Which block and why: ``docs/architecture.md``.

* ``images_decode`` (WARN): a rejected image is excluded from the snapshot; the others go on.
* ``duplicate_images`` (WARN): exact and near duplicates within the scientist's folder.
* ``image_quality`` (WARN): images far from the scientist's own images on brightness, contrast,
  sharpness, entropy or aspect ratio, and near-constant images
  (:mod:`imgassets.core.images.quality`); the distributions are drawn in the check's metadata.
* ``label_schema``, ``box_geometry``, ``class_ids_in_class_map``, ``label_frame``,
  ``label_sources_agree`` (ERROR, blocking): a wrong box on a kept image would teach the model
  wrong answers, so the snapshot and training wait for a fix.
* ``classes_in_registry`` (ERROR, blocking): with a class registry, every class name maps through
  it (:mod:`imgassets.core.labels.class_registry`), so an id means one class in every version.
* ``label_files_have_images``, ``data_yaml_paths`` (WARN): a label file without an image adds
  nothing to training; a data.yaml naming a missing folder is an incomplete export.

The checks of one asset run as one step (a multi-asset check): each is still its own check in the
UI, with its own result, severity and blocking, but the table is loaded once and a run pays one
step's overhead per asset, not one per check. The label findings themselves are computed once, by
the label table asset (:class:`imgassets.core.labels.checks.LabelFindings`).
"""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from imgassets import settings
from imgassets.core.images.duplicates import duplicate_report
from imgassets.core.images.index import rejected_images, valid_images
from imgassets.core.images.quality import quality_outliers, quality_plot_png
from imgassets.core.images.thumbnails import finding_pictures, markdown_image
from imgassets.core.labels import checks as label_checks
from imgassets.core.labels.checks import Finding
from imgassets.core.labels.class_registry import ClassRegistryError, load_registry
from imgassets.core.labels.report import data_yaml_findings
from imgassets.core.training.review import load_review
from imgassets.defs.metadata import check_result
from imgassets.defs.partitions import scientists
from imgassets.defs.resources import ObjectStoreResource, SharedDrive
from imgassets.defs.scientist.assets import image_index as image_index_asset
from imgassets.defs.scientist.assets import label_table as label_table_asset
from imgassets.errors import Reason

WARN = dg.AssetCheckSeverity.WARN
ERROR = dg.AssetCheckSeverity.ERROR

IMAGE_CHECKS = {
    "images_decode": ("Every image file is readable, a supported format, fully decodable and at least 10 px a "
                      "side. Rejected images are left out of the snapshot (WARN).", "rejected images"),
    "duplicate_images": ("Images that are exact (same SHA-256) or near (perceptual hash) duplicates of another "
                         "image of the same scientist. WARN: a training dataset keeps one copy and puts "
                         "near-duplicates in one split.", "duplicate images"),
    "image_quality": ("Images far from this scientist's own images on brightness, contrast, sharpness (blur), "
                      "entropy or aspect ratio (robust z-score beyond 3.5; no fixed thresholds: dark is normal "
                      "for some data), and near-constant images. WARN: worth a look, kept in the snapshot.",
                      "image-quality outliers"),
}
"""Checks of the image index: name -> (description, what one finding is)."""

LABEL_CHECKS = {
    "label_schema": ("Every label line parses as `class x_center y_center width height` and the table passes "
                     "the pandera ``LabelTableSchema`` (coordinates in [0, 1], class id >= 0). Blocking.",
                     "label rows failing the schema"),
    "box_geometry": ("No box has zero area or reaches outside the image. Blocking.", "boxes with bad geometry"),
    "class_ids_in_class_map": ("Every class id has a name in the nearest data.yaml or classes.txt. Blocking.",
                               "boxes with unknown class ids"),
    "label_frame": ("VOC/COCO files declare the image size the boxes were drawn on; it must be the displayed "
                    "size (EXIF orientation applied), else the boxes are likely rotated or scaled. Blocking.",
                    "label files in another image frame"),
    "label_sources_agree": ("An image annotated by several label files (say VOC XML and a CSV) gets the same "
                            "boxes from each; identical copies are used once. Blocking when they disagree: which "
                            "one is right is the scientist's call.", "images whose label files disagree"),
    "data_yaml_paths": ("``train``/``val``/``test`` folders named by a data.yaml exist. WARN: imgassets makes its "
                        "own split, but a dangling entry means the export is incomplete.",
                        "data.yaml entries naming missing folders"),
    "label_files_have_images": ("Every label file has its image (Ultralytics `labels/` sibling layout or beside "
                                "it). WARN.", "label files without an image"),
    "classes_in_registry": ("Every class name is known to the class registry ($IMGASSETS_CLASS_REGISTRY: canonical "
                            "names, aliases, merges), so class ids mean the same in every dataset version. Blocking; "
                            "passes when no registry is set.", "class names the registry does not know"),
    "label_review": ("Where the latest trained model, on this scientist's images it did not train on (val and "
                     "benchmark), disagrees with the labels: possibly missing boxes, wrong classes, mislocated "
                     "boxes, most confident first. WARN: the model can be wrong; a file fixed since the review "
                     "drops its findings.", "labels the model disagrees with"),
}
"""Checks of the label table: name -> (description, what one finding is); blocking are those in
:data:`imgassets.core.labels.checks.BLOCKING`."""


BLOCKING = (*label_checks.BLOCKING, "classes_in_registry")
"""The blocking checks of the scientist's assets: the label table's own, and the class registry's."""


def _specs(asset: dg.AssetsDefinition, checks: dict[str, tuple[str, str]],
           reads: dict[str, list[dg.AssetsDefinition]] | None = None) -> list[dg.AssetCheckSpec]:
    """One spec per check of ``asset``; ``reads``: the other assets a check reads, by check."""
    return [dg.AssetCheckSpec(name, asset=asset, description=description, partitions_def=scientists,
                              blocking=name in BLOCKING, additional_deps=(reads or {}).get(name))
            for name, (description, _) in checks.items()]


def _result(asset: dg.AssetsDefinition, checks: dict[str, tuple[str, str]], name: str,
            findings: list[Finding], pictures: str = "", extra: dict | None = None) -> dg.AssetCheckResult:
    severity = ERROR if name in BLOCKING else WARN
    extra = {**({"pictures": dg.MetadataValue.md(pictures)} if pictures else {}), **(extra or {})}
    return check_result(findings, severity, checks[name][1], extra, check_name=name, asset_key=asset.key)


def _label_review(store, scientist: str, label_table: pd.DataFrame) -> tuple[list[Finding], dict]:
    """The findings of the scientist's stored review that still stand, and who reviewed."""
    standing, reviewed_by = load_review(store, scientist, label_table)
    findings = [Finding(f["file"], f["line"], f"{f['kind']} ({f['confidence']:.2f}): {f['reason']}", Reason.LABEL_REVIEW)
                for f in standing]
    return findings, {"reviewed_by": reviewed_by}


def registry_findings(scientist: str, label_table: pd.DataFrame) -> tuple[list[Finding], dict]:
    """The class names of the scientist's boxes the class registry cannot map
    (:func:`~imgassets.core.labels.checks.unknown_class_findings`); none without a registry. A
    registry that cannot be used is itself the finding."""
    path = settings.class_registry_path()
    if path is None:
        return [], {"class_registry": "none"}
    try:
        registry = load_registry(path)
    except ClassRegistryError as exc:
        return [Finding(str(path), 0, f"class registry unusable: {exc}", Reason.UNKNOWN_CLASS_NAME)], {}
    return (label_checks.unknown_class_findings(registry, scientist, label_table),
            {"class_registry": str(path), "registry_sha256": registry.digest})


PICTURED = ("images_decode", *label_checks.BLOCKING)
"""Checks whose findings get thumbnails of their images (boxes drawn) in the check's metadata."""


@dg.multi_asset_check(specs=_specs(image_index_asset, IMAGE_CHECKS), name="image_index_checks",
                      ins={"image_index": dg.AssetIn("image_index")})
def image_index_checks(context: dg.AssetCheckExecutionContext, shared_drive: SharedDrive,
                       image_index: pd.DataFrame) -> Iterator[dg.AssetCheckResult]:
    """The image index's checks (:data:`IMAGE_CHECKS`), in one step; rejected images that can
    still be drawn are shown."""
    rejected = rejected_images(image_index)
    findings = [Finding(r.path, 0, f"{r.status}: {r.reason}", Reason.IMAGE_REJECTED) for r in rejected.itertuples()]
    pictures = finding_pictures(shared_drive.folder(context.partition_key), findings) if findings else ""
    yield _result(image_index_asset, IMAGE_CHECKS, "images_decode", findings, pictures)
    images = valid_images(image_index)
    report = duplicate_report(list(zip(images["path"], images["sha256"], images["phash"], strict=True)))
    yield _result(image_index_asset, IMAGE_CHECKS, "duplicate_images",
                  [Finding(path, 0, reason, Reason.DUPLICATE_IMAGE) for path, reason in report])
    outliers = [Finding(o.path, 0, o.reason, Reason.IMAGE_QUALITY)
                for o in quality_outliers(image_index, context.partition_key)]
    plot = quality_plot_png(image_index, context.partition_key)
    yield _result(image_index_asset, IMAGE_CHECKS, "image_quality", outliers,
                  finding_pictures(shared_drive.folder(context.partition_key), outliers) if outliers else "",
                  {"distributions": dg.MetadataValue.md(markdown_image("image quality distributions", plot, "image/png"))}
                  if plot else None)


@dg.multi_asset_check(specs=_specs(label_table_asset, LABEL_CHECKS, {"data_yaml_paths": [image_index_asset]}),
                      name="label_table_checks",
                      ins={"label_table": dg.AssetIn("label_table"), "image_index": dg.AssetIn("image_index")})
def label_table_checks(context: dg.AssetCheckExecutionContext, shared_drive: SharedDrive,
                       object_store: ObjectStoreResource, label_table: pd.DataFrame,
                       image_index: pd.DataFrame) -> Iterator[dg.AssetCheckResult]:
    """The label table's checks (:data:`LABEL_CHECKS`), in one step: the findings the label table
    asset recorded (computed here only for a table that records none: one stored by an earlier
    version), and the data.yaml paths, from the folder."""
    found = label_checks.LabelFindings.of_table(label_table).by_check
    folder = shared_drive.folder(context.partition_key)
    for name in LABEL_CHECKS:
        if name == "classes_in_registry":
            findings, extra = registry_findings(context.partition_key, label_table)
            yield _result(label_table_asset, LABEL_CHECKS, name, findings, extra=extra)
            continue
        if name == "label_review":
            findings, extra = _label_review(object_store.get_store(), context.partition_key, label_table)
            yield _result(label_table_asset, LABEL_CHECKS, name, findings,
                          finding_pictures(folder, findings, label_table) if findings else "", extra)
            continue
        findings = data_yaml_findings(folder, image_index) if name == "data_yaml_paths" else found[name]
        pictures = finding_pictures(folder, findings, label_table) if findings and name in PICTURED else ""
        yield _result(label_table_asset, LABEL_CHECKS, name, findings, pictures)


QUALITY_CHECKS = [image_index_checks, label_table_checks]
