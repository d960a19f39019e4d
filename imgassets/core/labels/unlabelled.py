"""Which images without a box are *background* (labelled: no objects) and which are *unlabelled*
(nobody has looked at them yet): the one rule, the same for every label format.

An image with at least one usable box is labelled. An image without one is **background** when

* a label file names it: a row of the label table pairs with it, or a file lists it with no shape
  (an empty YOLO or DOTA file, a VOC file without ``<object>``, a COCO image without annotations, a
  CVAT ``<image>`` without shapes, a Label Studio task whose annotation draws nothing:
  :func:`imgassets.core.labels.table.background_entries`); or
* a YOLO label file sits where a YOLO label of the image is looked for
  (:func:`imgassets.core.drive.layout.label_dirs`: the ``labels/`` sibling of an Ultralytics layout,
  or the image's folder): Ultralytics trains an image without a label file inside a layout whose
  ``labels/`` folder labels its siblings as background (coco128's images without a label file stay
  background).

Every other image without a box is **unlabelled**: nobody has labelled it (a Label Studio task with
predictions and no annotation, a folder of fresh captures with no label file).
A marker file named :data:`MARKER` (any case, any content; hidden files are never read, so it has no
leading dot) declares every image without a box in its folder and the folders below *unlabelled*,
even where a label file sits: a folder of fresh captures copied beside labelled ones. The setting
``IMGASSETS_UNLABELLED_FOLDERS`` declares the same from outside the drive: comma-separated globs
over ``<scientist>/<folder>`` (``ana/new_capture``, ``*/incoming*``; :func:`declared_folders`).

Unlabelled images are indexed, checked and snapshotted like every other (the snapshot manifest's
``unlabelled`` column, :data:`imgassets.core.versioning.manifest.UNLABELLED_FIELD`), and never
trained on, never in val or the benchmark (:func:`imgassets.core.versioning.dataset.merge_snapshots`
leaves them out and counts them); they are the labeling queue's candidates
(:mod:`imgassets.core.labeling.queue`). An image that gains a label in a later run is labelled in
that run's snapshot and joins the dataset by the usual split rules.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

import numpy as np
import pandas as pd

from imgassets.core.drive import layout
from imgassets.core.images.index import valid_images
from imgassets.core.labels.table import background_entries, usable_boxes

MARKER = "UNLABELLED"
"""Name (case-insensitive, with or without an extension such as ``.md``) of the marker file that
declares a folder's images without boxes unlabelled."""

MOSTLY_UNLABELLED = 0.5
"""Share of a scientist's valid images above which the summary and the quality report say that
most of the folder is unlabelled."""


def _is_marker(path: str) -> bool:
    name = path.rpartition("/")[2].lower()
    return name == MARKER.lower() or name.startswith(MARKER.lower() + ".")


def _under(folder: str, marked: set[str], declared: Callable[[str], bool] | None = None) -> bool:
    """Whether ``folder`` (``""`` at the top) is a marked or ``declared`` folder or lies below one."""
    if not marked and declared is None:
        return False
    parts = folder.split("/") if folder else []
    return any("/".join(parts[:i]) in marked or (declared is not None and declared("/".join(parts[:i])))
               for i in range(len(parts) + 1))


def declared_folders(scientist: str, patterns: str | None) -> Callable[[str], bool] | None:
    """Whether a folder of ``scientist`` (relative, ``""`` at the top) is declared unlabelled by
    ``patterns`` (comma-separated globs over ``<scientist>/<folder>``, ``fnmatch`` rules; the top
    folder is ``<scientist>``); None when no pattern is given."""
    globs = [p.strip().strip("/") for p in (patterns or "").split(",") if p.strip().strip("/")]
    if not globs:
        return None

    def declared(folder: str) -> bool:
        path = f"{scientist}/{folder}" if folder else scientist
        return any(fnmatch.fnmatchcase(path, glob) for glob in globs)

    return declared


def unlabelled_mask(image_paths: np.ndarray | list[str], index: pd.DataFrame, labels: pd.DataFrame,
                    declared: Callable[[str], bool] | None = None) -> np.ndarray:
    """For each of ``image_paths`` (paths of valid images of ``index``, the scientist's image index),
    whether it is unlabelled by the module's rule, given ``labels`` (its label table) and the folders
    the setting ``declared`` unlabelled (:func:`declared_folders`): a boolean array aligned with
    ``image_paths``. Worked out per folder, not per image: one set lookup per image."""
    paths = list(image_paths)
    if not paths:
        return np.zeros(0, bool)
    kinds = index["kind"].to_numpy(object)
    all_paths = index["path"].to_numpy(object)
    label_folders = {p.rpartition("/")[0] for p in all_paths[kinds == layout.LABEL]
                     if p.lower().endswith(".txt") and not layout.is_dota_path(p)}  # YOLO label files
    marked = {p.rpartition("/")[0] for p in all_paths if _is_marker(p)}
    named = set(labels["image_path"].dropna().tolist()) | background_entries(labels)
    with_box = set(labels.loc[usable_boxes(labels), "image_path"].tolist())
    labelled_folder: dict[str, bool] = {}
    result = np.zeros(len(paths), bool)
    for i, path in enumerate(paths):
        if path in with_box:
            continue
        folder = path.rpartition("/")[0]
        if _under(folder, marked, declared):
            result[i] = True
            continue
        if path in named:
            continue
        known = labelled_folder.get(folder)
        if known is None:
            known = labelled_folder[folder] = any(prefix.rstrip("/") in label_folders
                                                  for prefix in layout.label_dirs(folder))
        result[i] = not known
    return result


def unlabelled_counts(index: pd.DataFrame, labels: pd.DataFrame,
                      declared: Callable[[str], bool] | None = None) -> tuple[int, int]:
    """(unlabelled images, valid images) of a scientist's ``index`` and label table ``labels``."""
    images = valid_images(index)
    mask = unlabelled_mask(images["path"].to_numpy(object), index, labels, declared)
    return int(mask.sum()), len(images)


def mostly_unlabelled_note(scientist: str, unlabelled: int, images: int) -> str | None:
    """The sentence a scientist reads when more than :data:`MOSTLY_UNLABELLED` of their ``images``
    are unlabelled (None otherwise)."""
    if not images or unlabelled <= MOSTLY_UNLABELLED * images:
        return None
    return (f"{scientist}: {unlabelled} of {images} images are unlabelled (no label file where their format "
            f"looks): they are kept in the snapshot but not trained on; `imgassets queue --scientist {scientist}` "
            "lists which to label first")
