"""A pull keeps its word: DEST holds exactly the pulled version, a manifest is checked against the
id that names it before use, and no value in it, nor the id asked for, leads outside DEST."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imgassets.core.labels.table import build_label_table
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning.checkout import PULL_MARKER, DestinationError
from imgassets.core.versioning.dataset import dataset_manifest_key, merge_snapshots
from imgassets.core.versioning.dataset_store import load_dataset, store_dataset
from imgassets.core.versioning.manifest import DATASET_SCHEMA, ID_SCHEME, METADATA_KEY, ManifestError
from imgassets.core.versioning.pull import pull_dataset
from imgassets.core.versioning.refs import resolve_dataset_id
from imgassets.core.versioning.snapshot import commit_snapshot, load_snapshot, load_snapshot_table
from imgassets_tests.conftest import build_image_index, jpeg_bytes, snapshot_records


def _dataset(store, folder, count: int, seed: int = 0) -> str:
    folder.mkdir(parents=True)
    (folder / "classes.txt").write_text("cat\n")
    for i in range(count):
        (folder / f"{i}.jpg").write_bytes(jpeg_bytes(color=(seed + i * 30, 5, 5)))
        (folder / f"{i}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    index = build_image_index(folder)
    result = commit_snapshot(store, folder.name, folder, snapshot_records(index, build_label_table(folder, index)))
    dataset = merge_snapshots({folder.name: (result.snapshot_id, load_snapshot(store, result.manifest_key))}, 0.5)
    store_dataset(store, dataset)
    return dataset.dataset_id


def _files(dest):
    return sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())


def test_a_pull_over_another_version_leaves_exactly_the_pulled_one(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    six = _dataset(store, tmp_path / "drive" / "ana", 6)
    three = _dataset(store, tmp_path / "drive" / "ben", 3, seed=7)
    dest, cache = tmp_path / "dest", tmp_path / "cache"
    pull_dataset(store, six, dest, cache)
    (dest / "labels" / "train.cache").write_bytes(b"ultralytics cache of the six")
    result = pull_dataset(store, three, dest, cache)
    assert result.images == 3
    images = [f for f in _files(dest) if f.startswith("images/")]
    labels = [f for f in _files(dest) if f.startswith("labels/") and f.endswith(".txt")]
    assert len(images) == len(labels) == 3
    assert (dest / "labels" / "train.cache").read_bytes() != b"ultralytics cache of the six"  # rewritten for these three
    stems = [f.rsplit("/", 1)[1].split(".")[0] for f in images]
    assert len(set(stems)) == 3  # no image in both splits
    assert json.loads((dest / PULL_MARKER).read_text()) == {"dataset_id": three}
    fresh = tmp_path / "fresh"
    pull_dataset(store, three, fresh, cache)
    assert _files(fresh) == _files(dest)


def test_a_folder_with_other_files_is_refused_and_left_alone(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    dataset_id = _dataset(store, tmp_path / "drive" / "ana", 2)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "thesis.tex").write_text("mine")
    with pytest.raises(DestinationError, match="thesis.tex"):
        pull_dataset(store, dataset_id, dest, tmp_path / "cache")
    assert _files(dest) == ["thesis.tex"]


def _tamper(store, dataset_id, column: str, value) -> None:
    key = dataset_manifest_key(dataset_id)
    table = pq.read_table(io.BytesIO(store.get_bytes(key)))
    values = table.column(column).to_pylist()
    values[0] = value
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(values, table.schema.field(column).type))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    store.put_bytes(key, sink.getvalue())


@pytest.mark.parametrize(("column", "value"), [("split", "../../../escaped"), ("sha256", "../" * 21 + "x")])
def test_a_manifest_that_does_not_match_its_id_is_refused(tmp_path, column, value):
    store = LocalObjectStore(tmp_path / "objects")
    dataset_id = _dataset(store, tmp_path / "drive" / "ana", 2)
    _tamper(store, dataset_id, column, value)
    with pytest.raises(ManifestError, match="does not match its id"):
        pull_dataset(store, dataset_id, tmp_path / "deep" / "er" / "dest", tmp_path / "cache")
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "deep" / "er" / "dest" / "images").exists()


def test_a_consistent_manifest_with_an_escaping_split_is_refused(tmp_path):
    """Someone who can write the store can also give a forged manifest its matching id."""
    from imgassets.core.versioning.manifest import manifest_id

    store = LocalObjectStore(tmp_path / "objects")
    dataset_id = _dataset(store, tmp_path / "drive" / "ana", 2)
    data = store.get_bytes(dataset_manifest_key(dataset_id))
    table = pq.read_table(io.BytesIO(data))
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    splits = table.column("split").to_pylist()
    splits[0] = "../../x"
    forged = table.set_column(table.schema.get_field_index("split"), "split", pa.array(splits))
    forged_id = manifest_id(forged.cast(DATASET_SCHEMA), {"class_names": meta["class_names"],
                                                                    "val_fraction": meta["val_fraction"]})
    sink = io.BytesIO()
    pq.write_table(forged, sink)
    store.put_bytes(dataset_manifest_key(forged_id), sink.getvalue())
    with pytest.raises(ManifestError, match="split '../../x', not one of train, val"):
        pull_dataset(store, forged_id, tmp_path / "dest", tmp_path / "cache")


@pytest.mark.parametrize("ref", ["../../etc", "datasets/x", "ABCDEF0123456789", ""])
def test_a_ref_that_is_not_an_id_is_refused(tmp_path, ref):
    with pytest.raises(ManifestError, match="is not a dataset id"):
        resolve_dataset_id(LocalObjectStore(tmp_path / "objects"), ref)


def _rewritten(store, key: str, change) -> None:
    """Rewrite the manifest at ``key``: ``change(table, meta)`` returns the new (table, meta)."""
    table = pq.read_table(io.BytesIO(store.get_bytes(key)))
    table, meta = change(table, json.loads(table.schema.metadata[METADATA_KEY]))
    sink = io.BytesIO()
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()}), sink)
    store.put_bytes(key, sink.getvalue())


def _without_scheme_and_moved_to_train(table, meta):
    del meta["id_scheme"]
    splits = table.column("split").to_pylist()
    assert "val" in splits
    splits[splits.index("val")] = "train"  # poisoning: a benchmark image now trains the model
    return table.set_column(table.schema.get_field_index("split"), "split", pa.array(splits)), meta


def test_a_dataset_manifest_whose_footer_lost_its_id_scheme_is_refused(tmp_path):
    """No footer exempts a manifest from its id: without ``id_scheme`` a row moved to the other
    split would otherwise be pulled and trained on."""
    store = LocalObjectStore(tmp_path / "objects")
    dataset_id = _dataset(store, tmp_path / "drive" / "ana", 4)
    _rewritten(store, dataset_manifest_key(dataset_id), _without_scheme_and_moved_to_train)
    with pytest.raises(ManifestError, match=f"records no id scheme, not {ID_SCHEME}.*{dataset_id}"):
        pull_dataset(store, dataset_id, tmp_path / "dest", tmp_path / "cache")
    assert not (tmp_path / "dest" / "images").exists()
    _rewritten(store, dataset_manifest_key(dataset_id), lambda table, meta: (table, {**meta, "id_scheme": 1}))
    with pytest.raises(ManifestError, match="records id scheme 1"):
        load_dataset(store, dataset_id)


def _changed_box(table, meta, drop_scheme: bool):
    if drop_scheme:
        del meta["id_scheme"]
    rows = table.to_pylist()
    rows[0]["boxes"][0]["x_center"] = 0.25  # the box moved: the model learns the wrong place
    return pa.Table.from_pylist(rows, schema=table.schema), meta


@pytest.mark.parametrize("drop_scheme", [True, False])
def test_a_snapshot_manifest_is_checked_against_its_id(tmp_path, drop_scheme):
    store = LocalObjectStore(tmp_path / "objects")
    folder = tmp_path / "drive" / "ana"
    _dataset(store, folder, 2)
    [key] = [k for k in store.list_keys("snapshots/ana/") if k.endswith(".parquet")]
    assert len(load_snapshot_table(store, key)) == 2
    _rewritten(store, key, lambda table, meta: _changed_box(table, meta, drop_scheme))
    reason = "records no id scheme" if drop_scheme else "does not match its id"
    with pytest.raises(ManifestError, match=f"{key}: .*{reason}"):
        load_snapshot_table(store, key)


def test_a_snapshot_manifest_under_another_key_is_refused(tmp_path):
    """A valid manifest copied under another scientist's key is not that scientist's snapshot."""
    store = LocalObjectStore(tmp_path / "objects")
    _dataset(store, tmp_path / "drive" / "ana", 2)
    [key] = [k for k in store.list_keys("snapshots/ana/") if k.endswith(".parquet")]
    store.put_bytes(key.replace("/ana/", "/ben/"), store.get_bytes(key))
    with pytest.raises(ManifestError, match="footer names scientist 'ana'"):
        load_snapshot_table(store, key.replace("/ana/", "/ben/"))
