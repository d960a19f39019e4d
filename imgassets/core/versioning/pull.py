"""Pulling a dataset version to local disk, through a content-addressed cache.

What a training container runs (``imgassets pull DATASET_ID|latest DEST``):

1. resolve ``latest`` through the ref ``refs/datasets/latest`` (written when a training dataset is
   materialized), else take the id as given;
2. read ``datasets/<id>/manifest.parquet``;
3. for each image, make sure the cache holds it: ``<cache>/sha256/<2>/<64>``. Missing objects are
   downloaded in parallel (read once: verified against its SHA-256 in memory, then written to a
   temporary name and renamed; a corrupt download is never kept);
4. place each image at ``DEST/images/<split>/<sha256>.<ext>`` as a **hardlink** to the cached file
   (a copy when the cache is on another filesystem, or for a JPEG that does not end with the EOI
   marker, which Ultralytics would "fix" by rewriting the file in place); write
   ``DEST/labels/<split>/<sha256>.txt`` (YOLO txt, kept in the cache under the hash of its text
   and hardlinked like the images) and ``DEST/data.yaml``.

Cache trust follows the rules of :class:`VerifiedCache`: a warm pull is stats and hardlinks only
(see ``benchmarks/versus_tools.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from rich.progress import Progress

from imgassets.core import progress as stages
from imgassets.core.images.inspect import SUPPORTED_FORMATS
from imgassets.core.store.atomic import atomic_path
from imgassets.core.store.base import ObjectNotFoundError, ObjectStore
from imgassets.core.store.hashing import sha256_bytes, sha256_file
from imgassets.core.store.keys import LATEST_DATASET_REF, content_key
from imgassets.core.versioning.dataset import (
    DATASET_ID_PATTERN,
    SPLITS,
    DatasetVersion,
    ManifestError,
    data_yaml_text,
    load_dataset,
    yolo_label_text,
)
from imgassets.errors import ImgassetsError

VERIFIED_MTIME_NS = 1_000_000_000  # 1970-01-01T00:00:01Z: "verified by imgassets"
VERIFIED_NO_EOI_MTIME_NS = 2_000_000_000  # verified, and a JPEG that does not end with FF D9
VERIFIED = (VERIFIED_MTIME_NS, VERIFIED_NO_EOI_MTIME_NS)
DEFAULT_PULL_WORKERS = 8


@dataclass(frozen=True)
class PullResult:
    """What a pull did: images placed, objects downloaded (and bytes), cache hits, links vs copies."""

    dataset_id: str
    data_yaml: Path
    images: int
    downloaded: int
    downloaded_bytes: int
    cache_hits: int
    hardlinked: int
    copied: int


def write_latest_ref(store: ObjectStore, dataset_id: str) -> None:
    """Point ``refs/datasets/latest`` at ``dataset_id``."""
    store.put_bytes(LATEST_DATASET_REF, json.dumps({"dataset_id": dataset_id}).encode())


def resolve_dataset_id(store: ObjectStore, ref: str) -> str:
    """``latest`` -> the id in ``refs/datasets/latest``; a dataset id is returned as it is.
    Raises :class:`~imgassets.core.versioning.dataset.ManifestError` for anything else (``../../etc``), or
    a ref that does not hold a dataset id."""
    if ref != "latest":
        if not DATASET_ID_PATTERN.match(ref):
            raise ManifestError(f"{ref!r} is not a dataset id (16 hex digits) or 'latest'")
        return ref
    try:
        dataset_id = json.loads(store.get_bytes(LATEST_DATASET_REF)).get("dataset_id")
    except ObjectNotFoundError:
        raise ObjectNotFoundError(f"no dataset has been built yet ({LATEST_DATASET_REF} not found in {store.describe()})") from None
    except (ValueError, AttributeError):
        dataset_id = None
    if not isinstance(dataset_id, str) or not DATASET_ID_PATTERN.match(dataset_id):
        raise ManifestError(f"{LATEST_DATASET_REF} in {store.describe()} does not hold a dataset id")
    return dataset_id


PULL_MARKER = ".imgassets-pull.json"
"""File a pull writes in DEST naming the dataset it holds: what may be replaced by the next pull."""
PULL_ENTRIES = frozenset({"images", "labels", "data.yaml", PULL_MARKER})
"""What a pulled folder holds at its top level."""


class DestinationError(ImgassetsError, ValueError):
    """DEST holds files a pull did not put there: a pull never removes those. The message names them."""


def prepare_destination(dest: Path) -> None:
    """Make ``dest`` ready for a pull: created when missing; refused (:class:`DestinationError`)
    when it holds anything but an earlier pull (:data:`PULL_ENTRIES` at its top level, or a
    non-folder); otherwise the earlier pull's files are left for :func:`prune_destination`."""
    if dest.exists() and not dest.is_dir():
        raise DestinationError(f"{dest} exists and is not a folder")
    dest.mkdir(parents=True, exist_ok=True)
    foreign = sorted(entry.name for entry in os.scandir(dest) if entry.name not in PULL_ENTRIES)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise DestinationError(f"{dest} holds files that are not a pulled dataset ({shown}): pull into an "
                               "empty folder or an earlier pull's folder")


