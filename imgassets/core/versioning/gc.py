"""Garbage collection: delete the versions nobody retains, and the content only they needed.

**Retained roots** (never deleted):

* every model record and its files (``models/``), and so the dataset each model was trained on;
* the refs: the latest dataset (``refs/datasets/latest``) and the champion's dataset;
* the last ``keep_datasets`` datasets of the dataset log (``refs/log/datasets/``);
* per scientist, the last ``keep_snapshots`` snapshots of their log (the last one is the snapshot
  the next dataset reads); for a scientist with no log (a store older than the logs), the most
  recently written manifests;
* every snapshot a retained dataset merged;
* every content object a retained manifest lists, and every object a move-mode archive log names
  (the only copy of a file removed from the drive: archive logs are never collected);
* everything that is not a version or content (refs, retractions, class registries, review
  records, kept tables, Dagster's values).

**Collected**: unretained snapshot manifests (with their quality reports, capture facts and log entries), unretained
dataset versions (manifest, ``data.yaml``, near-duplicate pairs, log entries), and content
objects no retained version lists (retracted content included, once no retained version holds it)
-- but only when **older than the grace period**. The lineage index is rebuilt afterwards.

**Safe against a commit running at the same time**: the store is listed once, then the roots
are read (so a manifest committed during the listing is a root); new objects are younger than the
grace period; an object a commit reuses instead of uploading is freshened by it
(:meth:`~imgassets.core.store.base.ObjectStore.touch`), and each object's modification time is read
again just before it is deleted, so a freshened object is spared. Manifests go before the objects
they list: a reader finds a version whole or not at all. A commit that lasts longer than the grace
period is the one case left unprotected (as with git's ``gc.pruneExpire``): keep the grace period
well above the longest ingest (default 24 h).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from imgassets.core.store.base import ObjectInfo, ObjectNotFoundError, ObjectStore
from imgassets.core.store.keys import (
    ARCHIVE_PREFIX,
    CHAMPION_REF,
    CONTENT_PREFIX,
    DATASET_LOG_PREFIX,
    DATASETS_PREFIX,
    LATEST_DATASET_REF,
    LINEAGE_PREFIX,
    MODEL_RECORD,
    SNAPSHOTS_PREFIX,
    dataset_manifest_key,
    log_entry,
    log_scientist,
    model_dataset_of_key,
    sha256_of_key,
    snapshot_manifest_key,
    snapshot_of_key,
    version_of_key,
)
from imgassets.core.store.sealed import TamperedRecordError, get_record
from imgassets.core.versioning.manifest import manifest_hashes, read_footer
from imgassets.errors import ImgassetsError

DEFAULT_KEEP_DATASETS = 5
DEFAULT_KEEP_SNAPSHOTS = 5
DEFAULT_GRACE_HOURS = 24.0


class GarbageCollectionError(ImgassetsError, RuntimeError):
    """A retained root that cannot be read: collecting without it could delete what it needs."""


@dataclass
class GcPlan:
    """What a collection would delete (``delete``: objects, manifests first) and why the rest stays.
    ``spared_young``: unretained objects younger than the grace period; counts by kind in
    ``summary``."""

    listed: int
    retained_datasets: list[str]
    retained_snapshots: dict[str, list[str]]
    delete: list[ObjectInfo] = field(default_factory=list)
    spared_young: int = 0

    @property
    def bytes(self) -> int:
        return sum(o.size for o in self.delete)

    def summary(self) -> dict[str, dict[str, int]]:
        """``{kind: {objects, bytes}}`` of what would be deleted (kinds: content, snapshot, dataset, log)."""
        kinds: dict[str, dict[str, int]] = defaultdict(lambda: {"objects": 0, "bytes": 0})
        for info in self.delete:
            kind = _kind(info.key)
            kinds[kind]["objects"] += 1
            kinds[kind]["bytes"] += info.size
        return dict(kinds)


def _kind(key: str) -> str:
    if key.startswith(CONTENT_PREFIX):
        return "content"
    if key.startswith(SNAPSHOTS_PREFIX):
        return "snapshot"
    if key.startswith(DATASETS_PREFIX):
        return "dataset"
    return "log"


def _last(ids: list[str], n: int) -> list[str]:
    """The last ``n`` distinct ids of a history (oldest first), newest last."""
    kept: list[str] = []
    for version_id in reversed(ids):
        if version_id not in kept:
            kept.append(version_id)
        if len(kept) >= n:
            break
    return kept[::-1]


def _read_record(store: ObjectStore, key: str) -> dict | None:
    """The sealed record at ``key`` (None when there is none). Raises
    :class:`GarbageCollectionError` for one altered after it was written: a root gc cannot trust
    stops it before anything is deleted."""
    try:
        return get_record(store, key)
    except ObjectNotFoundError:
        return None
    except TamperedRecordError as exc:
        raise GarbageCollectionError(f"{exc}; nothing deleted") from None


def plan_gc(store: ObjectStore, keep_datasets: int = DEFAULT_KEEP_DATASETS, keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS,
            grace_hours: float = DEFAULT_GRACE_HOURS, now: float | None = None) -> GcPlan:
    """List the store once and decide what a collection deletes (rules in the module docstring):
    the retained roots (:func:`_roots`), what they reach (:func:`_reachable`), and the sweep of the
    rest older than the grace period (:func:`_sweep`). Reads the retained manifests (hash columns
    only), the refs, the model records' keys and the archive logs. Raises
    :class:`GarbageCollectionError` when a retained root cannot be read, ``ValueError`` for a keep
    count below 1 or a negative grace period."""
    if keep_datasets < 1 or keep_snapshots < 1 or grace_hours < 0:
        raise ValueError("garbage collection keeps at least 1 dataset and 1 snapshot per scientist, with a grace "
                         f"period of 0 hours or more (got {keep_datasets}, {keep_snapshots}, {grace_hours})")
    listing = list(store.list_objects(""))
    cutoff = (time.time() if now is None else now) - grace_hours * 3600
    datasets, snapshots = _roots(store, listing, keep_datasets, keep_snapshots)
    reachable, kept_datasets = _reachable(store, listing, datasets, snapshots)
    plan = GcPlan(len(listing), sorted(kept_datasets), {s: sorted(i) for s, i in sorted(snapshots.items())})
    doomed, plan.spared_young = _sweep(listing, reachable, datasets, snapshots, cutoff)
    # manifests and their companions first, content last: a version disappears before its objects
    plan.delete = sorted(doomed, key=lambda o: (sha256_of_key(o.key) is not None, o.key))
    return plan


def _roots(store: ObjectStore, listing: list[ObjectInfo], keep_datasets: int,
           keep_snapshots: int) -> tuple[set[str], dict[str, set[str]]]:
    """The retained dataset ids (the log's last ``keep_datasets``, the latest and champion refs',
    every model's) and snapshot ids by scientist (each log's last ``keep_snapshots``; without a
    log, the newest manifests), from the listing and the refs."""
    dataset_log: list[tuple[str, str]] = []  # (log key, id): keys sort by time
    snapshot_logs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for info in listing:
        entry = log_entry(info.key)
        if entry is None:
            continue
        if entry[0] == DATASET_LOG_PREFIX:
            dataset_log.append((info.key, entry[1]))
        elif (scientist := log_scientist(entry[0])) is not None:
            snapshot_logs[scientist].append((info.key, entry[1]))
    datasets = set(_last([i for _, i in sorted(dataset_log)], keep_datasets))
    for ref in (LATEST_DATASET_REF, CHAMPION_REF):
        record = _read_record(store, ref)
        if record and record.get("dataset_id"):
            datasets.add(record["dataset_id"])
    datasets.update(trained_on for info in listing
                    if info.key.endswith("/" + MODEL_RECORD) and (trained_on := model_dataset_of_key(info.key)))
    manifests_of: dict[str, list[ObjectInfo]] = defaultdict(list)
    for info in listing:
        if manifest := snapshot_of_key(info.key):  # a manifest, not a companion (.report.json, .capture.parquet)
            manifests_of[manifest[0]].append(info)
    snapshots: dict[str, set[str]] = defaultdict(set)
    for scientist in set(manifests_of) | set(snapshot_logs):
        if snapshot_logs.get(scientist):
            snapshots[scientist].update(_last([i for _, i in sorted(snapshot_logs[scientist])], keep_snapshots))
        else:  # no log (a store older than the logs): the newest manifests, every one written in that second
            newest = max(o.modified for o in manifests_of[scientist])
            snapshots[scientist].update(snapshot_of_key(o.key)[1]
                                        for o in manifests_of[scientist] if o.modified >= newest - 1)
    return datasets, snapshots


def _manifest_hashes_or_refuse(store: ObjectStore, key: str, what: str) -> tuple[dict, set[str]]:
    """The footer and content hashes of the retained manifest ``key``; an unreadable root stops the
    collection (:class:`GarbageCollectionError`) rather than guess."""
    data = store.get_bytes(key)
    try:
        return read_footer(data), set(manifest_hashes(data))
    except Exception as exc:
        raise GarbageCollectionError(f"{key}: a retained {what} manifest cannot be read ({exc}); "
                                     "nothing deleted") from None


def _reachable(store: ObjectStore, listing: list[ObjectInfo], datasets: set[str],
               snapshots: dict[str, set[str]]) -> tuple[set[str], list[str]]:
    """The content hashes the retained versions list and the archive logs name, and the retained
    datasets that are stored; adds each stored retained dataset's snapshots to ``snapshots``."""
    stored = {o.key for o in listing}
    reachable: set[str] = set()
    kept_datasets = []
    for dataset_id in sorted(datasets):
        key = dataset_manifest_key(dataset_id)
        if key not in stored:
            continue  # a model of a dataset collected by hand, or a ref to nothing: nothing to keep
        meta, hashes = _manifest_hashes_or_refuse(store, key, "dataset")
        reachable |= hashes
        kept_datasets.append(dataset_id)
        for scientist, snapshot_id in (meta.get("snapshots") or {}).items():
            snapshots[scientist].add(snapshot_id)
    for scientist, ids in snapshots.items():
        for snapshot_id in ids:
            if (key := snapshot_manifest_key(scientist, snapshot_id)) in stored:
                reachable |= _manifest_hashes_or_refuse(store, key, "snapshot")[1]
    for info in listing:
        if info.key.startswith(ARCHIVE_PREFIX):
            log = _read_record(store, info.key) or {}
            reachable.update(f["sha256"] for f in log.get("files", []) if f.get("sha256"))
    return reachable, kept_datasets


