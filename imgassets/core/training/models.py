"""Trained models in the object store, and the lineage that connects them to image bytes.

A model lives under ``models/<dataset_id>/<model_id>/`` (the model id is the Dagster run id that
trained it): ``best.pt``, ``last.pt``, ``results.csv`` (per-epoch metrics), ``args.yaml`` (the
Ultralytics training arguments) and ``model.json`` (:func:`model_record`): metrics, settings,
dataset id and the snapshot ids it merged. Lineage is read from these records and manifests only:
model -> dataset id -> dataset manifest (snapshot id, content hash and original path per image)
-> snapshot manifests -> objects named by the content hash.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from imgassets.core.drive.paths import is_utf8, stored_path
from imgassets.core.store.base import ObjectNotFoundError, ObjectStore
from imgassets.core.store.hashing import sha256_file
from imgassets.core.store.keys import (
    BENCHMARK,
    CHAMPION_REF,
    MODEL_RECORD,
    MODELS_PREFIX,
    SNAPSHOTS_PREFIX,
    model_file_key,
    snapshot_of_key,
)
from imgassets.core.store.sealed import get_record, put_record
from imgassets.core.versioning.lineage_index import manifests_holding
from imgassets.core.versioning.manifest import manifest_columns
from imgassets.core.versioning.retraction import load_retractions
from imgassets.errors import ImgassetsError

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def store_model(store: ObjectStore, record: dict, files: dict[str, Path | None]) -> dict:
    """Upload ``files`` (``{"best.pt": path, ...}``, missing ones skipped) and ``model.json``;
    return the record with the ``keys`` it wrote and each file's ``sha256``."""
    keys, digests = {}, {}
    for name, path in files.items():
        if path is not None and Path(path).is_file():
            keys[name] = model_file_key(record["dataset_id"], record["model_id"], name)
            digests[name] = sha256_file(str(path))
            store.put_file(keys[name], path, sha256=digests[name])
    record = {**record, "keys": keys, "sha256": digests}
    put_record(store, model_file_key(record["dataset_id"], record["model_id"], MODEL_RECORD), record)
    return record


def list_models(store: ObjectStore) -> list[dict]:
    """Every model record in the store, oldest first (by ``created_at``), each with its
    ``benchmark`` record (:func:`read_benchmark`; ``None`` before its evaluation) and ``champion``
    (true for the model :data:`~imgassets.core.store.keys.CHAMPION_REF` names)."""
    keys = list(store.list_keys(MODELS_PREFIX))
    benchmarks = {k.rsplit("/", 2)[-2] for k in keys if k.endswith("/" + BENCHMARK)}
    records = [get_record(store, k) for k in keys if k.endswith("/" + MODEL_RECORD)]
    champion = read_champion(store)
    for record in records:
        record["benchmark"] = read_benchmark(store, record) if record["model_id"] in benchmarks else None
        record["champion"] = champion is not None and champion["model_id"] == record["model_id"]
    return sorted(records, key=lambda r: r.get("created_at", ""))


def write_benchmark(store: ObjectStore, dataset_id: str, model_id: str, benchmark: dict) -> str:
    """Store a model's benchmark record (``models/<dataset_id>/<model_id>/benchmark.json``):
    ``challenger`` scores, ``champion`` (``{model_id, scores}`` or ``None``), ``margin`` and
    ``decision`` (``{promoted, reason}``). Returns its key."""
    key = model_file_key(dataset_id, model_id, BENCHMARK)
    put_record(store, key, benchmark)
    return key


def read_benchmark(store: ObjectStore, record: dict) -> dict | None:
    """The benchmark record of the model ``record`` (a model.json), ``None`` when it has none."""
    try:
        return get_record(store, model_file_key(record["dataset_id"], record["model_id"], BENCHMARK))
    except ObjectNotFoundError:
        return None


def read_champion(store: ObjectStore) -> dict | None:
    """The champion ref (``refs/models/champion``): ``model_id``, ``dataset_id``, ``model_key``,
    ``sha256`` of its weights, the ``scores`` and ``decision`` that won it, ``promoted_at``;
    ``None`` before the first promotion."""
    try:
        return get_record(store, CHAMPION_REF)
    except ObjectNotFoundError:
        return None