def prune_destination(dest: Path, keep: set[str]) -> int:
    """Remove every file under ``dest/images`` and ``dest/labels`` whose path relative to ``dest``
    is not in ``keep`` (another version's images and labels, Ultralytics' ``*.cache`` files of
    them), and folders left empty; return the files removed. After it, DEST holds exactly the
    pulled version."""
    removed = 0
    for top in ("images", "labels"):
        for folder, dirs, files in os.walk(dest / top, topdown=False):
            rel_folder = Path(folder).relative_to(dest).as_posix()
            for name in files:
                if f"{rel_folder}/{name}" not in keep:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
            for name in dirs:
                path = os.path.join(folder, name)
                if os.path.islink(path):
                    os.unlink(path)
                elif not os.listdir(path) and f"{rel_folder}/{name}" not in keep:
                    os.rmdir(path)
    return removed


class VerifiedCache:
    """The pull's content-addressed cache in ``root``: images at ``sha256/<2>/<64>``, YOLO label
    texts at ``labels/<2>/<64>.txt`` (named by the SHA-256 of the text).

    The rules, all of them here:

    * A file is written only after its bytes were checked against its SHA-256, under a temporary
      name renamed into place (:mod:`imgassets.core.store.atomic`): the cache never holds a partial
      or wrong file under its name.
    * A checked file is made read-only and its mtime set to a sentinel: :data:`VERIFIED_MTIME_NS`,
      or :data:`VERIFIED_NO_EOI_MTIME_NS` for a JPEG that does not end with its EOI marker (which
      Ultralytics would rewrite in place, so it is copied into a pull, never hardlinked), so placing
      it needs no read. Anything that writes to the file moves its mtime off the sentinel.
    * A file whose mtime is a sentinel is trusted without a read; any other is hashed again and, on
      a mismatch, fetched again. ``verify=True`` hashes every file regardless.

    Paths are plain strings: the warm pull calls these once per file.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = os.fspath(Path(root).resolve())

    def image_path(self, sha256: str) -> str:
        """Where the cache keeps the object ``sha256``."""
        return f"{self.root}/sha256/{sha256[:2]}/{sha256}"

    @staticmethod
    def sentinel(path: str) -> int | None:
        """The sentinel mtime of ``path`` (one of :data:`VERIFIED`), or None when the file is
        missing or was written since it was verified."""
        try:
            mtime = os.stat(path).st_mtime_ns
        except FileNotFoundError:
            return None
        return mtime if mtime in VERIFIED else None

    @staticmethod
    def needs_private_copy(fmt: str, sentinel: int | None) -> bool:
        """A JPEG cached without its EOI marker, known from the cached file's sentinel (no read)."""
        return fmt in ("JPEG", "MPO") and sentinel != VERIFIED_MTIME_NS

    def ensure(self, store: ObjectStore, sha256: str, verify: bool = False) -> int:
        """Make the cache hold a verified copy of object ``sha256``; return bytes downloaded (0 = hit)."""
        path = self.image_path(sha256)
        if not verify and self.sentinel(path) is not None:
            return 0
        if os.path.isfile(path) and sha256_file(path) == sha256:
            _mark_verified(path)
            return 0
        data = store.get_bytes(content_key(sha256))  # verified against the hash (IntegrityError if not)
        self._write(path, data)
        return len(data)

    def label_file(self, text: str) -> str:
        """The YOLO label ``text`` as a verified read-only file of the cache (written once)."""
        data = text.encode()
        digest = sha256_bytes(data)
        path = f"{self.root}/labels/{digest[:2]}/{digest}.txt"
        if self.sentinel(path) != VERIFIED_MTIME_NS:  # new, or written to since it was cached
            self._write(path, data)
        return path

    @staticmethod
    def _write(path: str, data: bytes) -> None:
        with atomic_path(path) as tmp:  # a full disk leaves no partial file behind, under any name
            Path(tmp).write_bytes(data)
            _mark_verified(tmp, data[:2] + data[-2:])


