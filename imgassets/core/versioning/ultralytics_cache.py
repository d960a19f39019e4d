"""Ultralytics' label cache (``labels/<split>.cache``), written from the manifest so that training
does not rescan what the pipeline verified. The format is Ultralytics' own: a pickled dict saved
with ``np.save`` (``ultralytics/data/dataset.py``, ``load_dataset_cache_file``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from imgassets.core.images.inspect import SUPPORTED_FORMATS
from imgassets.core.store.atomic import atomic_path
from imgassets.core.versioning.dataset import DatasetVersion
from imgassets.core.versioning.dataset_store import yolo_label_text
from imgassets.core.versioning.splits import SPLITS

ULTRALYTICS_CACHE_VERSION = "1.0.12"
"""``DATASET_CACHE_VERSION`` of the Ultralytics release pinned in ``pyproject.toml``
(``ultralytics/data/dataset.py``); a test keeps them equal. A cache of another version is rescanned
by Ultralytics, never misread."""


def ultralytics_hash(paths: list[str]) -> str:
    """Ultralytics' ``get_hash`` (``ultralytics/data/utils.py``): SHA-256 over each path, a NUL, its
    ``size:mtime_ns`` (a NUL alone for a path that does not exist) and a NUL."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(os.fsencode(path))
        digest.update(b"\0")
        try:
            info = os.stat(path)
        except OSError:
            digest.update(b"\0")
            continue
        digest.update(f"{info.st_size}:{info.st_mtime_ns}".encode())
        digest.update(b"\0")
    return digest.hexdigest()


def write_ultralytics_caches(dest: Path, dataset: DatasetVersion, label_texts: list[str] | None = None) -> list[Path]:
    """Write ``DEST/labels/<split>.cache``, the label cache Ultralytics' ``YOLODataset`` reads
    before training (``cache_labels`` / ``_load_or_scan_cache`` in ``ultralytics/data/dataset.py``),
    from the manifest: every image's displayed size and validated boxes are known, so training does
    not scan what the pipeline just verified. The cache holds what Ultralytics' own scan would
    (``verify_image_label``): the boxes as read back from the label text written beside the images
    (:func:`label_rows`), duplicates removed as it removes them; its hash covers the files placed,
    so any change to them (or a training with other scan settings: single class, keypoints) makes
    Ultralytics rescan. A split whose labels Ultralytics would refuse gets no cache (its scan
    reports them). ``label_texts``: each record's YOLO text (:func:`yolo_label_text`), aligned with
    ``dataset.records``, when the caller has them. Returns the caches written."""
    texts = label_texts if label_texts is not None else [yolo_label_text(r["boxes"]) for r in dataset.records]
    scan_args = str((False, len(dataset.class_names), None, False))  # (keypoints, nc, kpt_shape, single_cls)
    written = []
    for split in SPLITS:
        records = sorted(((f"{dest}/images/{split}/{r['sha256']}.{SUPPORTED_FORMATS[r['format']]}", text, r)
                          for r, text in zip(dataset.records, texts, strict=True) if r["split"] == split),
                         key=lambda item: item[0])  # by image path, as Ultralytics lists them
        if not records:
            continue
        boxes_per_image = label_rows([text for _, text, _ in records], len(dataset.class_names))
        if boxes_per_image is None:
            continue  # Ultralytics would refuse a label: let its scan say so
        labels = [{"im_file": im_file, "shape": (int(record["height"]), int(record["width"])),
                   "cls": boxes[:, 0:1], "bboxes": boxes[:, 1:], "segments": [], "keypoints": None,
                   "normalized": True, "bbox_format": "xywh"}
                  for (im_file, _, record), boxes in zip(records, boxes_per_image, strict=True)]
        empty = sum(1 for boxes in boxes_per_image if not len(boxes))
        im_files = [im_file for im_file, _, _ in records]
        label_files = [f"{dest}/labels/{split}/{record['sha256']}.txt" for _, _, record in records]
        cache = {"labels": labels, "hash": ultralytics_hash(label_files + im_files + [scan_args]),
                 "results": (len(records), 0, empty, 0, len(records)), "msgs": [],
                 "version": ULTRALYTICS_CACHE_VERSION}
        path = dest / "labels" / f"{split}.cache"
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, cache, allow_pickle=True)
        written.append(path)
    return written


def label_rows(texts: list[str], class_count: int) -> list[np.ndarray] | None:
    """Each YOLO label text's rows as Ultralytics' scan reads them (``verify_image_label`` in
    ``ultralytics/data/utils.py``): float32 ``(n, 5)`` arrays of class, x, y, w, h, parsed from
    the text, duplicate rows removed with ``np.unique(axis=0)`` (which also sorts them) where an
    image has any. ``None`` when Ultralytics would refuse, or this function cannot vouch for, any
    of them: a row without exactly 5 fields, a value not finite, negative or above 1.01, or a
    class outside ``0..class_count-1``. All texts are parsed at once, and only the images with a
    duplicate row (found by sorting every row once) go through ``np.unique``."""
    lines = [[line.split() for line in text.strip().splitlines() if line.strip()] for text in texts]
    if any(len(row) != 5 for rows in lines for row in rows):
        return None
    counts = np.fromiter((len(rows) for rows in lines), dtype=np.int64, count=len(lines))
    fields = [field for rows in lines for row in rows for field in row]
    rows = np.array(fields, dtype=np.float32).reshape(-1, 5)
    if len(rows) and (not np.isfinite(rows).all() or rows[:, 1:].max() > 1.01 or rows.min() < 0
                      or rows[:, 0].max() >= class_count):
        return None
    image = np.repeat(np.arange(len(texts)), counts)
    order = np.lexsort((*rows.T[::-1], image))  # by image, then by the row's values
    ordered, owner = rows[order], image[order]
    repeated = (ordered[1:] == ordered[:-1]).all(axis=1) & (owner[1:] == owner[:-1])
    has_duplicates = np.zeros(len(texts), dtype=bool)
    has_duplicates[owner[1:][repeated]] = True
    ends = np.cumsum(counts)
    result = []
    for number, (start, end) in enumerate(zip(ends - counts, ends, strict=True)):
        boxes = rows[start:end].copy()  # its own array: pickled alone, not as a view of every row
        if has_duplicates[number]:
            _, first = np.unique(boxes, axis=0, return_index=True)
            boxes = boxes[first]
        result.append(boxes)
    return result
