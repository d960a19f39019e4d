"""Sequence-aware split groups: frames of one burst or one recording session go to one split.

Near-duplicates already share a split (:func:`imgassets.core.images.duplicates.near_duplicate_pairs`),
but frames of one burst or video that are not near-duplicates still leak between train and val and
inflate val scores. Two rules link such frames, and the dataset merge puts every linked group in one
split whole, with the usual stability rules (an image never leaves val or benchmark):

* **burst** (on by default): images of the same camera (EXIF ``Make``, ``Model`` and body serial,
  as the image index reads them: :func:`imgassets.core.images.inspect.exif_facts`) whose EXIF
  capture times follow each other within :data:`DEFAULT_BURST_SECONDS` (``IMGASSETS_BURST_SECONDS``;
  0 turns it off) form one burst, however long the chain. Images without a capture time are never
  linked by this rule.
* **session folders** (off by default): images directly in a folder whose path (relative to the
  scientist's folder) matches the glob ``IMGASSETS_SESSION_FOLDERS`` (e.g. ``recordings/*``, or
  ``*`` for every sub-folder) are one recording session, e.g. the frames extracted from one video.

The capture facts travel beside each snapshot, not in its manifest (whose columns, and so whose id,
are unchanged): ``snapshots/<scientist>/<snapshot_id>.capture.parquet`` (:data:`CAPTURE_SCHEMA`),
written once with the snapshot from the image index. They are read from the image bytes, so the
same snapshot id always has the same capture facts. The links a dataset used are stored with it
(``datasets/<id>/sequences.parquet``, :data:`LINKS_SCHEMA`) for the leakage check.
"""

from __future__ import annotations

import fnmatch
import io
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from imgassets.core.store.base import ObjectNotFoundError, ObjectStore
from imgassets.core.store.keys import dataset_sequences_key, snapshot_capture_key

DEFAULT_BURST_SECONDS = 2.0
CAPTURE_SCHEMA = pa.schema([("sha256", pa.string()), ("capture_time", pa.float64()), ("camera", pa.string())])
LINKS_SCHEMA = pa.schema([("sha256_a", pa.string()), ("sha256_b", pa.string()), ("reason", pa.string())])


@dataclass(frozen=True)
class SequenceRules:
    """How frames are linked: ``burst_seconds`` (0: no burst rule) and ``session_folders`` (a glob
    over folder paths, or None: no session rule)."""

    burst_seconds: float = DEFAULT_BURST_SECONDS
    session_folders: str | None = None

    @classmethod
    def recorded(cls, rules: dict) -> SequenceRules:
        """The rules a stored dataset recorded (its footer's ``sequence_rules``); a dataset made
        before sequence groups existed recorded none, and was linked by no rule."""
        return cls(**rules) if rules else cls(burst_seconds=0)


def capture_table(index: pd.DataFrame, hashes: Iterable[str], carried: pd.DataFrame | None = None) -> pa.Table:
    """The capture facts (:data:`CAPTURE_SCHEMA`) of the images of ``index`` (an image index) whose
    content hash is in ``hashes`` (a snapshot's) and that have an EXIF capture time, and of those
    only ``carried`` knows (:func:`load_captures` of the previous snapshot: images move mode took
    off the drive); one row per content hash, sorted by it."""
    wanted = set(hashes)
    columns = ["sha256", "capture_time", "camera"]
    rows = index.loc[index["capture_time"].notna() & index["sha256"].isin(wanted), columns] \
        if "capture_time" in index.columns else pd.DataFrame(columns=columns)
    if carried is not None and len(carried):
        rows = pd.concat([rows, carried.loc[carried["sha256"].isin(wanted), columns]], ignore_index=True)
    rows = rows.drop_duplicates("sha256").sort_values("sha256")
    return pa.table({"sha256": pa.array(rows["sha256"], pa.string()),
                     "capture_time": pa.array(rows["capture_time"], pa.float64()),
                     "camera": pa.array(rows["camera"], pa.string(), from_pandas=True)}, schema=CAPTURE_SCHEMA)


def store_capture(store: ObjectStore, scientist: str, snapshot_id: str, table: pa.Table) -> str | None:
    """Write ``table`` beside snapshot ``snapshot_id`` (once: the facts of a snapshot never change);
    return its key, or None when no image has a capture time (nothing is written)."""
    if not table.num_rows:
        return None
    key = snapshot_capture_key(scientist, snapshot_id)
    if not store.touch(key):
        sink = io.BytesIO()
        pq.write_table(table, sink)
        store.put_bytes(key, sink.getvalue())
    return key


def store_snapshot_captures(store: ObjectStore, scientist: str, snapshot_id: str, index: pd.DataFrame,
                            hashes: Iterable[str], carried_from: str | None = None) -> str | None:
    """Store the capture facts of snapshot ``snapshot_id`` (its content ``hashes``) from ``index``
    (the scientist's image index) and, for images move mode took off the drive, from the facts of
    the scientist's snapshot ``carried_from``; return the key, or None when no image has a time."""
    carried = load_captures(store, {scientist: carried_from}) if carried_from else None
    return store_capture(store, scientist, snapshot_id, capture_table(index, hashes, carried))


