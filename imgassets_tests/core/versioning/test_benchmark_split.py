"""The benchmark split: held out by the content-hash and duplicate-group rules, append-only, topped
up per class, pulled as Ultralytics' ``test`` split, and part of the leakage proof."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
import yaml

from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning.dataset import merge_snapshots
from imgassets.core.versioning.dataset_store import load_dataset, store_dataset
from imgassets.core.versioning.leakage import split_leaks
from imgassets.core.versioning.pull import pull_dataset
from imgassets.core.versioning.splits import MAX_BENCHMARK_SHARE, MIN_BENCHMARK_IMAGES_PER_CLASS
from imgassets_tests.core.versioning.test_columnar_merge import random_snapshots


def _rows(prefix: str, count: int, classes: list[str], seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        name = classes[i % len(classes)]
        rows.append({"sha256": hashlib.sha256(f"{prefix}-{i}".encode()).hexdigest(), "path": f"{prefix}/{i:04d}.jpg",
                     "size_bytes": 100, "format": "JPEG", "width": 64, "height": 48,
                     "phash": f"{rng.getrandbits(64):016x}",
                     "boxes": [{"class_name": name, "class_id": 0, "x_center": 0.5, "y_center": 0.5, "width": 0.2,
                                "height": 0.2, "difficult": None, "truncated": None, "iscrowd": None}]})
    return rows


def _splits(dataset) -> dict[str, str]:
    return dataset.splits_by_hash()


def test_each_class_gets_a_handful_of_benchmark_images_within_the_share():
    rows = _rows("a", 300, ["cat", "dog", "car"])
    dataset = merge_snapshots({"ana": ("0" * 16, rows)}, 0.2, benchmark_fraction=0.05)
    bench = [r for r in dataset.records if r["split"] == "benchmark"]
    per_class = {name: sum(1 for r in bench if r["boxes"][0]["class_name"] == name) for name in ("cat", "dog", "car")}
    assert all(n >= MIN_BENCHMARK_IMAGES_PER_CLASS for n in per_class.values()), per_class
    assert len(bench) <= MAX_BENCHMARK_SHARE * len(rows)
    assert 0.1 <= dataset.count("val") / len(rows) <= 0.3  # val is still drawn by its own fraction
    assert split_leaks(dataset.table, dataset.near_duplicates) == []


def test_a_rare_class_is_topped_up_only_as_far_as_the_share_allows():
    rows = _rows("a", 40, ["cat"]) + _rows("b", 3, ["okapi"])
    dataset = merge_snapshots({"ana": ("0" * 16, rows)}, 0.2, benchmark_fraction=0.05)
    bench = [r for r in dataset.records if r["split"] == "benchmark"]
    assert len(bench) <= MAX_BENCHMARK_SHARE * len(rows)
    assert dataset.count("train") >= 1 and dataset.count("val") >= 1


def test_the_benchmark_is_append_only_and_never_trained_on():
    first_rows = _rows("a", 200, ["cat", "dog"])
    first = merge_snapshots({"ana": ("0" * 16, first_rows)}, 0.2, benchmark_fraction=0.05)
    assert first.count("benchmark") > 0
    more = first_rows + _rows("b", 200, ["cat", "dog", "car"], seed=1)
    second = merge_snapshots({"ana": ("1" * 16, more)}, 0.2, _splits(first), benchmark_fraction=0.05)
    before, after = _splits(first), _splits(second)
    assert all(after[sha] == split for sha, split in before.items())  # nothing moves, in any direction
    new_bench = [sha for sha, split in after.items() if split == "benchmark" and sha not in before]
    assert new_bench  # new data feeds the benchmark too
    cars = [r for r in second.records if r["split"] == "benchmark" and r["boxes"][0]["class_name"] == "car"]
    assert len(cars) >= MIN_BENCHMARK_IMAGES_PER_CLASS


def test_a_dataset_from_before_the_benchmark_keeps_every_split_and_grows_one():
    rows = _rows("a", 100, ["cat"])
    old = merge_snapshots({"ana": ("0" * 16, rows)}, 0.2, benchmark_fraction=0.0)
    assert old.count("benchmark") == 0
    grown = merge_snapshots({"ana": ("1" * 16, rows + _rows("b", 100, ["cat"], seed=1))}, 0.2, _splits(old),
                            benchmark_fraction=0.05)
    assert all(_splits(grown)[sha] == split for sha, split in _splits(old).items())
    assert grown.count("benchmark") > 0


def test_a_benchmark_image_near_a_train_image_is_a_leak():
    dataset = merge_snapshots(random_snapshots(3), 0.5)
    a, b, _ = dataset.near_duplicates[0]
    from imgassets.core.versioning.manifest import DATASET_SCHEMA, manifest_table

    moved = [{**r, "split": "benchmark" if r["sha256"] == a else "train" if r["sha256"] == b else r["split"]}
             for r in dataset.records]
    assert any("(benchmark)" in leak and "are near-duplicates" in leak
               for leak in split_leaks(manifest_table(moved, DATASET_SCHEMA), []))


@pytest.mark.parametrize("benchmark_fraction", [0.05])
def test_the_benchmark_is_stored_pulled_and_named_test_in_data_yaml(tmp_path, benchmark_fraction):
    from imgassets.core.store.keys import content_key

    store = LocalObjectStore(tmp_path / "objects")
    rows = _rows("a", 60, ["cat", "dog"])
    for row in rows:  # objects the pull can fetch
        data = row["path"].encode()
        row["sha256"] = hashlib.sha256(data).hexdigest()
        store.put_bytes(content_key(row["sha256"]), data)
    dataset = merge_snapshots({"ana": ("0" * 16, rows)}, 0.2, benchmark_fraction=benchmark_fraction)
    store_dataset(store, dataset)
    assert load_dataset(store, dataset.dataset_id).benchmark_fraction == benchmark_fraction
    result = pull_dataset(store, dataset.dataset_id, tmp_path / "dest", tmp_path / "cache")
    doc = yaml.safe_load(result.data_yaml.read_text())
    assert doc["test"] == "images/benchmark" and doc["val"] == "images/val"
    pulled = sorted(p.stem for p in (tmp_path / "dest" / "images" / "benchmark").iterdir())
    assert pulled == sorted(r["sha256"] for r in dataset.records if r["split"] == "benchmark")
    assert len(list((tmp_path / "dest" / "labels" / "benchmark").glob("*.txt"))) == len(pulled) > 0


def _burst(prefix: str, count: int, name: str) -> list[dict]:
    """``count`` rows of one burst: the caller links them by giving every row the same group."""
    return _rows(prefix, count, [name], seed=7)


def test_one_burst_never_takes_a_whole_split_and_the_shares_hold():
    """200 frames of one burst beside 16 images: the burst trains (noted), val and benchmark keep
    their shares of the other images; train is never empty."""
    from imgassets.core.versioning.splits import group_splits

    burst, others = _burst("burst", 200, "cat"), _rows("own", 16, ["cat", "dog"])
    rows = burst + others
    shas = np.array([r["sha256"] for r in rows], dtype=object)
    group_of = np.array([min(r["sha256"] for r in burst)] * len(burst) + [r["sha256"] for r in others], dtype=object)
    noted: list[dict] = []
    splits = group_splits(shas, group_of, 0.2, None, 0.05, kept_in_train=noted)
    assert set(splits[:200]) == {"train"} and noted == [{"group": group_of[0], "images": 200}]
    own = list(splits[200:])
    assert own.count("val") in (3, 4) and own.count("train") >= 11, own  # 20% of 16, within half a group


@pytest.mark.parametrize("seed", range(6))
def test_the_shares_are_within_half_a_group_at_every_size(seed):
    """Random group sizes (singletons to bursts of 30): each split's share of the images is its
    fraction within half the largest group placed, and train is never empty."""
    from imgassets.core.versioning.splits import group_splits

    rng = random.Random(seed)
    shas, group_of = [], []
    for g in range(rng.choice([5, 40, 400])):
        size = rng.choice([1, 1, 1, 2, 5, 30])
        members = [hashlib.sha256(f"{seed}-{g}-{i}".encode()).hexdigest() for i in range(size)]
        shas += members
        group_of += [min(members)] * size
    splits = group_splits(np.array(shas, dtype=object), np.array(group_of, dtype=object), 0.2, None, 0.1)
    sizes = {g: group_of.count(g) for g in set(group_of)}
    placed = [n for n in sizes.values() if n <= max(2.0, 0.5 * 0.2 * len(shas))]
    slack = max(placed) / 2 + 1
    line = sum(placed)
    assert "train" in set(splits)
    for split, fraction in (("val", 0.2), ("benchmark", 0.1)):
        share = int((splits == split).sum())
        assert share <= fraction * line + slack, (split, share, line)
        if fraction * line >= 3 * slack:
            assert share >= fraction * line - 2 * slack, (split, share, line)


def test_every_class_on_a_handful_of_images_is_trained_on():
    """coco128-like: many classes on 3-5 images each beside a common one; the benchmark top-up and
    the val draw never leave such a class without a train image."""
    rows = _rows("common", 120, ["person"])
    for k in range(40):
        rows += _rows(f"rare{k}", 3 + k % 3, [f"class{k}"], seed=k)
    dataset = merge_snapshots({"ana": ("0" * 16, rows)}, 0.2, benchmark_fraction=0.05)
    trained = {b["class_name"] for r in dataset.records if r["split"] == "train" for b in r["boxes"]}
    assert trained == set(dataset.class_names)
    share = dataset.count("val") / len(rows)
    assert 0.1 <= share <= 0.3, share


def test_a_degenerate_history_is_refused_with_the_way_out():
    """A previous version that put every image in val (as the old rule could with one burst) is
    kept by the append-only rule; the next version is refused before training, saying how to
    recover, and the recovery (no previous splits) trains again."""
    from imgassets.core.versioning.splits import EmptyDatasetError

    rows = _rows("a", 30, ["cat", "dog"])
    history = {r["sha256"]: "val" for r in rows}
    with pytest.raises(EmptyDatasetError, match=r"no image in train .*imgassets run --resplit"):
        merge_snapshots({"ana": ("0" * 16, rows)}, 0.2, history, benchmark_fraction=0.05)
    again = merge_snapshots({"ana": ("0" * 16, rows)}, 0.2, None, benchmark_fraction=0.05)
    assert again.count("train") > again.count("val") > 0