def _mark_verified(path: str, head_tail: bytes | None = None) -> None:
    """Make a checked cache file read-only with its sentinel mtime (:class:`VerifiedCache`).
    ``head_tail``: the file's first two and last two bytes when the caller has them."""
    if head_tail is None:
        with open(path, "rb") as handle:
            head = handle.read(2)
            handle.seek(-2, os.SEEK_END)
            head_tail = head + handle.read()
    no_eoi = head_tail[:2] == b"\xff\xd8" and head_tail[2:] != b"\xff\xd9"
    os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    mark = VERIFIED_NO_EOI_MTIME_NS if no_eoi else VERIFIED_MTIME_NS
    os.utime(path, ns=(mark, mark))


def place_new(cached: str, target: str, fmt: str, sentinel: int | None) -> bool:
    """:func:`place` for the common case of a fresh destination: one ``link`` system call when
    ``target`` does not exist yet and ``sentinel`` (the cached file's, :meth:`VerifiedCache.sentinel`) does
    not call for a private copy; otherwise :func:`place`."""
    if not VerifiedCache.needs_private_copy(fmt, sentinel):
        try:
            os.link(cached, target)
            return True
        except OSError:  # exists already (a pull into a used folder), or another filesystem
            pass
    return place(cached, target, fmt)


