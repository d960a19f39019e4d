"""The columnar merge against a dict-per-record reference: the same dataset id, rows, splits,
groups, conflicts and pairs on random snapshots (exact copies with other boxes, near-duplicates,
images without a perceptual hash, local class ids naming other classes, split history)."""

from __future__ import annotations

import hashlib
import random

import pytest

from imgassets.core.images.duplicates import groups, near_duplicate_pairs
from imgassets.core.versioning.dataset import _box_key, merge_snapshots
from imgassets.core.versioning.leakage import split_leaks
from imgassets.core.versioning.manifest import DATASET_SCHEMA, manifest_id, manifest_table, read_parquet_bytes
from imgassets.core.versioning.splits import MAX_GROUP_SHARE, MIN_TRAIN_IMAGES_CLASS


def reference_merge(snapshots: dict, val_fraction: float, previous: dict | None) -> dict:
    """The merge rules of :mod:`imgassets.core.versioning.dataset`, one dict per record (the
    implementation before the merge became columnar): the oracle the columnar merge must equal."""
    first, merged, conflicts, dropped = {}, [], [], 0
    for scientist in sorted(snapshots):
        snapshot_id, rows = snapshots[scientist]
        for row in sorted(rows, key=lambda r: r["path"]):
            kept = first.get(row["sha256"])
            if kept is not None:
                dropped += 1
                if _box_key(kept["boxes"]) != _box_key(row["boxes"]):
                    conflicts.append({"sha256": row["sha256"], "kept": f"{kept['scientist']}/{kept['path']}",
                                      "dropped": f"{scientist}/{row['path']}"})
                continue
            record = {"scientist": scientist, "snapshot_id": snapshot_id, **row}
            first[row["sha256"]] = record
            merged.append(record)
    class_names = sorted({b["class_name"] for r in merged for b in r["boxes"]})
    class_id = {name: i for i, name in enumerate(class_names)}
    near = near_duplicate_pairs({r["sha256"]: r["phash"] for r in merged if r.get("phash")})
    group_of = groups([r["sha256"] for r in merged], near)
    members: dict[str, list[str]] = {}
    for record in merged:
        record["group"] = group_of[record["sha256"]]
        members.setdefault(record["group"], []).append(record["sha256"])
    previous = previous or {}
    splits, fresh = {}, []
    for group, hashes in members.items():
        before = {previous[h] for h in hashes if h in previous}
        if before:
            splits[group] = "val" if "val" in before else "train"
        else:
            fresh.append(group)
    splits.update(reference_splits(fresh, val_fraction, set(splits.values()), len(members),
                                   sizes={g: len(members[g]) for g in fresh}))
    for name in sorted({b["class_name"] for r in merged for b in r["boxes"]}):  # every class gets trained on
        holding = [r for r in merged if any(b["class_name"] == name for b in r["boxes"])]
        if len(holding) >= MIN_TRAIN_IMAGES_CLASS and all(splits[r["group"]] != "train" for r in holding):
            vals = sum(s == "val" for s in splits.values())
            movable = sorted({r["group"] for r in holding if r["group"] in fresh and (splits[r["group"]] != "val" or vals > 1)},
                             key=lambda g: (len(members[g]), g))
            if movable:
                splits[movable[0]] = "train"
    records = [{**r, "boxes": [{**b, "class_id": class_id[b["class_name"]]} for b in r["boxes"]],
                "split": splits[r["group"]]} for r in merged]
    header = {"class_names": class_names, "val_fraction": val_fraction}
    return {"dataset_id": manifest_id(manifest_table(records, DATASET_SCHEMA), header), "records": records,
            "conflicts": conflicts, "dropped": dropped, "near": near, "class_names": class_names}


def reference_splits(names: list[str], val_fraction: float, kept: set[str], groups_in_all: int,
                     sizes: dict[str, int]) -> dict[str, str]:
    """The split rule written plainly, one name at a time: groups in score order (a group of several
    images scored by the SHA-256 of its name), each in val while the middle of its images lies below
    the fraction of the new images (one larger than its share allows stays in train); then at least
    one group in train and in val, counting the ``kept`` splits of groups with history."""
    score = {name: int((name if sizes[name] == 1 else hashlib.sha256(name.encode()).hexdigest())[:8], 16) / 2**32
             for name in names}
    cap = max(2.0, MAX_GROUP_SHARE * val_fraction * sum(sizes.values()))
    placed = sorted((n for n in names if sizes[n] <= cap), key=lambda n: (score[n], n))
    line, before, splits = max(1, sum(sizes[n] for n in placed)), 0, {name: "train" for name in names}
    for name in placed:
        if (before + sizes[name] / 2) / line < val_fraction:
            splits[name] = "val"
        before += sizes[name]
    if groups_in_all >= 2 and names:
        fits = [n for n in names if sizes[n] <= cap]
        ordered = sorted(fits, key=lambda n: (score[n], names.index(n))) or sorted(names, key=lambda n: (sizes[n], names.index(n)))
        if "val" not in kept and "val" not in splits.values() and (len(names) >= 2 or "train" in kept):
            splits[ordered[0]] = "val"
        if "train" not in kept and "train" not in splits.values() and (len(names) >= 2 or "val" in kept):
            splits[sorted(names, key=lambda n: (score[n], -names.index(n)))[-1]] = "train"
    return splits