def load_captures(store: ObjectStore, snapshots: dict[str, str]) -> pd.DataFrame:
    """The capture facts stored beside each ``{scientist: snapshot_id}`` (columns ``scientist``,
    ``sha256``, ``capture_time``, ``camera``); a snapshot with none (no EXIF times, or written before
    capture facts were kept) adds no row."""
    parts = []
    for scientist, snapshot_id in sorted(snapshots.items()):
        try:
            data = store.get_bytes(snapshot_capture_key(scientist, snapshot_id))
        except ObjectNotFoundError:
            continue
        frame = pq.read_table(io.BytesIO(data)).to_pandas()
        parts.append(frame.assign(scientist=scientist))
    if not parts:
        return pd.DataFrame({"scientist": pd.Series(dtype=object), "sha256": pd.Series(dtype=object),
                             "capture_time": pd.Series(dtype="float64"), "camera": pd.Series(dtype=object)})
    return pd.concat(parts, ignore_index=True)


def _chain(shas: np.ndarray, reasons: list[str]) -> list[tuple[str, str, str]]:
    """Links joining consecutive ``shas`` (one chain: a group of n images needs n - 1 links)."""
    return [(str(a), str(b), reason) for a, b, reason in zip(shas[:-1], shas[1:], reasons, strict=True) if a != b]


def sequence_links(table: pa.Table, captures: pd.DataFrame | None,
                   rules: SequenceRules) -> list[tuple[str, str, str]]:
    """``(sha256_a, sha256_b, reason)`` links between the images of ``table`` (a dataset's rows, or
    the merged snapshot rows: ``scientist``, ``path`` and ``sha256`` columns) that are frames of one
    burst or one session (:class:`SequenceRules`; module docstring). ``captures``:
    :func:`load_captures` (None: no capture facts)."""
    scientists, paths, shas = (table.column(c).to_numpy(zero_copy_only=False).astype(object)
                               for c in ("scientist", "path", "sha256"))
    links: list[tuple[str, str, str]] = []
    if rules.burst_seconds > 0 and captures is not None and len(captures):
        present = captures[captures["sha256"].isin(set(shas.tolist()))].drop_duplicates("sha256")
        named = present["camera"].notna() & (present["camera"] != "")
        present = present.assign(camera=present["camera"].where(named, "an unnamed camera of " + present["scientist"]))
        for camera, frames in present.sort_values(["camera", "capture_time", "sha256"]).groupby("camera", sort=True):
            times = frames["capture_time"].to_numpy()
            hashes = frames["sha256"].to_numpy(dtype=object)
            gaps = np.diff(times)
            close = np.flatnonzero(gaps <= rules.burst_seconds)
            links += [(hashes[i], hashes[i + 1], f"one burst of {camera} ({gaps[i]:.1f} s apart)")
                      for i in close if hashes[i] != hashes[i + 1]]
    if rules.session_folders:
        folders = np.array([p.rpartition("/")[0] for p in paths.tolist()], dtype=object)
        frame = pd.DataFrame({"scientist": scientists, "folder": folders, "path": paths, "sha256": shas})
        matching = frame[[bool(f) and fnmatch.fnmatchcase(f, rules.session_folders) for f in folders.tolist()]]
        for (scientist, folder), members in matching.sort_values("path").groupby(["scientist", "folder"], sort=True):
            hashes = members["sha256"].to_numpy(dtype=object)
            links += _chain(hashes, [f"one recording session: {scientist}/{folder}/"] * (len(hashes) - 1))
    return links


def links_table(links: list[tuple[str, str, str]]) -> pa.Table:
    """Links as a :data:`LINKS_SCHEMA` table."""
    a, b, reason = zip(*links, strict=True) if links else ((), (), ())
    return pa.table({"sha256_a": pa.array(a, pa.string()), "sha256_b": pa.array(b, pa.string()),
                     "reason": pa.array(reason, pa.string())}, schema=LINKS_SCHEMA)


def store_links(store: ObjectStore, dataset_id: str, links: list[tuple[str, str, str]]) -> None:
    """Write a dataset's sequence links beside its manifest (nothing when it has none)."""
    if links:
        sink = io.BytesIO()
        pq.write_table(links_table(links), sink)
        store.put_bytes(dataset_sequences_key(dataset_id), sink.getvalue())


def load_links(store: ObjectStore, dataset_id: str) -> list[tuple[str, str, str]]:
    """The sequence links stored with a dataset (none for a dataset that had none)."""
    try:
        table = pq.read_table(io.BytesIO(store.get_bytes(dataset_sequences_key(dataset_id))))
    except ObjectNotFoundError:
        return []
    return list(zip(*(table.column(c).to_pylist() for c in LINKS_SCHEMA.names), strict=True))