def trained_imgsz(store: ObjectStore, model: dict) -> int | None:
    """The image size (pixels) the model ``model`` (a champion ref or model record: its
    ``dataset_id`` and ``model_id``) was trained at, from its ``model.json`` settings; ``None``
    when the record or the setting is missing."""
    try:
        record = get_record(store, model_file_key(model["dataset_id"], model["model_id"], MODEL_RECORD))
    except (ObjectNotFoundError, KeyError):
        return None
    imgsz = (record.get("settings") or {}).get("imgsz")
    return int(imgsz) if isinstance(imgsz, int | float) else None


def fetch_champion_weights(store: ObjectStore, champion: dict, dest: str | Path) -> str | None:
    """Write the weights the champion ref ``champion`` names to ``dest``; return why they must not be
    used (their SHA-256 is not the one the ref records), or None when they may."""
    store.get_file(champion["model_key"], dest)
    if champion.get("sha256") and sha256_file(str(dest)) != champion["sha256"]:
        return f"its weights {champion['model_key']} do not match the hash recorded in the champion ref"
    return None


def write_champion(store: ObjectStore, champion: dict) -> None:
    """Make ``champion`` (the fields of :func:`read_champion`) the champion ref."""
    put_record(store, CHAMPION_REF, champion)


@dataclass
class Lineage:
    """Where one image (by content hash) went: snapshots, datasets (with split), models; and the
    retractions that took it out (``{retraction_id, reason}``), if any."""

    sha256: str
    snapshots: list[dict] = field(default_factory=list)
    datasets: list[dict] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)
    retracted: list[dict] = field(default_factory=list)


def resolve_image(store: ObjectStore, path_or_hash: str) -> list[str]:
    """Content hashes meant by ``path_or_hash``: a SHA-256; a file on disk (hashed); or a path as
    recorded in snapshots. ``<scientist>/images/a.jpg`` is looked up in that scientist's snapshot
    manifests only (one listing of ``snapshots/<scientist>/``); a path that names no scientist
    with snapshots (``images/a.jpg``) in every manifest. A path is matched as the filesystem names
    it (bytes that are not UTF-8 as surrogate escapes, as in ``sys.argv``) and as it is stored and
    shown (``na\\xefve.jpg``, :mod:`imgassets.core.drive.paths`). Only the ``path`` and ``sha256``
    columns are read. Sorted, without repeats; empty when nothing matches."""
    if SHA256.match(path_or_hash):
        return [path_or_hash]
    if Path(path_or_hash).is_file():
        return [sha256_file(path_or_hash)]
    wanted = path_or_hash.strip("/")
    scientist, _, inside = wanted.partition("/")
    keys = [k for k in store.list_keys(f"{SNAPSHOTS_PREFIX}{scientist}/") if snapshot_of_key(k)] if inside else []
    if not keys:
        keys = [k for k in store.list_keys(SNAPSHOTS_PREFIX) if snapshot_of_key(k)]
        inside = wanted
    typed = {inside} if is_utf8(inside) else set()  # as shown: the stored form, maybe with \x escapes
    targets = pa.array(sorted(typed | {stored_path(inside)}), pa.string())
    found: set[str] = set()
    for key in keys:
        try:
            rows = manifest_columns(store.get_bytes(key), ["path", "sha256"])
        except ObjectNotFoundError:  # collected by a garbage collection since the listing
            continue
        found.update(rows.column("sha256").filter(pc.is_in(rows.column("path"), targets)).to_pylist())
    return sorted(found)


