"""The per-scientist asset checks: what each checks, how blocking it is, how a result is built.
Which block and why: ``docs/architecture.md``.

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
* ``prelabels_not_rubber_stamped`` (WARN): pre-annotations accepted nearly all unchanged while the
  label review finds those images' labels wrong (:mod:`imgassets.core.labeling.provenance`).
* ``label_files_have_images``, ``data_yaml_paths`` (WARN): a label file without an image adds
  nothing to training; a data.yaml naming a missing folder is an incomplete export.

The label table's checks are reported by the label table asset's own step (its ``check_specs``,
:func:`label_check_results`): the findings are computed once there, from the table just built, and
travel as the check results, never inside the table. The image index's checks run as one step of
their own (:mod:`imgassets.defs.scientist.checks`).
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd

from imgassets.core.images.thumbnails import finding_pictures
from imgassets.core.labeling.provenance import provenance_summary, rubber_stamp_findings
from imgassets.core.labels import checks as label_checks
from imgassets.core.labels.checks import Finding
from imgassets.core.labels.class_registry import ClassRegistryError, load_registry
from imgassets.defs.descriptions import for_people
from imgassets.defs.metadata import check_result
from imgassets.defs.partitions import scientists
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
    "prelabels_not_rubber_stamped": ("Pre-annotations (the champion's boxes handed to a labeling tool) are "
                                     "checked, not accepted blindly: fails when 95% or more of at least 20 were "
                                     "accepted unchanged while the label review finds the labels of 20% or more of "
                                     "those images wrong. WARN.", "champions whose pre-annotations look unchecked"),
}
"""Checks of the label table: name -> (description, what one finding is); blocking are those in
:data:`imgassets.core.labels.checks.BLOCKING`."""


BLOCKING = (*label_checks.BLOCKING, "classes_in_registry")
"""The blocking checks of the scientist's assets: the label table's own, and the class registry's."""


def specs(asset: str, checks: dict[str, tuple[str, str]],
          reads: dict[str, list[str]] | None = None) -> list[dg.AssetCheckSpec]:
    """One spec per check of asset ``asset`` (its key); ``reads``: the other assets a check reads, by check."""
    return [dg.AssetCheckSpec(name, asset=asset, description=for_people(description), partitions_def=scientists,
                              blocking=name in BLOCKING, additional_deps=(reads or {}).get(name))
            for name, (description, _) in checks.items()]


def result(asset: str, checks: dict[str, tuple[str, str]], name: str,
           findings: list[Finding], pictures: str = "", extra: dict | None = None) -> dg.AssetCheckResult:
    """The result of check ``name`` of asset ``asset`` (its key): passed when ``findings`` is empty;
    ERROR for the blocking checks, else WARN."""
    severity = ERROR if name in BLOCKING else WARN
    extra = {**({"pictures": dg.MetadataValue.md(pictures)} if pictures else {}), **(extra or {})}
    return check_result(findings, severity, checks[name][1], extra, check_name=name, asset_key=dg.AssetKey(asset))


def label_review_findings(review: tuple[list[dict], str]) -> tuple[list[Finding], dict]:
    """The findings of the scientist's stored review that still stand
    (:func:`~imgassets.core.training.review.load_review`: ``(standing, reviewed_by)``), and who reviewed."""
    standing, reviewed_by = review
    findings = [Finding(f["file"], f["line"], f"{f['kind']} ({f['confidence']:.2f}): {f['reason']}", Reason.LABEL_REVIEW)
                for f in standing]
    return findings, {"reviewed_by": reviewed_by}


def registry_findings(scientist: str, label_table: pd.DataFrame, path: Path | None) -> tuple[list[Finding], dict]:
    """The class names of the scientist's boxes the class registry at ``path`` cannot map
    (:func:`~imgassets.core.labels.checks.unknown_class_findings`); none without a registry
    (``None``). A registry that cannot be used is itself the finding."""
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


LABEL_CHECK_SPECS = specs("label_table", LABEL_CHECKS, {"data_yaml_paths": ["image_index"]})
"""The label table's checks, reported by the label table asset itself (its ``check_specs``)."""


def label_check_results(scientist: str, folder: Path, review: tuple[list[dict], str], index: pd.DataFrame,
                        table: pd.DataFrame, findings: label_checks.LabelFindings,
                        registry: Path | None, data_yaml: list[Finding]) -> Iterator[dg.AssetCheckResult]:
    """The result of every check of :data:`LABEL_CHECKS`, from the ``findings`` the label table
    step computed once, the class registry file ``registry`` (``None``: none), the stored label
    ``review`` (as the step loaded it) and
    the folder's data.yaml files; pictures of the images of the findings that have them."""
    for name in LABEL_CHECKS:
        if name == "classes_in_registry":
            found, extra = registry_findings(scientist, table, registry)
            yield result("label_table", LABEL_CHECKS, name, found, extra=extra)
            continue
        if name == "prelabels_not_rubber_stamped":
            found = rubber_stamp_findings(scientist, table, review[0])
            yield result("label_table", LABEL_CHECKS, name, found, extra={"prelabels": dg.MetadataValue.json(
                provenance_summary(table))})
            continue
        if name == "label_review":
            found, extra = label_review_findings(review)
            yield result("label_table", LABEL_CHECKS, name, found,
                         finding_pictures(folder, found, table) if found else "", extra)
            continue
        found = data_yaml if name == "data_yaml_paths" else findings.by_check[name]
        pictures = finding_pictures(folder, found, table) if found and name in PICTURED else ""
        yield result("label_table", LABEL_CHECKS, name, found, pictures)
