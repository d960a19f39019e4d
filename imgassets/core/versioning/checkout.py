"""Checkout: a dataset version placed in a local folder (Ultralytics layout) from the verified cache.

Each image goes to ``DEST/images/<split>/<sha256>.<ext>`` as a **hardlink** to the cached file (a
copy when the cache is on another filesystem, or for a JPEG that does not end with the EOI marker,
which Ultralytics would "fix" by rewriting the file in place); ``DEST/labels/<split>/<sha256>.txt``
(YOLO txt, kept in the cache under the hash of its text and hardlinked like the images),
``DEST/data.yaml`` and Ultralytics' label caches (:mod:`imgassets.core.versioning.ultralytics_cache`).
DEST afterwards holds exactly the version: an earlier pull's files are pruned, anything else refused.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from rich.progress import Progress

from imgassets.core import progress as stages
from imgassets.core.images.inspect import SUPPORTED_FORMATS
from imgassets.core.store.atomic import atomic_path
from imgassets.core.store.base import ObjectStore
from imgassets.core.versioning.dataset import DatasetVersion
from imgassets.core.versioning.dataset_store import data_yaml_text, yolo_label_text
from imgassets.core.versioning.pull_cache import VERIFIED_MTIME_NS, VerifiedCache
from imgassets.core.versioning.splits import SPLITS
from imgassets.core.versioning.ultralytics_cache import write_ultralytics_caches
from imgassets.errors import ImgassetsError

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
    repaired: tuple[str, ...] = ()
    """``--verify``: store objects whose bytes no longer matched their hash, replaced from the cache."""


PULL_MARKER = ".imgassets-pull.json"
"""File a pull writes in DEST naming the dataset it holds: what may be replaced by the next pull."""
PULL_ENTRIES = frozenset({"images", "labels", "data.yaml", PULL_MARKER})
"""What a pulled folder holds at its top level."""


class DestinationError(ImgassetsError, ValueError):
    """DEST holds files a pull did not put there: a pull never removes those. The message names them."""


def staged_image(dest: str | Path, record: dict) -> str:
    """Where a pull places the image of ``record`` (a dataset row) under ``dest``:
    ``images/<split>/<sha256>.<ext>`` (the one rule: the pull, evaluation and review use it)."""
    return f"{os.fspath(dest)}/images/{record['split']}/{record['sha256']}.{SUPPORTED_FORMATS[record['format']]}"


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
        if place_new(cached, staged_image(dest, record), fmt, sentinels[sha]):
            linked += 1
        else:
            copied += 1
        place_new(cache.label_file(text), f"{dest}/labels/{split}/{sha}.txt", "TXT", VERIFIED_MTIME_NS)
    data_yaml = dest / "data.yaml"
    data_yaml.write_text(data_yaml_text(dataset.class_names, str(dest)))
    write_ultralytics_caches(dest, dataset, label_texts)
    (dest / PULL_MARKER).write_text(json.dumps({"dataset_id": dataset.dataset_id}) + "\n")
    return PullResult(dataset.dataset_id, data_yaml, len(dataset.records), downloaded, downloaded_bytes, hits, linked, copied,
                      tuple(sorted(cache.repaired)))