def _sweep(listing: list[ObjectInfo], reachable: set[str], datasets: set[str], snapshots: dict[str, set[str]],
           cutoff: float) -> tuple[list[ObjectInfo], int]:
    """The versions, log entries and content objects no root retains, written before ``cutoff``
    (seconds since the epoch), and how many were spared for being younger."""
    doomed, young = [], 0
    for info in listing:
        key = info.key
        if (sha := sha256_of_key(key)) is not None:
            drop = sha not in reachable
        elif (version := version_of_key(key)) is not None:
            scientist, version_id = version
            drop = version_id not in (snapshots.get(scientist, set()) if scientist else datasets)
        elif (entry := log_entry(key)) and entry[0] == DATASET_LOG_PREFIX:
            drop = entry[1] not in datasets
        elif entry and (scientist := log_scientist(entry[0])) is not None:
            drop = entry[1] not in snapshots.get(scientist, set())
        else:
            continue
        if drop and info.modified > cutoff:
            young += 1
        elif drop:
            doomed.append(info)
    return doomed, young


@dataclass(frozen=True)
class GcResult:
    """What a collection did: objects and bytes deleted, objects spared because a commit freshened
    them since the listing, and whether the lineage index was rebuilt."""

    deleted: int
    deleted_bytes: int
    spared_freshened: int
    lineage_rebuilt: bool


def collect(store: ObjectStore, plan: GcPlan, grace_hours: float = DEFAULT_GRACE_HOURS) -> GcResult:
    """Delete what ``plan`` lists, each object's modification time read again just before
    (``stat``) and the object spared when it became younger than the grace period since the
    listing (a commit reused or re-committed it); then rebuild the lineage index (its shards name
    the manifests they cover)."""
    from imgassets.core.versioning.lineage_index import update_lineage_index

    cutoff = time.time() - grace_hours * 3600
    deleted = deleted_bytes = spared = 0
    for info in plan.delete:
        try:
            modified = store.stat(info.key).modified
        except ObjectNotFoundError:
            continue  # gone already
        if modified > cutoff:
            spared += 1
            continue
        store.delete(info.key)
        deleted += 1
        deleted_bytes += info.size
    rebuilt = False
    if deleted:
        for key in list(store.list_keys(LINEAGE_PREFIX)):
            store.delete(key)
        update_lineage_index(store)
        rebuilt = True
    return GcResult(deleted, deleted_bytes, spared, rebuilt)
