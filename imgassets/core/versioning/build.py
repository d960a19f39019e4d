"""Building a dataset version (the use case behind ``training_dataset``; usable without Dagster).

From each scientist's latest snapshot: the departed-folder policy is applied (a folder gone from
the drive past its grace period is retracted under ``retract``), retracted snapshots and content
are left out, the rest merged and split (:mod:`imgassets.core.versioning.dataset`) with the
previous version's splits and class ids carried over, the version stored under
``datasets/<dataset_id>/``, ``refs/datasets/latest`` moved, the version logged and the lineage
index updated. The result also carries the semantic diff against the previous version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imgassets.core.labels.class_registry import ClassRegistry, ClassRegistryError, load_registry
from imgassets.core.store.base import ObjectStore
from imgassets.core.store.keys import DATASET_LOG_PREFIX, class_registry_key
from imgassets.core.versioning.dataset import DatasetVersion, merge_snapshots
from imgassets.core.versioning.dataset_store import load_dataset, store_dataset
from imgassets.core.versioning.departed import Departed, DepartedPolicyError, apply_policy
from imgassets.core.versioning.diff import VersionDiff, diff_versions
from imgassets.core.versioning.lineage_index import update_lineage_index
from imgassets.core.versioning.manifest import ManifestError
from imgassets.core.versioning.refs import log_version, write_latest_ref
from imgassets.core.versioning.retraction import load_retractions
from imgassets.core.versioning.sequences import SequenceRules, load_captures
from imgassets.core.versioning.snapshot import load_snapshot_table
from imgassets.core.versioning.splits import DEFAULT_BENCHMARK_FRACTION, DEFAULT_VAL_FRACTION, EmptyDatasetError
from imgassets.errors import ImgassetsError


class DatasetBuildError(ImgassetsError):
    """A dataset version cannot be built; the message says why and what to do."""


@dataclass(frozen=True)
class DatasetPolicy:
    """The policies a version is built under: ``departed`` (keep, retract or block) with its
    ``grace_days``, the ``sequence_rules``, the ``class_registry`` file (``None``: names as
    written) and the ``unlabelled_folders`` the setting declares."""

    departed: str = "keep"
    grace_days: float = 7.0
    sequence_rules: SequenceRules = SequenceRules()
    class_registry: Path | None = None
    unlabelled_folders: str | None = None
    """Globs over ``<scientist>/<folder>`` declaring folders unlabelled (:mod:`imgassets.core.labels.unlabelled`)."""


@dataclass(frozen=True)
class DatasetBuild:
    """A built version: the ``dataset``, the ``previous`` version it carried splits and ids from
    (``None``: the first, or one that failed its id, noted in ``notes``), the ``departed``
    scientist folders, the semantic diff ``changes`` (``None`` for a first version) and ``notes``
    (sentences for the run's log)."""

    dataset: DatasetVersion
    previous: DatasetVersion | None
    departed: list[Departed]
    changes: VersionDiff | None
    notes: list[str]


def stored_registry(store: ObjectStore, path: Path | None) -> ClassRegistry | None:
    """The class registry at ``path``, kept in the store by its hash; ``None`` without one.
    Raises :class:`DatasetBuildError` naming the file when it is invalid."""
    if path is None:
        return None
    try:
        registry = load_registry(path)
    except ClassRegistryError as exc:
        raise DatasetBuildError(f"{exc} (IMGASSETS_CLASS_REGISTRY)") from None
    if not store.exists(class_registry_key(registry.digest)):
        store.put_bytes(class_registry_key(registry.digest), registry.text)
    return registry


def build_dataset_version(store: ObjectStore, shared_root: Path, latest: dict[str, dict], previous_id: str | None,
                          policy: DatasetPolicy = DatasetPolicy(), val_fraction: float = DEFAULT_VAL_FRACTION,
                          benchmark_fraction: float = DEFAULT_BENCHMARK_FRACTION, resplit: bool = False) -> DatasetBuild:
    """Build and store the dataset version of ``latest`` (scientist -> ``{snapshot_id,
    manifest_key}`` of their latest snapshot) after ``previous_id`` (the version built last, or
    ``None``) by the rules of the module docstring. ``resplit``: ignore the previous splits (class
    ids still carry over). Raises :class:`DatasetBuildError` when there is nothing to build from,
    the departed policy is unknown, or the merge is refused (no train image, a registry fault)."""
    if not latest:
        raise DatasetBuildError("no scientist has an image snapshot yet: materialize image_snapshot for at least one "
                                "scientist (its blocking checks must pass) before building a training dataset")
    retracted = load_retractions(store)
    try:
        departed = apply_policy(store, shared_root, {s: r["snapshot_id"] for s, r in latest.items()},
                                policy.departed, policy.grace_days, retracted)
    except DepartedPolicyError as exc:
        raise DatasetBuildError(str(exc)) from None
    if any(d.action == "retracted" and f"{d.scientist}/{d.snapshot_id}" not in retracted.snapshots for d in departed):
        retracted = load_retractions(store)  # the policy recorded a retraction just now
    notes = [f"scientist folder {gone.scientist} is missing from the shared drive since {gone.missing_since[:10]}: "
             f"its snapshot {gone.snapshot_id} {gone.action}" for gone in departed]
    sources = {s: r for s, r in latest.items() if f"{s}/{r['snapshot_id']}" not in retracted.snapshots}
    if not sources:
        raise DatasetBuildError("every scientist's latest snapshot is retracted: nothing to build a dataset from")
    previous = None
    if previous_id:
        try:
            previous = load_dataset(store, previous_id)
        except ManifestError as exc:
            notes.append(f"previous dataset {previous_id} not used for stable splits and class ids: {exc}")
    try:
        dataset = merge_snapshots(
            {sci: (ref["snapshot_id"], load_snapshot_table(store, ref["manifest_key"])) for sci, ref in sources.items()},
            val_fraction, previous.splits_by_hash() if previous and not resplit else None,
            benchmark_fraction=benchmark_fraction,
            previous_class_names=previous.class_names if previous else None,
            registry=stored_registry(store, policy.class_registry),
            retracted=retracted.hashes, previous_id=previous.dataset_id if previous else "",
            captures=load_captures(store, {s: r["snapshot_id"] for s, r in sources.items()}),
            sequence_rules=policy.sequence_rules,
        )
    except (EmptyDatasetError, ClassRegistryError, ValueError) as exc:
        raise DatasetBuildError(str(exc)) from None
    notes += [f"a group of {group['images']} linked images (a burst, a recording session or near-duplicates; named "
              f"{group['group'][:12]}) is larger than the val share allows: trained on, kept out of val and "
              "benchmark so that the splits keep their shares" for group in dataset.groups_kept_in_train]
    store_dataset(store, dataset)
    write_latest_ref(store, dataset.dataset_id)
    log_version(store, DATASET_LOG_PREFIX, dataset.dataset_id)
    update_lineage_index(store)  # every snapshot and this dataset: `imgassets lineage` reads one shard
    changes = diff_versions(previous.table, dataset.table, "dataset", previous.dataset_id, dataset.dataset_id,
                            previous.class_names, dataset.class_names) if previous else None
    return DatasetBuild(dataset, previous, departed, changes, notes)
