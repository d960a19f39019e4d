"""Model-assisted label review as users meet it: the demo trains a model strong enough to judge; label
errors are planted in copies of labelled images it did not train on (a deleted box, a swapped class,
a shifted box); the next run's model finds them, and the scientist's ``label_review`` check names
each file and line, while clean boxes are rarely flagged. Each command a process."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from imgassets_tests.e2e.test_commands_real_drive import run_command

pytestmark = pytest.mark.slow

DEMO = {"IMGASSETS_TRAINING_PRESET": ""}
LABELS = "street survey/labels"


def _held_out_clean(home, dataset_id: str, review: dict) -> list[str]:
    """ana's held-out images (val, benchmark) with a box that the first review did not question, as
    label file names."""
    manifest = pq.read_table(home / "objects" / "datasets" / dataset_id / "manifest.parquet").to_pylist()
    questioned = {f["image"] for f in review["findings"]}
    return sorted(f"{r['path'].rsplit('/', 1)[1].rsplit('.', 1)[0]}.txt" for r in manifest
                  if r["scientist"] == "ana" and r["split"] != "train" and r["boxes"]
                  and r["path"] not in questioned)


def _confidently_seen(home, labels, names: list[str], min_confidence: float = 0.6) -> list[tuple[str, int]]:
    """``(label file name, box index)`` of the label files ``names`` (in ``labels``) with a box the
    champion (fetched with ``pull-model``) predicts with its class at ``min_confidence`` or more
    (above the review's own 0.5), overlapping it (IoU 0.6 or more): each file's most confidently
    seen box, the most confident files first."""
    from ultralytics import YOLO

    from imgassets.core.training.evaluate import iou_xywh
    from imgassets.core.training.train import DEMO_IMGSZ

    weights = home / "champion.pt"
    code, _, err, _ = run_command("pull-model", "champion", str(weights), "--home", str(home))
    assert code == 0, err
    model, images, seen = YOLO(str(weights)), labels.parent / "images", []
    for name in names:
        [image] = [p for p in images.iterdir() if p.stem == name.rsplit(".", 1)[0]]
        result = model.predict(str(image), imgsz=DEMO_IMGSZ, verbose=False)[0]
        predicted = [(int(c), tuple(b), float(f)) for c, b, f in
                     zip(result.boxes.cls.tolist(), result.boxes.xywhn.tolist(), result.boxes.conf.tolist(), strict=True)]
        best = None
        for i, line in enumerate((labels / name).read_text().splitlines()):
            cls, *box = line.split()
            confidence = max((f for c, b, f in predicted if c == int(cls) and iou_xywh(tuple(map(float, box)), b) >= 0.6),
                             default=0.0)
            if confidence >= min_confidence and (best is None or confidence > best[0]):
                best = (confidence, i)
        if best:
            seen.append((best[0], name, best[1]))
    return [(name, i) for _, name, i in sorted(seen, reverse=True)]


def _ultralytics_val(weights, staged, records: list[dict], class_names: list[str], imgsz: int, workdir) -> dict:
    """Ultralytics' own ``YOLO.val`` of ``records`` (staged dataset rows), as a user would run it."""
    import yaml
    from ultralytics import YOLO

    from imgassets.core.versioning.checkout import staged_image

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "list.txt").write_text("".join(f"{staged_image(staged, r)}\n" for r in records))
    (workdir / "data.yaml").write_text(yaml.safe_dump({"path": str(staged), "train": "images/train", "val": "images/val",
                                                       "test": str(workdir / "list.txt"),
                                                       "names": dict(enumerate(class_names))}))
    box = YOLO(str(weights)).val(data=str(workdir / "data.yaml"), split="test", imgsz=imgsz, batch=16, plots=False,
                                 verbose=False, project=str(workdir), name="val", workers=0).box
    return {"mAP50": box.map50, "mAP50-95": box.map, "precision": box.mp, "recall": box.mr}


