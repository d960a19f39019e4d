"""Asset checks on the per-scientist assets. Which block and why: ``docs/architecture.md``.

* ``images_decode`` (WARN): a rejected image is excluded from the snapshot; the others go on.
* ``label_schema``, ``box_geometry``, ``class_ids_in_class_map``, ``label_frame`` (ERROR, blocking):
  a wrong box on a kept image would teach the model wrong answers, so the snapshot and training
  wait for a fix.
* ``label_files_have_images`` (WARN): a label file without an image adds nothing to training.
"""


import dagster as dg
import pandas as pd

from imgassets.core.images.duplicates import duplicate_report
from imgassets.core.images.index import rejected_images, valid_images
from imgassets.core.labels import checks as label_checks
from imgassets.core.labels.checks import Finding
from imgassets.core.labels.report import data_yaml_findings
from imgassets.defs.metadata import check_result
from imgassets.defs.partitions import scientists
from imgassets.defs.resources import SharedDrive
from imgassets.defs.scientist.assets import image_index, label_table
from imgassets.errors import Reason

WARN = dg.AssetCheckSeverity.WARN


def _findings(label_table: pd.DataFrame, check: str) -> list:
    """The findings of ``check`` that the label table asset computed and recorded (computed here
    only for a table that records none: one stored by an earlier version)."""
    return label_checks.LabelFindings.of_table(label_table).by_check[check]
ERROR = dg.AssetCheckSeverity.ERROR


@dg.asset_check(asset=image_index, partitions_def=scientists, blocking=False)
def images_decode(image_index: pd.DataFrame) -> dg.AssetCheckResult:
    """Every image file is readable, a supported format, fully decodable and at least 10 px a side.
    Rejected images are left out of the snapshot (WARN)."""
    rejected = rejected_images(image_index)
    findings = [Finding(r.path, 0, f"{r.status}: {r.reason}", Reason.IMAGE_REJECTED) for r in rejected.itertuples()]
    return check_result(findings, WARN, "rejected images")


@dg.asset_check(asset=image_index, partitions_def=scientists, blocking=False)
def duplicate_images(image_index: pd.DataFrame) -> dg.AssetCheckResult:
    """Images that are exact (same SHA-256) or near (perceptual hash) duplicates of another image of
    the same scientist. WARN: a training dataset keeps one copy and puts near-duplicates in one split."""
    images = valid_images(image_index)
    report = duplicate_report(list(zip(images["path"], images["sha256"], images["phash"], strict=True)))
    return check_result([Finding(path, 0, reason, Reason.DUPLICATE_IMAGE) for path, reason in report], WARN, "duplicate images")


@dg.asset_check(asset=label_table, partitions_def=scientists, blocking=True)
def label_schema(label_table: pd.DataFrame) -> dg.AssetCheckResult:
    """Every label line parses as `class x_center y_center width height` and the table passes the
    pandera ``LabelTableSchema`` (coordinates in [0, 1], class id >= 0). Blocking."""
    return check_result(_findings(label_table, "label_schema"), ERROR, "label rows failing the schema")


@dg.asset_check(asset=label_table, partitions_def=scientists, blocking=True)
def box_geometry(label_table: pd.DataFrame) -> dg.AssetCheckResult:
    """No box has zero area or reaches outside the image. Blocking."""
    return check_result(_findings(label_table, "box_geometry"), ERROR, "boxes with bad geometry")


@dg.asset_check(asset=label_table, partitions_def=scientists, blocking=True)
def class_ids_in_class_map(label_table: pd.DataFrame) -> dg.AssetCheckResult:
    """Every class id has a name in the nearest data.yaml or classes.txt. Blocking."""
    return check_result(_findings(label_table, "class_ids_in_class_map"), ERROR, "boxes with unknown class ids")


@dg.asset_check(asset=label_table, partitions_def=scientists, blocking=True)
def label_frame(label_table: pd.DataFrame) -> dg.AssetCheckResult:
    """VOC/COCO files declare the image size the boxes were drawn on; it must be the displayed
    size (EXIF orientation applied), else the boxes are likely rotated or scaled. Blocking."""
    return check_result(_findings(label_table, "label_frame"), ERROR, "label files in another image frame")


@dg.asset_check(asset=label_table, partitions_def=scientists, blocking=True)
def label_sources_agree(label_table: pd.DataFrame) -> dg.AssetCheckResult:
    """An image annotated by several label files (say VOC XML and a CSV) gets the same boxes from
    each; identical copies are used once. Blocking when they disagree: which one is right is the
    scientist's call."""
    return check_result(_findings(label_table, "label_sources_agree"), ERROR, "images whose label files disagree")


@dg.asset_check(asset=label_table, partitions_def=scientists, blocking=False,
                additional_ins={"image_index": dg.AssetIn("image_index")})
def data_yaml_paths(context: dg.AssetCheckExecutionContext, shared_drive: SharedDrive, label_table: pd.DataFrame,
                    image_index: pd.DataFrame) -> dg.AssetCheckResult:
    """``train``/``val``/``test`` folders named by a data.yaml exist. WARN: imgassets makes its own
    split, but a dangling entry means the export is incomplete."""
    findings = data_yaml_findings(shared_drive.folder(context.partition_key), image_index)
    return check_result(findings, WARN, "data.yaml entries naming missing folders")


@dg.asset_check(asset=label_table, partitions_def=scientists, blocking=False)
def label_files_have_images(label_table: pd.DataFrame) -> dg.AssetCheckResult:
    """Every label file has its image (Ultralytics `labels/` sibling layout or beside it). WARN."""
    return check_result(_findings(label_table, "label_files_have_images"), WARN, "label files without an image")


QUALITY_CHECKS = [images_decode, duplicate_images, label_schema, box_geometry, class_ids_in_class_map, label_frame,
                  label_sources_agree, data_yaml_paths, label_files_have_images]
