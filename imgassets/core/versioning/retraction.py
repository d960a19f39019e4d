"""Retraction: content taken back out of every later dataset version, with the reason.

A retraction record (``retractions/<retraction_id>.json``) names content hashes (images retracted
by path, by hash or as a whole snapshot) and, optionally, snapshots left out as a source
(``<scientist>/<snapshot_id>``: the policy for a scientist folder that disappeared,
:mod:`imgassets.core.versioning.departed`; the scientist's next snapshot, if the folder returns, is
used again).
Records are immutable and only ever added; a dataset built after a record exists leaves its content
out even when a scientist's folder still holds the image, or a move-mode snapshot carried it
forward. Earlier versions stay as they were (they are history); :func:`models_trained_on` names the
models that saw retracted images so the team knows which to retrain, and garbage collection
(:mod:`imgassets.core.versioning.gc`) deletes the content once no retained version needs it.
"""

from __future__ import annotations

import datetime
import getpass
import hashlib
import json
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from imgassets.core.store.base import ObjectStore
from imgassets.core.store.keys import RETRACTIONS_PREFIX, dataset_manifest_key, retraction_key
from imgassets.core.store.sealed import TamperedRecordError, get_record, put_record
from imgassets.core.versioning.manifest import manifest_columns
from imgassets.errors import ImgassetsError

SHAPING = pa.array(["train", "val"], pa.string())


class RetractionError(ImgassetsError, ValueError):
    """A retraction that cannot be recorded (no reason, nothing to retract); the message says why."""


@dataclass(frozen=True)
class Retraction:
    """One retraction record: its id, when and by whom, why, what was asked (``targets``: paths,
    hashes, ``snapshot <scientist>/<id>``) and what it takes out (content ``hashes``, ``snapshots``)."""

    retraction_id: str
    created_at: str
    by: str
    reason: str
    targets: list[str]
    hashes: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Retracted:
    """Every retraction in a store, folded: content hashes and snapshots left out, and for each
    hash the reasons (``by_hash``: sha256 -> list of ``{retraction_id, reason}``)."""

    hashes: frozenset[str]
    snapshots: frozenset[str]
    by_hash: dict[str, list[dict]]
    records: list[Retraction]


def record_retraction(store: ObjectStore, hashes: list[str], reason: str, targets: list[str],
                      snapshots: list[str] = (), by: str | None = None) -> Retraction:
    """Write a retraction record of ``hashes`` and ``snapshots`` (sorted, without repeats) with
    ``reason``; returns it. Its id is the first 16 hex digits of the SHA-256 of its fields. Raises
    :class:`RetractionError` without a reason or without anything to retract."""
    if not reason or not reason.strip():
        raise RetractionError("a retraction needs a reason (--reason)")
    hashes, snapshots = sorted(set(hashes)), sorted(set(snapshots))
    if not hashes and not snapshots:
        raise RetractionError(f"nothing to retract: {', '.join(targets) or 'no target'} matched no image")
    created = datetime.datetime.now(datetime.UTC).isoformat()
    who = by or _user()
    record = Retraction(retraction_id(hashes, snapshots, reason.strip(), created, who), created, who, reason.strip(),
                        list(targets), hashes, snapshots)
    put_record(store, retraction_key(record.retraction_id), asdict(record))
    return record


def retraction_id(hashes: list[str], snapshots: list[str], reason: str, created_at: str, by: str) -> str:
    """A retraction's id: the first 16 hex digits of the SHA-256 of the JSON of what it takes out,
    why, when and by whom (keys sorted)."""
    body = json.dumps({"hashes": hashes, "snapshots": snapshots, "reason": reason, "created_at": created_at, "by": by},
                      sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _verified(store: ObjectStore, key: str) -> Retraction:
    """The retraction record at ``key``, its seal and its id checked against its content and its key.
    Raises :class:`~imgassets.core.store.sealed.TamperedRecordError` naming the key."""
    fields = get_record(store, key)
    try:
        record = Retraction(**fields)
        expected = retraction_id(record.hashes, record.snapshots, record.reason, record.created_at, record.by)
    except TypeError as exc:
        raise TamperedRecordError(f"{key}: not a retraction record ({exc})") from None
    if not (record.retraction_id == expected == key.rsplit("/", 1)[-1].removesuffix(".json")):
        raise TamperedRecordError(f"{key}: the retraction's id does not match what it retracts (altered after it "
                                  "was written): refused")
    return record


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def load_retractions(store: ObjectStore) -> Retracted:
    """Every retraction record in the store (one listing of ``retractions/``), folded. Raises
    :class:`~imgassets.core.store.sealed.TamperedRecordError` for a record altered after it was
    written: a retraction is never silently dropped."""
    records = [_verified(store, key) for key in sorted(store.list_keys(RETRACTIONS_PREFIX)) if key.endswith(".json")]
    by_hash: dict[str, list[dict]] = {}
    for record in records:
        for sha in record.hashes:
            by_hash.setdefault(sha, []).append({"retraction_id": record.retraction_id, "reason": record.reason})
    return Retracted(frozenset(by_hash), frozenset(s for r in records for s in r.snapshots), by_hash, records)


def models_trained_on(store: ObjectStore, hashes: set[str] | frozenset[str], models: list[dict]) -> list[dict]:
    """The model records of ``models`` whose dataset's train or val split (the images that shaped
    the weights: trained on, or chose the best epoch) holds any of ``hashes``:
    ``{model_id, dataset_id, images, by_split, champion}`` (``images``: how many retracted images
    shaped it; ``by_split``: that count by split, ``{"train": n, "val": m}``), reading each dataset
    manifest's ``sha256`` and ``split`` columns once."""
    if not hashes:
        return []
    wanted = pa.array(sorted(hashes), pa.string())
    counted: dict[str, dict[str, int]] = {}
    found = []
    for record in models:
        dataset_id = record["dataset_id"]
        if dataset_id not in counted:
            rows = manifest_columns(store.get_bytes(dataset_manifest_key(dataset_id)), ["sha256", "split"])
            hit = pc.and_(pc.is_in(rows.column("sha256"), wanted), pc.is_in(rows.column("split"), SHAPING))
            splits = pc.value_counts(rows.column("split").filter(hit)).to_pylist()
            counted[dataset_id] = {s["values"]: s["counts"] for s in splits}
        if counted[dataset_id]:
            found.append({"model_id": record["model_id"], "dataset_id": dataset_id,
                          "images": sum(counted[dataset_id].values()), "by_split": counted[dataset_id],
                          "champion": bool(record.get("champion"))})
    return found


def shaped_by(by_split: dict[str, int], what: str) -> str:
    """How retracted images shaped a model, in words, from :func:`models_trained_on`'s
    ``by_split`` and the noun phrase ``what``: ``trained on 2 and validated on 1 of them (val picks
    the best epoch)`` for ``{"train": 2, "val": 1}`` and ``"of them"``."""
    parts = [f"{verb} {by_split[split]}" for split, verb in (("train", "trained on"), ("val", "validated on"))
             if by_split.get(split)]
    why = " (val picks the best epoch)" if by_split.get("val") else ""
    return f"{' and '.join(parts)} {what}{why}"