def _assert_one_pass_matches_ultralytics(home, summary: dict, tmp_path) -> None:
    """The stored benchmark scores (one prediction pass) equal Ultralytics' ``val`` of the same
    images within 0.005 overall. Per scientist they are computed from the same pass's predictions;
    Ultralytics' ``val`` of a scientist's images alone letterboxes them in other batches (its
    rectangular batches follow the aspect ratios of the images validated together), so its
    predictions, and scores on a few images, differ a little: within 0.1. The val split's per-image
    boxes are ``YOLO.predict``'s: every box of either at confidence 0.4 or more is a box of the other
    (same class, IoU 0.7, confidence within 0.15); ``predict`` letterboxes each image alone and the
    validator in padded batches, so a box near the 0.25 floor may be in one and not the other."""
    from ultralytics import YOLO

    from imgassets.core.store.local import LocalObjectStore
    from imgassets.core.training.models import list_models
    from imgassets.core.versioning.dataset_store import load_dataset
    from imgassets.core.versioning.pull import pull_dataset

    store = LocalObjectStore(home / "objects")
    [model] = list_models(store)
    dataset = load_dataset(store, summary["dataset"]["dataset_id"])
    staged = pull_dataset(store, dataset.dataset_id, tmp_path / "staged", tmp_path / "cache").data_yaml.parent
    weights = tmp_path / "best.pt"
    store.get_file(model["keys"]["best.pt"], weights)
    imgsz, stored = model["settings"]["imgsz"], model["benchmark"]["challenger"]
    benchmark = [r for r in dataset.records if r["split"] == "benchmark"]
    overall = _ultralytics_val(weights, staged, benchmark, dataset.class_names, imgsz, tmp_path / "all")
    assert all(abs(stored["overall"][m] - overall[m]) <= 0.005 for m in overall), (stored["overall"], overall)
    assert overall["mAP50"] > 0.3  # a model that detects: equal scores are not two zeros
    for i, scientist in enumerate(sorted(stored["per_scientist"])):
        theirs = _ultralytics_val(weights, staged, [r for r in benchmark if r["scientist"] == scientist],
                                  dataset.class_names, imgsz, tmp_path / f"s{i}")
        ours = stored["per_scientist"][scientist]
        assert all(abs(ours[m] - theirs[m]) <= 0.1 for m in theirs), (scientist, ours, theirs)
    evaluation = pq.read_table(home / "objects" / model["keys"]["best.pt"].rsplit("/", 1)[0] / "evaluation.parquet")
    val = [r for r in dataset.records if r["split"] == "val"]
    rows = evaluation.to_pylist()  # a row per val image and per benchmark image
    assert sorted(r["sha256"] for r in rows if r["split"] == "val") == sorted(r["sha256"] for r in val)
    assert sorted(r["sha256"] for r in rows if r["split"] == "benchmark") == sorted(r["sha256"] for r in benchmark)
    from imgassets.core.training.evaluate import iou_xywh
    from imgassets.core.training.staged_model import StagedModel
    from imgassets.core.versioning.checkout import staged_image
    model_pass = StagedModel(weights, staged, dataset.class_names, imgsz).predict(val)
    results = YOLO(str(weights)).predict([staged_image(staged, r) for r in val], imgsz=imgsz, conf=0.25, verbose=False)
    for record, result in zip(val, results, strict=True):
        theirs = [(int(c), tuple(b), float(f)) for c, b, f in
                  zip(result.boxes.cls.tolist(), result.boxes.xywhn.tolist(), result.boxes.conf.tolist(), strict=True)]
        ours = model_pass.of(record).above(0.25)
        for one, other in ((ours, theirs), (theirs, ours)):  # every confident box of one is a box of the other
            for cls, box, conf in one:
                if conf >= 0.4:
                    assert any(c == cls and iou_xywh(box, b) >= 0.7 and abs(f - conf) <= 0.15 for c, b, f in other), \
                        (record["path"], ours, theirs)