def place(cached: str | Path, target: str | Path, fmt: str) -> bool:
    """Put ``cached`` at ``target``: a hardlink when possible (returns True), else a copy."""
    try:
        if os.path.samefile(cached, target):
            return True
    except FileNotFoundError:
        pass
    linked = False
    with atomic_path(target) as tmp:
        if not VerifiedCache.needs_private_copy(fmt, VerifiedCache.sentinel(os.fspath(cached))):
            try:
                os.replace(_linked_beside(cached, tmp), tmp)
                linked = True
            except OSError:
                pass
        if not linked:
            shutil.copyfile(cached, tmp)
            os.chmod(tmp, stat.S_IWUSR | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return linked


def _linked_beside(cached: str | Path, tmp: str) -> str:
    """A hardlink to ``cached`` under a name beside ``tmp`` (``tmp`` + ``.link``); raises ``OSError``
    when the link cannot be made (another filesystem)."""
    link = tmp + ".link"
    os.link(cached, link)
    return link


def materialize_dataset(store: ObjectStore, dataset: DatasetVersion, dest: str | Path, cache_dir: str | Path,
                        workers: int = DEFAULT_PULL_WORKERS, verify: bool = False, show_progress: bool = False) -> PullResult:
    """Steps 3-4 of the module docstring for an already loaded ``dataset``: afterwards ``dest``
    holds exactly this version (:func:`prepare_destination`, :func:`prune_destination`). Raises
    :class:`DestinationError` when ``dest`` holds files no pull put there."""
    dest, cache = Path(dest).resolve(), VerifiedCache(cache_dir)
    prepare_destination(dest)
    downloaded = downloaded_bytes = hits = linked = copied = 0
    unique = {r["sha256"] for r in dataset.records}
    # Cache hits by a stat each, here; the rest (everything, when re-hashing) go to the thread pool.
    sentinels = {sha: None if verify else cache.sentinel(cache.image_path(sha)) for sha in unique}
    missing = sorted(sha for sha, sentinel in sentinels.items() if sentinel is None)
    hits = len(unique) - len(missing)
    with Progress(disable=not show_progress, transient=True) as progress, \
            ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="pull") as pool:
        task = progress.add_task(f"pulling {dataset.dataset_id}", total=len(missing))
        shown = stages.Progress(f"pulling {dataset.dataset_id}", len(missing))
        futures = {pool.submit(cache.ensure, store, sha, verify): sha for sha in missing}
        for future in as_completed(futures):
            size = future.result()
            sentinels[futures[future]] = cache.sentinel(cache.image_path(futures[future]))
            downloaded += size > 0
            downloaded_bytes += size
            hits += size == 0
            progress.advance(task)
            shown.advance()
    keep = {f"{top}/{split}" for top in ("images", "labels") for split in SPLITS}  # caches rewritten below
    keep.update(f"images/{r['split']}/{r['sha256']}.{SUPPORTED_FORMATS[r['format']]}" for r in dataset.records)
    keep.update(f"labels/{r['split']}/{r['sha256']}.txt" for r in dataset.records)
    prune_destination(dest, keep)
    for split in SPLITS:
        (dest / "images" / split).mkdir(parents=True, exist_ok=True)
        (dest / "labels" / split).mkdir(parents=True, exist_ok=True)
    label_texts = [yolo_label_text(record["boxes"]) for record in dataset.records]
    for record, text in zip(dataset.records, label_texts, strict=True):  # one link per file: this loop is the warm pull
        sha, fmt, split = record["sha256"], record["format"], record["split"]
        cached = cache.image_path(sha)
        if place_new(cached, f"{dest}/images/{split}/{sha}.{SUPPORTED_FORMATS[fmt]}", fmt, sentinels[sha]):
            linked += 1
        else:
            copied += 1
        place_new(cache.label_file(text), f"{dest}/labels/{split}/{sha}.txt", "TXT", VERIFIED_MTIME_NS)
    data_yaml = dest / "data.yaml"
    data_yaml.write_text(data_yaml_text(dataset.class_names, str(dest)))
    write_ultralytics_caches(dest, dataset, label_texts)
    (dest / PULL_MARKER).write_text(json.dumps({"dataset_id": dataset.dataset_id}) + "\n")
    return PullResult(dataset.dataset_id, data_yaml, len(dataset.records), downloaded, downloaded_bytes, hits, linked, copied)


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


def pull_dataset(store: ObjectStore, ref: str, dest: str | Path, cache_dir: str | Path,
                 workers: int = DEFAULT_PULL_WORKERS, verify: bool = False, show_progress: bool = False) -> PullResult:
    """Pull dataset ``ref`` (an id or ``latest``) into ``dest`` (steps 1-4 of the module docstring).

    Raises ``ObjectNotFoundError`` naming what is missing, ``IntegrityError`` for corrupt objects.
    """
    dataset = load_dataset(store, resolve_dataset_id(store, ref))
    return materialize_dataset(store, dataset, dest, cache_dir, workers, verify, show_progress)


def fetch_validation_image(store: ObjectStore, dataset_id: str, folder: str | Path) -> Path | None:
    """The dataset's first validation image (by content hash), fetched from the store (verified
    against its hash) into ``folder`` under its staged name: what a step that only needs one image
    (the weights check) fetches instead of a pull. ``None`` when val is empty."""
    table = load_dataset(store, dataset_id).table
    val = table.filter(pc.equal(table.column("split"), "val")).sort_by("sha256")
    if not len(val):
        return None
    sha, fmt = val.column("sha256")[0].as_py(), val.column("format")[0].as_py()
    image = Path(folder) / f"{sha}.{SUPPORTED_FORMATS[fmt]}"
    image.write_bytes(store.get_bytes(content_key(sha)))
    return image
