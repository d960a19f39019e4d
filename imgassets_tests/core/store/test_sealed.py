"""Sealed records: every record that changes what trains or what is served is read back only when
its seal matches what it holds; each reader refuses an altered one, naming its key."""

from __future__ import annotations

import datetime
import json

import pytest

from imgassets.core.store.keys import departed_key, model_file_key, review_key
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.store.sealed import SEAL_FIELD, TamperedRecordError, get_record, put_record, sealed_bytes
from imgassets.core.training.models import list_models, read_benchmark, read_champion, write_benchmark, write_champion
from imgassets.core.training.review import load_review
from imgassets.core.versioning.departed import apply_policy
from imgassets.core.versioning.refs import resolve_dataset_id, write_latest_ref
from imgassets.core.versioning.retraction import load_retractions, record_retraction, retraction_id

MODEL = {"model_id": "m1", "dataset_id": "0123456789abcdef", "created_at": "2026-12-07T00:00:00"}


def test_a_record_reads_back_as_written_and_any_change_is_refused(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    fields = {"model_id": "m1", "scores": {"map50": 0.5, "nan": float("nan")}, "names": ["cаr", "car"]}
    put_record(store, "refs/x", fields)
    back = get_record(store, "refs/x")
    assert back["model_id"] == "m1" and back["names"] == fields["names"] and SEAL_FIELD not in back
    stored = json.loads(store.get_bytes("refs/x"))
    for change in ({**stored, "model_id": "m2"}, {k: v for k, v in stored.items() if k != SEAL_FIELD},
                   {**stored, "extra": 1}):
        store.put_bytes("refs/x", json.dumps(change).encode())
        with pytest.raises(TamperedRecordError, match="^refs/x: "):
            get_record(store, "refs/x")
    for garbage in (b"", b"[1, 2]", b"{" * 100_000, b"\xff\xfe"):
        store.put_bytes("refs/x", garbage)
        with pytest.raises(TamperedRecordError, match="^refs/x: not a readable record"):
            get_record(store, "refs/x")
    with pytest.raises(ValueError):
        sealed_bytes({SEAL_FIELD: "x"})


def _alter(store, key, change) -> None:
    record = json.loads(store.get_bytes(key))
    change(record)
    store.put_bytes(key, json.dumps(record).encode())


def test_every_reader_refuses_an_altered_record_naming_its_key(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    retraction = record_retraction(store, ["a" * 64], "consent withdrawn", ["a.jpg"])
    assert retraction.retraction_id == retraction_id(["a" * 64], [], "consent withdrawn", retraction.created_at, retraction.by)
    assert load_retractions(store).hashes == {"a" * 64}
    key = f"retractions/{retraction.retraction_id}.json"
    _alter(store, key, lambda r: r.update(hashes=["b" * 64], **{SEAL_FIELD: None}))
    with pytest.raises(TamperedRecordError, match=f"^{key}: "):
        load_retractions(store)
    store.delete(key)

    # a copy resealed by hand under another key still fails: its id is its content's
    other = record_retraction(store, ["c" * 64], "blurred faces", ["c.jpg"])
    copied = json.loads(store.get_bytes(f"retractions/{other.retraction_id}.json"))
    copied.pop(SEAL_FIELD)
    copied["hashes"] = ["d" * 64]
    store.put_bytes(f"retractions/{other.retraction_id}.json", sealed_bytes(copied))
    with pytest.raises(TamperedRecordError, match="id does not match what it retracts"):
        load_retractions(store)
    store.delete(f"retractions/{other.retraction_id}.json")

    write_champion(store, {**MODEL, "sha256": "0" * 64})
    put_record(store, model_file_key(MODEL["dataset_id"], "m1", "model.json"), MODEL)
    write_benchmark(store, MODEL["dataset_id"], "m1", {"decision": {"promoted": True}})
    write_latest_ref(store, MODEL["dataset_id"])
    put_record(store, review_key("ana"), {"model_id": "m1", "dataset_id": MODEL["dataset_id"], "skipped": None,
                                          "folds": [], "findings": []})
    assert read_champion(store)["sha256"] == "0" * 64 and list_models(store)[0]["champion"]
    assert read_benchmark(store, MODEL)["decision"]["promoted"] and resolve_dataset_id(store, "latest") == MODEL["dataset_id"]
    checks = [("refs/models/champion", lambda: read_champion(store)),
              (model_file_key(MODEL["dataset_id"], "m1", "model.json"), lambda: list_models(store)),
              (model_file_key(MODEL["dataset_id"], "m1", "benchmark.json"), lambda: read_benchmark(store, MODEL)),
              ("refs/datasets/latest", lambda: resolve_dataset_id(store, "latest")),
              (review_key("ana"), lambda: load_review(store, "ana", None))]
    for key, read in checks:
        good = store.get_bytes(key)
        _alter(store, key, lambda r: r.update(model_id="m2", dataset_id="fedcba9876543210"))
        with pytest.raises(TamperedRecordError, match=f"^{key}: "):
            read()
        store.put_bytes(key, good)

    root = tmp_path / "drive"
    (root / "ben").mkdir(parents=True)
    now = datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)
    apply_policy(store, root, {"ana": "s1", "ben": "s2"}, "keep", 7, load_retractions(store), now)
    _alter(store, departed_key("ana"), lambda r: r.update(missing_since="2000-01-01T00:00:00+00:00"))
    with pytest.raises(TamperedRecordError, match=f"^{departed_key('ana')}: "):
        apply_policy(store, root, {"ana": "s1", "ben": "s2"}, "retract", 7, load_retractions(store), now)


def test_an_older_stores_records_are_sealed_once_by_the_upgrade(tmp_path, capsys):
    from imgassets.cli.upgrade import main as upgrade

    home = tmp_path / "home"
    store = LocalObjectStore(home / "objects")
    store.put_bytes("refs/models/champion", json.dumps({**MODEL, "sha256": "0" * 64}).encode())  # as written before
    store.put_bytes("retractions/abc.json", b"not json")
    with pytest.raises(TamperedRecordError, match="python -m imgassets.cli.upgrade"):
        read_champion(store)
    assert upgrade(["--home", str(home)]) == 0
    assert capsys.readouterr().out == "sealed refs/models/champion\n"
    assert read_champion(store)["sha256"] == "0" * 64
    assert upgrade(["--home", str(home)]) == 0 and capsys.readouterr().out == ""  # once