def test_planted_label_errors_are_found_and_named_by_file_and_line(tmp_path):
    home = tmp_path / "home"
    code, out, err, _ = run_command("run", "--json", "--home", str(home), env_extra=DEMO, timeout=900)
    assert code == 0, err[-3000:]
    first = json.loads(out)
    _assert_one_pass_matches_ultralytics(home, first, tmp_path / "check")
    review = json.loads((home / "objects" / "reviews" / "ana.json").read_text())
    assert review["skipped"] is None and review["model_id"] == first["model"]["run_id"]
    clean = _held_out_clean(home, first["dataset"]["dataset_id"], review)
    labels = home / "demo-drive" / "ana" / LABELS
    # errors are planted on boxes the model itself sees confidently: only there can a review judge them
    chosen = _confidently_seen(home, labels, clean)
    assert len(chosen) >= 3, (clean, chosen)
    (deleted, d), (swapped, s), (shifted, m) = chosen[:3]
    lines = {name: (labels / name).read_text().splitlines() for name in (deleted, swapped, shifted)}
    (labels / deleted).write_text("\n".join(lines[deleted][:d] + lines[deleted][d + 1:]) + "\n")  # a box deleted
    cls, x, y, w, h = lines[swapped][s].split()
    lines[swapped][s] = f"{(int(cls) + 1) % 3} {x} {y} {w} {h}"
    (labels / swapped).write_text("\n".join(lines[swapped]) + "\n")
    cls, x, y, w, h = lines[shifted][m].split()
    moved = float(x) + 0.6 * float(w) if float(x) + 1.1 * float(w) <= 1 else float(x) - 0.6 * float(w)
    lines[shifted][m] = f"{cls} {moved:.6f} {y} {w} {h}"
    (labels / shifted).write_text("\n".join(lines[shifted]) + "\n")

    # the next run's model (same train images, so the same model) reviews the planted labels ...
    code, out, err, _ = run_command("run", "--json", "--home", str(home), env_extra=DEMO, timeout=900)
    assert code in (0, 1), err[-3000:]
    assert json.loads(out)["evaluation"]["label_review_findings"] >= 2  # said in the summary
    # ... and the scientist's next run shows the findings on their partition, by file and line
    code, out, err, _ = run_command("run", "--json", "--home", str(home), "--smoke", env_extra=DEMO, timeout=600)
    checks = [c for c in json.loads(out)["checks"] if c["name"] == "label_review" and c["partition"] == "ana"]
    assert len(checks) == 1 and not checks[0]["passed"] and not checks[0]["blocking"]
    found = {(f["file"].rsplit("/", 1)[1], f["line"], f["reason"].split(" ", 1)[0]) for f in checks[0]["findings"]}
    planted = {(deleted, 0, "missing_box"), (swapped, s + 1, "wrong_class"), (shifted, m + 1, "mislocated")}
    assert len(planted & found) >= 2, (planted, found)  # most planted errors found
    stored = json.loads((home / "objects" / "reviews" / "ana.json").read_text())
    others = [f for f in stored["findings"] if f["file"].rsplit("/", 1)[1] not in (deleted, swapped, shifted)]
    manifest = pq.read_table(home / "objects" / "datasets" / json.loads(out)["dataset"]["dataset_id"] /
                             "manifest.parquet").to_pylist()
    held_out_boxes = sum(len(r["boxes"]) for r in manifest if r["scientist"] == "ana" and r["split"] != "train")
    assert len(others) <= 0.2 * held_out_boxes, others  # few clean boxes flagged


def test_k_fold_review_judges_every_train_image_by_a_model_that_did_not_train_on_it(tmp_path):
    """``IMGASSETS_REVIEW_FOLDS=2``: two more trainings, each on the other fold's train images; every
    train image is reviewed once (the smoke model is too weak to find anything: the floor is
    lowered so that the mechanics run)."""
    from imgassets_tests.conftest import small_books

    drive, home = tmp_path / "drive", tmp_path / "home"
    small_books(drive / "ana", count=12)
    env = {"IMGASSETS_REVIEW_FOLDS": "2", "IMGASSETS_REVIEW_MIN_MAP50": "0"}
    code, out, err, _ = run_command("run", "--json", "--shared-root", str(drive), "--home", str(home), "--smoke",
                                    env_extra=env, timeout=900)
    assert code == 0, err[-3000:]
    summary = json.loads(out)
    review = json.loads((home / "objects" / "reviews" / "ana.json").read_text())
    assert review["skipped"] is None and [run["fold"] for run in review["folds"]] == [0, 1]
    train = summary["dataset"]["images_train"]
    assert sum(run["reviewed"] for run in review["folds"]) == train
    assert all(run["trained_on"] + run["reviewed"] == train and run["reviewed"] > 0 for run in review["folds"])
