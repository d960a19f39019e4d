"""The whole graph on real data: coco128 and books_roboflow as two scientists, materialized
in-process on a real Dagster instance, then checked the way a user would check it."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import dagster as dg
import pytest

from imgassets.cli.run import materialize_all, run_scientist
from imgassets.core.drive.layout import IMAGE_EXTENSIONS
from imgassets.core.images.index import PARALLEL_THRESHOLD
from imgassets.core.store.hashing import sha256_bytes
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.training.train import TrainingSettings
from imgassets.core.versioning.dataset_store import load_dataset
from imgassets.core.versioning.snapshot import load_snapshot
from imgassets_tests.conftest import copy_dataset, graph_on, tree_hashes

pytestmark = pytest.mark.slow
SCIENTISTS = ["books", "coco128"]


def _expected(folder: Path, labels_dir: str, images_dir: str) -> dict:
    """What the datasets hold, counted directly from their files (the test's own oracle)."""
    images = {p.stem: p for p in (folder / images_dir).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS}
    labels = {p.stem: p for p in (folder / labels_dir).glob("*.txt")}
    boxes = sum(len([ln for ln in labels[s].read_text().splitlines() if ln.strip()]) for s in images if s in labels)
    return {"images": len(images), "boxes": boxes,
            "background": {f"{images_dir}/{images[s].name}" for s in images if s not in labels},
            "orphans": {f"{labels_dir}/{labels[s].name}" for s in labels if s not in images}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("real")
    drive = base / "drive"
    copy_dataset("coco128", drive / "coco128")
    copy_dataset("books_roboflow", drive / "books")
    before = tree_hashes(drive)
    home = base / "home"
    children_before = {p.pid for p in multiprocessing.active_children()}
    with graph_on(base, drive, home) as (defs, instance):
        summary = materialize_all(defs, instance, str(drive), str(home), SCIENTISTS, TrainingSettings(epochs=1, imgsz=64))
        left_running = [p for p in multiprocessing.active_children() if p.pid not in children_before]
        rerun = {name: run_scientist(defs, instance, name)[0] for name in SCIENTISTS}
        yield {"drive": drive, "home": home, "summary": summary, "rerun": rerun, "before": before,
               "store": LocalObjectStore(home / "objects"), "instance": instance, "defs": defs,
               "left_running": left_running}


def test_no_worker_process_outlives_the_in_process_runs(world):
    """Both folders are above the image index's pool threshold; its pool ended with each step."""
    assert world["summary"].scientists[0].images_found > PARALLEL_THRESHOLD
    assert world["left_running"] == []


def test_everything_materialized_and_no_blocking_check_failed(world):
    summary = world["summary"]
    assert summary.exit_code == 0, summary.as_dict()
    assert [s.name for s in summary.scientists if s.success] == SCIENTISTS
    assert not [c for c in summary.checks if c.blocking and not c.passed]


def test_image_and_box_counts_match_the_datasets(world):
    expected = {"coco128": _expected(world["drive"] / "coco128", "labels/train2017", "images/train2017"),
                "books": _expected(world["drive"] / "books", "train/labels", "train/images")}
    by_name = {s.name: s for s in world["summary"].scientists}
    for name, exp in expected.items():
        rows = load_snapshot(world["store"], f"snapshots/{name}/{by_name[name].snapshot_id}.parquet")
        assert by_name[name].images_found == by_name[name].images_valid == exp["images"] == len(rows)
        assert sum(len(r["boxes"]) for r in rows) == by_name[name].boxes == exp["boxes"]
        assert {r["path"] for r in rows if not r["boxes"]} >= exp["background"]
    assert expected["coco128"]["images"] == 128 and expected["books"]["images"] == 342


def test_coco128_background_images_and_orphan_label_files(world):
    exp = _expected(world["drive"] / "coco128", "labels/train2017", "images/train2017")
    assert len(exp["background"]) == 2 and len(exp["orphans"]) == 2
    coco = next(s for s in world["summary"].scientists if s.name == "coco128")
    rows = load_snapshot(world["store"], f"snapshots/coco128/{coco.snapshot_id}.parquet")
    assert {r["path"] for r in rows if not r["boxes"]} == exp["background"]
    orphans = next(c for c in world["summary"].checks if c.name == "label_files_have_images" and c.partition == "coco128")
    assert not orphans.passed and orphans.severity == "WARN" and not orphans.blocking
    assert {f["file"] for f in orphans.findings} == exp["orphans"]


def test_quality_report_is_stored_next_to_each_snapshot(world):
    import json

    for scientist in world["summary"].scientists:
        key = f"snapshots/{scientist.name}/{scientist.snapshot_id}.report.json"
        report = json.loads(world["store"].get_bytes(key))
        assert report["images"]["valid"] == scientist.images_valid
        assert sum(report["class_histogram"].values()) == scientist.boxes
    coco = json.loads(world["store"].get_bytes(f"snapshots/coco128/{world['summary'].scientists[1].snapshot_id}.report.json"))
    assert coco["finding_counts"]["label_files_have_images"] == 2 and coco["images"]["background"] == 2


def test_objects_are_named_by_the_sha256_of_their_bytes(world):
    store = world["store"]
    keys = list(store.list_keys("objects/sha256"))
    assert len(keys) == 128 + 342
    for key in keys:
        assert sha256_bytes(store.get_bytes(key)) == key.rsplit("/", 1)[1]


def test_second_run_uploads_nothing_and_keeps_the_snapshot_id(world):
    for scientist in world["summary"].scientists:
        again = world["rerun"][scientist.name]
        assert again.success and again.uploaded_objects == 0
        assert again.snapshot_id == scientist.snapshot_id
    record = world["instance"].get_latest_materialization_event(dg.AssetKey("image_snapshot"))
    assert record.asset_materialization.tags["dagster/data_version"] in {s.snapshot_id for s in world["summary"].scientists}
    metadata = {key: value.value for key, value in record.asset_materialization.metadata.items()}
    # the previous snapshot (found through lineage) vouches for every object: no existence check
    assert (metadata["checked_objects"], metadata["existing_objects"]) == (0, metadata["images"])


def test_staged_dataset_loads_in_ultralytics(world):
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    dataset = world["summary"].dataset
    staged = load_dataset(world["store"], dataset["dataset_id"])
    assert dataset["images_train"] + dataset["images_val"] + dataset["images_benchmark"] == 470 == len(staged.records)
    data_yaml = world["home"] / "staging" / dataset["dataset_id"] / "data.yaml"
    data = check_det_dataset(str(data_yaml))
    assert data["nc"] == len(staged.class_names) and "LuckPim" in data["names"].values()
    train = YOLODataset(img_path=data["train"], data=data, task="detect", imgsz=64, augment=False)
    assert len(train) == dataset["images_train"]
    test = YOLODataset(img_path=data["test"], data=data, task="detect", imgsz=64, augment=False)
    assert len(test) == dataset["images_benchmark"] >= 5  # held out, pulled as images/benchmark, named test
    assert sum(len(label["cls"]) for label in train.labels) == sum(len(r["boxes"]) for r in staged.records if r["split"] == "train")


def test_weights_load_with_ultralytics_and_name_the_dataset(world, tmp_path):
    from ultralytics import YOLO

    model = world["summary"].model
    assert model["model_key"].startswith(f"models/{world['summary'].dataset['dataset_id']}/")
    assert set(model["metrics"]) == {"mAP50", "mAP50-95", "precision", "recall"}
    weights = tmp_path / "best.pt"
    world["store"].get_file(model["model_key"], weights)
    loaded = YOLO(str(weights))
    assert list(loaded.names.values()) == load_dataset(world["store"], model["dataset_id"]).class_names


def test_source_files_are_never_modified(world):
    assert tree_hashes(world["drive"]) == world["before"]