def lineage(store: ObjectStore, sha256: str) -> Lineage:
    """Every snapshot, dataset and model that includes the image ``sha256``, through the lineage
    index (:mod:`imgassets.core.versioning.lineage_index`: one shard, plus any manifest it does not
    cover yet) and the model records; and its retractions."""
    result = Lineage(sha256)
    for row in manifests_holding(store, sha256):
        if row["kind"] == "snapshot":
            result.snapshots.append({"scientist": row["scientist"], "snapshot_id": row["id"], "path": row["path"],
                                     "manifest_key": row["manifest_key"]})
        else:
            result.datasets.append({"dataset_id": row["id"], "split": row["split"], "scientist": row["scientist"],
                                    "path": row["path"]})
    dataset_ids = {d["dataset_id"] for d in result.datasets}
    result.models = [m for m in list_models(store) if m["dataset_id"] in dataset_ids]
    result.retracted = load_retractions(store).by_hash.get(sha256, [])
    return result


class ModelNotFoundError(ImgassetsError, LookupError):
    """``champion`` before any promotion, or a model id the store has no record of."""


@dataclass(frozen=True)
class PulledModel:
    """Weights fetched by :func:`pull_model`: the model, its dataset, where they were written, their
    hash, and the operating point file written beside them (None: the model has none recorded)."""

    model_id: str
    dataset_id: str
    path: Path
    sha256: str
    champion: bool
    operating_point: Path | None = None


def pull_model(store: ObjectStore, ref: str, dest: str | Path) -> PulledModel:
    """Fetch the ``best.pt`` of ``ref`` (``champion``, the model :data:`CHAMPION_REF` names, or a
    model id) to ``dest`` (a file path; an existing folder, or a path ending in ``/`` (created when
    missing), gets ``<model_id>.pt``; written with the process's default file mode), verified against
    the SHA-256 recorded when the model was stored (and, for the champion, in its ref) before it
    replaces ``dest``. Raises :class:`ModelNotFoundError`, and ``IntegrityError`` for bytes that do
    not match (nothing is written then). The model's operating point (the confidence threshold
    chosen on val, :mod:`imgassets.core.training.operating_point`), when recorded, is written beside
    the weights as ``<name>.operating_point.json`` (``model_id``, ``confidence``, ``per_class``,
    ``chosen_on``, ``benchmark`` precision and recall at it, ``champion``)."""
    import json

    from imgassets.core.store.atomic import atomic_path
    from imgassets.core.store.base import IntegrityError

    champion = read_champion(store)
    records = {r["model_id"]: r for r in list_models(store)}
    if ref == "champion":
        if champion is None:
            raise ModelNotFoundError("no champion yet: no model has been promoted in this store")
        ref = champion["model_id"]
    record = records.get(ref)
    if record is None or "best.pt" not in record.get("keys", {}):
        raise ModelNotFoundError(f"no model {ref!r} in this store (see 'imgassets models')")
    expected = {record.get("sha256", {}).get("best.pt")}
    if champion is not None and champion["model_id"] == ref:
        expected.add(champion.get("sha256"))
    expected.discard(None)
    if len(expected) != 1:
        raise IntegrityError(f"{record['keys']['best.pt']}: no single recorded SHA-256 to verify it against")
    folder = Path(dest).is_dir() or os.fspath(dest).endswith(("/", os.sep))
    target = Path(dest) / f"{ref}.pt" if folder else Path(dest)
    with atomic_path(target, shared=True) as tmp:
        store.get_file(record["keys"]["best.pt"], tmp)
        digest = sha256_file(tmp)
        if digest not in expected:
            raise IntegrityError(f"{record['keys']['best.pt']}: SHA-256 {digest} is not the recorded {expected.pop()}")
    is_champion = champion is not None and champion["model_id"] == ref
    point = (champion if is_champion else {}).get("operating_point") or (read_benchmark(store, record) or {}).get(
        "operating_point")
    written = None
    if point:
        written = target.with_name(f"{target.stem}.operating_point.json")
        with atomic_path(written, shared=True) as tmp:
            Path(tmp).write_text(json.dumps({"model_id": ref, "confidence": point["confidence"],
                                             "per_class": point.get("per_class", {}), "chosen_on": "val",
                                             "val_f1": point.get("f1"), "benchmark": point.get("benchmark"),
                                             "champion": is_champion}, indent=2) + "\n")
    return PulledModel(ref, record["dataset_id"], target, digest, is_champion, written)
