"""The sources of every YOLO label file of a folder, and which files' rows a label table can keep.

The rows of a YOLO txt file depend on five things, its *sources*: the label file's content hash,
the image it is paired with (:func:`imgassets.core.drive.layout.pair_labels`) and that image's content hash,
and the nearest class map (:func:`imgassets.core.labels.class_map.folder_class_map`) and its content
hash. A label table records them on every row (``label_sha256``, ``image_path``, ``image_sha256``,
``class_map_file``, ``class_map_sha256``); a file whose sources are all unchanged keeps its rows.

Worked out for the whole folder in Arrow compute kernels, column by column: a run that changed
1% of a folder pays a few vectorized passes over it, and Python work only for the changed files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from imgassets.core.drive import layout
from imgassets.core.labels.class_map import class_maps_by_folder, folder_class_map

SOURCE_COLUMNS = ("label_sha256", "image_path", "image_sha256", "class_map_file", "class_map_sha256")
EMPTY_YOLO_FILES = "empty_yolo_files"
"""Key of ``DataFrame.attrs`` (kept through Parquet by pandas) under which a label table records
its YOLO files that gave no rows, as the JSON text of ``{label_file: label_sha256}``
(:func:`empty_files_attr`, :func:`empty_files`). A YOLO file with no box lines (a background
image's label, common in YOLO datasets) has no row to carry its sources; its rows, none, depend
on its text alone, so the same content hash is enough to skip reading it again. Text, not a
dict: pandas deep-copies ``attrs`` on every operation that derives a frame, and a copy of a str
is free, where a 10000-entry dict made the manifest of its table 20 times slower."""


@dataclass(frozen=True)
class YoloSources:
    """Aligned Arrow string arrays, one entry per YOLO label file of an image index (in index order):
    ``label_file`` and the :data:`SOURCE_COLUMNS` (null: no paired image, no class map, unreadable);
    and the paths of the label files in other formats."""

    label_file: pa.Array
    label_sha256: pa.Array
    image_path: pa.Array
    image_sha256: pa.Array
    class_map_file: pa.Array
    class_map_sha256: pa.Array
    other_label_files: list[str]
    """The index's other label files (XML, JSON, box CSV, DOTA text), parsed on every run."""

    def rows(self, mask: np.ndarray) -> list[tuple]:
        """``(label_file, *sources)`` of the files where ``mask`` (bool, aligned) is true, as Python values."""
        where = pa.array(mask, pa.bool_())
        columns = [pc.filter(getattr(self, c), where).to_pylist() for c in ("label_file", *SOURCE_COLUMNS)]
        return list(zip(*columns, strict=True))


def split_last(strings: pa.Array, separator: str) -> tuple[pa.Array, pa.Array]:
    """(``separator`` + what comes before the last ``separator``, what comes after) of each string,
    by a reverse split of the string with ``separator`` put in front (so every string has one)."""
    parts = pc.split_pattern(pc.binary_join_element_wise(separator, strings, ""), separator, max_splits=1,
                             reverse=True)
    return pc.list_element(parts, 0), pc.list_element(parts, 1)


def _paired_images(images: pa.Array, label_files: pa.Array) -> pa.Array:
    """For each of ``label_files``, the image it annotates by :func:`imgassets.core.drive.layout.pair_labels`
    (the one pairing rule), null for an orphan; aligned with ``label_files``."""
    labels = label_files.to_pylist()
    pairs = layout.pair_labels(images.to_pylist(), labels)
    return pa.array([pairs.get(label) for label in labels], pa.string())


def yolo_sources(index: pd.DataFrame) -> YoloSources:
    """The sources of each YOLO label file (a ``label`` row of ``index`` ending in ``.txt``, any case,
    not in a DOTA ``labelTxt`` folder)."""
    paths = pa.array(index["path"], pa.string())
    kinds = pa.array(index["kind"], pa.string())
    shas = pa.array(index["sha256"], pa.string())
    labels = pc.equal(kinds, layout.LABEL)
    yolo = pc.and_(pc.and_(labels, pc.ends_with(pc.utf8_lower(paths), ".txt")),
                   pc.invert(pc.match_substring_regex(paths, f"(^|/){layout.DOTA_FOLDER}/")))
    label_file = pc.filter(paths, yolo)
    images = _paired_images(pc.filter(paths, pc.equal(kinds, layout.IMAGE)), label_file)
    by_folder = class_maps_by_folder(pc.filter(paths, pc.equal(kinds, layout.CLASS_MAP)).to_pylist())
    folders = pc.dictionary_encode(split_last(label_file, "/")[0])  # "/dir", "" at the top
    nearest = [folder_class_map(folder[1:] or ".", by_folder) for folder in folders.dictionary.to_pylist()]
    map_file = pc.take(pa.array(nearest, pa.string()), folders.indices)

    def sha_of(which: pa.Array) -> pa.Array:
        return pc.take(shas, pc.index_in(which, value_set=paths))

    others = pc.filter(paths, pc.and_not(labels, yolo)).to_pylist()
    return YoloSources(label_file, pc.filter(shas, yolo), images, sha_of(images), map_file, sha_of(map_file), others)


def reusable_files(sources: YoloSources, previous: pd.DataFrame | None) -> np.ndarray:
    """For each file of ``sources``, whether ``previous`` (the last label table of the folder,
    sorted by ``label_file``) holds its rows with exactly these sources (and the file had a content
    hash: it was readable), or lists it among its :data:`EMPTY_YOLO_FILES` with the same content
    hash. None is reusable when ``previous`` is missing, predates the source columns, is not sorted
    by file, or holds a class-map error row (the kept rows would lose it). Compared on each file's
    first row, column by column."""
    count = len(sources.label_file)
    none = np.zeros(count, bool)
    if previous is None or not set(SOURCE_COLUMNS) <= set(previous.columns) \
            or not previous["label_file"].is_monotonic_increasing:
        return none
    empty = _same_empty_files(sources, empty_files(previous))
    if not len(previous):
        return empty
    files = previous["label_file"].to_numpy(object)
    yolo = (previous["label_format"] == layout.YOLO).to_numpy(bool, na_value=False)
    if (yolo & (previous["class_map_file"] == previous["label_file"]).to_numpy(bool, na_value=False)).any():
        return none
    first = np.flatnonzero(np.r_[True, files[1:] != files[:-1]])
    at = pd.Index(files[first]).get_indexer(sources.label_file.to_numpy(zero_copy_only=False))  # sorted: unique
    found = at >= 0
    rows = first[np.where(found, at, 0)]
    same = found & yolo[rows] & pc.is_valid(sources.label_sha256).to_numpy(zero_copy_only=False)
    for column in SOURCE_COLUMNS:
        before = previous[column].to_numpy(object, na_value=None)[rows]
        same &= before == getattr(sources, column).to_numpy(zero_copy_only=False)
    return same | (empty & ~found)


def kept_empty_files(sources: YoloSources, reusable: np.ndarray, previous: pd.DataFrame | None) -> dict[str, str]:
    """``{label_file: label_sha256}`` of the files that ``reusable`` (:func:`reusable_files`) keeps
    because ``previous`` lists them as empty with the same content hash: still empty, not read."""
    keep = pa.array(reusable & _same_empty_files(sources, empty_files(previous)), pa.bool_())
    return dict(zip(pc.filter(sources.label_file, keep).to_pylist(), pc.filter(sources.label_sha256, keep).to_pylist(),
                    strict=True))


def empty_files_attr(empty: dict[str, str]) -> dict[str, str]:
    """The ``attrs`` of a label table whose empty YOLO files are ``{label_file: label_sha256}``."""
    return {EMPTY_YOLO_FILES: json.dumps(dict(sorted(empty.items())), separators=(",", ":"))}


def empty_files(table: pd.DataFrame | None) -> dict[str, str]:
    """``{label_file: label_sha256}`` of the YOLO files that ``table`` (a label table) records as
    empty (:data:`EMPTY_YOLO_FILES`); empty when it records none or the record is not such JSON."""
    text = table.attrs.get(EMPTY_YOLO_FILES) if table is not None else None
    try:
        listed = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return listed if isinstance(listed, dict) else {}


def _same_empty_files(sources: YoloSources, empty: dict[str, str]) -> np.ndarray:
    """For each file of ``sources``, whether ``empty`` (a previous table's :func:`empty_files`)
    lists it with its current content hash."""
    if not empty:
        return np.zeros(len(sources.label_file), bool)
    listed = pa.array(list(empty), pa.string())
    at = pc.index_in(sources.label_file, value_set=listed)
    before = pc.take(pa.array(list(empty.values()), pa.string()), at)
    return pc.fill_null(pc.equal(before, sources.label_sha256), False).to_numpy(zero_copy_only=False)
