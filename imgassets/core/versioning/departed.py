"""A scientist folder that disappeared from the shared drive: the documented policy.

A scientist partition whose folder is gone (deleted, renamed, moved) keeps its last snapshot, so
its images would stay in every later dataset with no word about it. The policy
(``$IMGASSETS_DEPARTED_POLICY``):

* ``keep`` (default): the last snapshot stays in the datasets; the dataset's metadata and the run
  summary name the scientist and since when the folder is missing.
* ``retract``: once the folder has been missing for ``$IMGASSETS_DEPARTED_GRACE_DAYS`` days (default
  7), its last snapshot is retracted as a source (:mod:`imgassets.core.versioning.retraction`,
  reason "folder removed from the shared drive"); a folder that comes back with images makes a new
  snapshot, which is used again.

Since when a folder is missing is kept in the store (``refs/departed/<scientist>``), and forgotten
when the folder returns. When not one scientist's folder is there, the drive is taken to be
unmounted (a step pod without the share), not emptied: nothing is noted or retracted.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from imgassets.core.store.base import ObjectNotFoundError, ObjectStore
from imgassets.core.store.keys import departed_key
from imgassets.core.store.sealed import TamperedRecordError, get_record, put_record
from imgassets.core.versioning.retraction import Retracted, record_retraction
from imgassets.errors import ImgassetsError

POLICIES = ("keep", "retract")


class DepartedPolicyError(ImgassetsError, ValueError):
    """An unknown policy name."""


@dataclass(frozen=True)
class Departed:
    """A scientist whose folder is missing: since when (UTC ISO time), the snapshot still used (or
    retracted), and what the policy did: ``kept``, ``kept (grace until ...)`` or ``retracted``."""

    scientist: str
    missing_since: str
    snapshot_id: str
    action: str


def apply_policy(store: ObjectStore, root: Path, snapshots: dict[str, str], policy: str, grace_days: float,
                 retracted: Retracted, now: datetime.datetime | None = None) -> list[Departed]:
    """For every scientist of ``snapshots`` (scientist -> snapshot id about to be merged) whose
    folder ``root/<scientist>`` is gone: note since when, and under ``retract`` past the grace
    period record a retraction of that snapshot (once). Returns them, by name. Raises
    :class:`DepartedPolicyError` for a policy not in :data:`POLICIES`."""
    if policy not in POLICIES:
        raise DepartedPolicyError(f"IMGASSETS_DEPARTED_POLICY must be one of {', '.join(POLICIES)}, not {policy!r}")
    now = now or datetime.datetime.now(datetime.UTC)
    if not any((root / scientist).is_dir() for scientist in snapshots):
        return []  # not one folder: the drive is not mounted here (a pod without it), not everyone gone
    found = []
    for scientist, snapshot_id in sorted(snapshots.items()):
        key = departed_key(scientist)
        if (root / scientist).is_dir():
            store.delete(key)  # back (or never gone): forget
            continue
        try:
            noted = get_record(store, key)
        except ObjectNotFoundError:
            noted = {"missing_since": now.isoformat()}
            put_record(store, key, noted)
        try:
            since = datetime.datetime.fromisoformat(noted["missing_since"])
        except (KeyError, TypeError, ValueError):
            raise TamperedRecordError(f"{key}: not a departed-folder note (no ISO time in missing_since)") from None
        source = f"{scientist}/{snapshot_id}"
        deadline = since + datetime.timedelta(days=grace_days)
        if source in retracted.snapshots:
            action = "retracted"
        elif policy == "retract" and now >= deadline:
            record_retraction(store, [], f"folder {scientist} removed from the shared drive (missing since "
                              f"{since.date().isoformat()}, grace {grace_days:g} days)", [f"snapshot {source}"],
                              snapshots=[source], by="imgassets")
            action = "retracted"
        else:
            action = "kept" if policy == "keep" else f"kept (grace until {deadline.date().isoformat()})"
        found.append(Departed(scientist, since.isoformat(), snapshot_id, action))
    return found
