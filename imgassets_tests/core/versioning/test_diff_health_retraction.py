"""The semantic diff, dataset health, version logs, retraction and the departed-folder policy."""

from __future__ import annotations

import datetime
import io

import pytest
from PIL import Image

from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning.departed import DepartedPolicyError, apply_policy
from imgassets.core.versioning.diff import diff_datasets, diff_snapshots
from imgassets.core.versioning.health import HEATMAP_PIXELS, dataset_health, unmeasurable_classes
from imgassets.core.versioning.refs import dataset_history, resolve_dataset_id, snapshot_history
from imgassets.core.versioning.retraction import (
    RetractionError,
    load_retractions,
    models_trained_on,
    record_retraction,
)
from imgassets.errors import ImgassetsError
from imgassets_tests.core.versioning.versions import box, build, commit, content_hash


def two_versions(store, tmp_path):
    s1 = commit(store, tmp_path / "v1", "ana", {"a": [box()], "b": [box()], "c": [box("dog")], "gone": [box()]})
    t1 = commit(store, tmp_path / "v1", "ben", {"k": [box("dog")], "m": [box("dog")]})
    d1 = build(store, {"ana": s1, "ben": t1})
    s2 = commit(store, tmp_path / "v2", "ana", {"a": [box()], "b": [box(), box("dog", 0.2)], "c": [box("cat")],
                                                "new": [box("owl")]})
    d2 = build(store, {"ana": s2, "ben": t1}, d1)
    return d1, d2


def test_the_diff_counts_images_boxes_by_class_splits_and_classes(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    d1, d2 = two_versions(store, tmp_path)
    assert dataset_history(store) == [d1.dataset_id, d2.dataset_id]
    assert resolve_dataset_id(store, "latest~1") == d1.dataset_id
    with pytest.raises(ImgassetsError, match="history holds 2"):
        resolve_dataset_id(store, "latest~2")
    changes = diff_datasets(store, "latest~1", "latest")
    assert changes.scientists == {"ana": {"added": 1, "removed": 1, "relabelled": 2},
                                  "ben": {"added": 0, "removed": 0, "relabelled": 0}}
    assert changes.examples["added"] == ["ana/images/new.jpg"] and changes.examples["removed"] == ["ana/images/gone.jpg"]
    assert changes.boxes == {"cat": {"added": 1, "removed": 1}, "dog": {"added": 1, "removed": 1},
                             "owl": {"added": 1, "removed": 0}}
    assert changes.split_changes == []
    assert changes.classes == {"added": [[2, "owl"]], "renamed": [], "removed": []}
    text = changes.text()
    assert "ana: +1 added, -1 removed, 2 re-labelled" in text and "split changes: none" in text
    same = diff_datasets(store, "latest", "latest")
    assert same.totals() == {"added": 0, "removed": 0, "relabelled": 0, "boxes_added": 0, "boxes_removed": 0}
    snapshots = diff_snapshots(store, "ana", "latest~1", "latest")
    assert snapshots.scientists["ana"] == {"added": 1, "removed": 1, "relabelled": 2}
    assert len(snapshot_history(store, "ana")) == 2


def test_health_counts_per_split_and_scientist_and_draws_the_heatmap(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    _, d2 = two_versions(store, tmp_path)
    health = dataset_health(d2.table)
    assert sum(s["images"] for s in health.splits.values()) == len(d2.table)
    assert sum(s["boxes"] for s in health.scientists.values()) == d2.box_count()
    assert health.scientists["ben"]["boxes_by_class"] == {"dog": 2}
    assert health.scientists["ana"]["box_size_median"] == pytest.approx(0.2)
    assert health.scientists["ana"]["aspect_median"] == pytest.approx(64 / 48, abs=1e-3)
    heatmap = Image.open(io.BytesIO(health.heatmap_png))
    assert heatmap.size == (HEATMAP_PIXELS, HEATMAP_PIXELS) and HEATMAP_PIXELS >= 320
    middle, edge = HEATMAP_PIXELS // 2, HEATMAP_PIXELS // 16
    hot, cold = heatmap.convert("L").getpixel((middle, middle)), heatmap.convert("L").getpixel((middle, edge))
    assert hot > 120 and cold < 30  # every box is centred at y 0.5: bright there, dark elsewhere
    weak = unmeasurable_classes(health, d2.class_names)
    assert ("cat", "val", health.splits.get("val", {}).get("boxes_by_class", {}).get("cat", 0)) in weak


def test_a_retraction_is_recorded_with_its_reason_and_names_the_models_to_retrain(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    d1, _ = two_versions(store, tmp_path)
    with pytest.raises(RetractionError, match="needs a reason"):
        record_retraction(store, [content_hash("a")], " ", ["images/a.jpg"])
    with pytest.raises(RetractionError, match="nothing to retract"):
        record_retraction(store, [], "why", ["images/none.jpg"])
    train = [r["sha256"] for r in d1.records if r["split"] == "train"]
    record = record_retraction(store, train[:1] + train[:1], "consent withdrawn", ["x"], by="dpo")
    folded = load_retractions(store)
    assert folded.hashes == {train[0]} and folded.by_hash[train[0]][0]["reason"] == "consent withdrawn"
    assert record.by == "dpo" and len(record.retraction_id) == 16
    models = [{"model_id": "m1", "dataset_id": d1.dataset_id}]
    assert models_trained_on(store, folded.hashes, models) == [
        {"model_id": "m1", "dataset_id": d1.dataset_id, "images": 1, "by_split": {"train": 1},
         "champion": False}]
    bench = [r["sha256"] for r in d1.records if r["split"] == "benchmark"]
    if bench:  # scored on, never trained on
        assert models_trained_on(store, set(bench), models) == []


def test_a_departed_folder_is_kept_or_retracted_after_the_grace_period(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    root = tmp_path / "drive"
    (root / "ana").mkdir(parents=True)
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    found = apply_policy(store, root, {"ana": "a" * 16, "ben": "b" * 16}, "keep", 7, load_retractions(store), now)
    assert [(d.scientist, d.action) for d in found] == [("ben", "kept")]
    later = now + datetime.timedelta(days=3)
    both = {"ana": "a" * 16, "ben": "b" * 16}
    found = apply_policy(store, root, both, "retract", 7, load_retractions(store), later)
    assert found[0].action == "kept (grace until 2026-12-08)" and found[0].missing_since.startswith("2026-12-01")
    found = apply_policy(store, root, both, "retract", 7, load_retractions(store), now + datetime.timedelta(days=8))
    assert found[0].action == "retracted"
    assert load_retractions(store).snapshots == {"ben/" + "b" * 16}
    (root / "ben").mkdir()  # back: forgotten, and a new snapshot of it would be used again
    assert apply_policy(store, root, {"ana": "a" * 16, "ben": "c" * 16}, "retract", 7, load_retractions(store),
                        later) == []
    assert apply_policy(store, tmp_path / "unmounted", {"ana": "a" * 16}, "retract", 0, load_retractions(store)) == []
    with pytest.raises(DepartedPolicyError, match="keep, retract"):
        apply_policy(store, root, {}, "delete", 7, load_retractions(store))


@pytest.mark.parametrize("by_split,said", [
    ({"train": 1}, "trained on 1 of them"),
    ({"val": 1}, "validated on 1 of them (val picks the best epoch)"),
    ({"train": 2, "val": 1}, "trained on 2 and validated on 1 of them (val picks the best epoch)"),
])
def test_a_retraction_says_whether_a_model_trained_or_validated_on_the_images(by_split, said):
    from imgassets.core.versioning.retraction import shaped_by

    assert shaped_by(by_split, "of them") == said