def random_snapshots(seed: int) -> dict:
    rng = random.Random(seed)
    names = ["cat", "dog", "car", "bird"]
    pool: list[dict] = []
    snapshots = {}
    for s in range(rng.randint(1, 4)):
        rows = []
        local = rng.sample(names, k=len(names))  # each scientist numbers the classes their own way
        for i in range(rng.randint(2, 60)):
            if pool and rng.random() < 0.15:  # the same bytes dropped again, maybe with other boxes
                row = dict(rng.choice(pool), path=f"copy/{i:03d}.jpg")
                if rng.random() < 0.5:
                    row["boxes"] = []
            else:
                base = rng.choice(pool)["phash"] if pool and rng.random() < 0.2 else None
                base = base or f"{rng.getrandbits(64):016x}"
                phash = f"{int(base, 16) ^ (1 << rng.randrange(64)):016x}" if rng.random() < 0.9 else None
                boxes = [{"class_name": local[c], "class_id": c, "x_center": rng.random(), "y_center": rng.random(),
                          "width": rng.random(), "height": rng.random(), "difficult": rng.choice([None, 0, 1]),
                          "truncated": None, "iscrowd": None}
                         for c in (rng.randrange(len(names)) for _ in range(rng.randint(0, 3)))]
                row = {"sha256": hashlib.sha256(f"{seed}-{s}-{i}".encode()).hexdigest(), "path": f"img/{rng.random():.6f}.jpg",
                       "size_bytes": rng.randint(1, 10**6), "format": "JPEG", "width": 64, "height": 48,
                       "phash": phash, "boxes": boxes}
            pool.append(row)
            rows.append(row)
        rows = list({r["path"]: r for r in rows}.values())
        snapshots[f"sci{s}"] = (f"{s:016x}", rows)
    return snapshots


@pytest.mark.parametrize("seed", range(25))
def test_the_columnar_merge_equals_the_reference(seed):
    snapshots = random_snapshots(seed)
    if sum(len(rows) for _, rows in snapshots.values()) < 3 or not any(r["boxes"] for _, rows in snapshots.values() for r in rows):
        pytest.skip("nothing to train on")
    rng = random.Random(seed)
    everything = [r["sha256"] for _, rows in snapshots.values() for r in rows]
    previous = {sha: rng.choice(["train", "val"]) for sha in rng.sample(everything, len(everything) // 3)} if seed % 2 else None
    fraction = rng.choice([0.0, 0.2, 0.5, 1.0])
    expected = reference_merge(snapshots, fraction, previous)
    dataset = merge_snapshots(snapshots, fraction, previous, benchmark_fraction=0.0)  # the reference's two splits
    assert dataset.dataset_id == expected["dataset_id"]
    assert dataset.records == expected["records"]
    assert dataset.class_names == expected["class_names"]
    assert dataset.label_conflicts == expected["conflicts"]
    assert dataset.duplicates_dropped == expected["dropped"]
    assert dataset.near_duplicates == expected["near"]


def test_the_random_snapshots_hold_a_witness_of_every_rule():
    """The random sets exercise what the reference checks: copies, copies with other boxes,
    near-duplicate pairs and local class ids naming other classes."""
    merged = [merge_snapshots(random_snapshots(seed), 0.2) for seed in range(25)
              if sum(len(rows) for _, rows in random_snapshots(seed).values()) >= 3]
    assert sum(d.duplicates_dropped for d in merged) > 10
    assert sum(len(d.label_conflicts) for d in merged) > 3
    assert sum(len(d.near_duplicates) for d in merged) > 10
    assert any(d.class_id_conflicts for d in merged)


def test_a_planted_leak_fails_the_check_even_when_no_stored_pair_names_it():
    snapshots = random_snapshots(3)
    dataset = merge_snapshots(snapshots, 0.5)
    assert split_leaks(dataset.table, dataset.near_duplicates) == []
    a, b, _ = dataset.near_duplicates[0]
    rows = dataset.records
    moved = [{**r, "split": "val" if r["sha256"] == a else "train" if r["sha256"] == b else r["split"]} for r in rows]
    leaks = split_leaks(manifest_table(moved, DATASET_SCHEMA), [])
    assert any("are near-duplicates" in leak for leak in leaks)


def test_near_duplicate_pairs_are_their_own_parquet_object_and_read_back(tmp_path):
    import pyarrow.parquet as pq

    from imgassets.core.store.local import LocalObjectStore
    from imgassets.core.versioning.dataset_store import PAIRS_SCHEMA, load_dataset, store_dataset

    store = LocalObjectStore(tmp_path / "store")
    dataset = merge_snapshots(random_snapshots(3), 0.5)
    store_dataset(store, dataset)
    stored = pq.read_table(tmp_path / "store" / dataset.near_duplicates_key)
    assert stored.schema.equals(PAIRS_SCHEMA) and len(stored) == len(dataset.near_duplicates) > 0
    _, footer = read_parquet_bytes(store.get_bytes(dataset.manifest_key))
    assert "near_duplicates" not in footer and footer["near_duplicate_pairs"] == len(dataset.near_duplicates)
    assert load_dataset(store, dataset.dataset_id).near_duplicates == dataset.near_duplicates
