"""The first run detects, and models are compared where it is fair: the demo as a user runs it trains a
model that finds its shapes on the held-out benchmark and becomes champion; the next dataset version
scores its challenger and the champion on the same benchmark images, and a worse challenger is not
promoted. Each command a process, with a timeout."""

from __future__ import annotations

import json
import os
import random

import pytest

from imgassets.core.drive.demo import CLASSES, draw_scene, yolo_lines
from imgassets_tests.e2e.test_commands_real_drive import run_command

pytestmark = pytest.mark.slow

DEMO = {"IMGASSETS_TRAINING_PRESET": ""}  # the command's own choice: the demo preset on the demo drive


def _new_scientist(folder, count: int, seed: int) -> None:
    rng = random.Random(seed)
    ids = {name: i for i, name in enumerate(CLASSES)}
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    (folder / "data.yaml").write_text("names: [" + ", ".join(CLASSES) + "]\n")
    for i in range(count):
        scene = draw_scene(rng)
        scene.image.save(folder / "images" / f"dora_{i:03d}.png")
        (folder / "labels" / f"dora_{i:03d}.txt").write_text(yolo_lines(scene.boxes, ids))


def test_the_demo_detects_and_a_worse_challenger_is_not_promoted(tmp_path):
    home = tmp_path / "home"
    code, out, err, _ = run_command("run", "--json", "--home", str(home), env_extra=DEMO, timeout=900)
    assert code == 0, err[-3000:]
    first = json.loads(out)
    evaluation = first["evaluation"]
    assert first["dataset"]["images_benchmark"] >= 8
    assert evaluation["benchmark"]["mAP50"] >= 0.8, evaluation  # a model that finds its shapes, on held-out images
    assert evaluation["promoted"] and evaluation["promotion_decision"] == "the first model: champion"
    champion = json.loads((home / "objects" / "refs" / "models" / "champion").read_text())
    assert champion["model_id"] == first["model"]["run_id"]

    _new_scientist(home / "demo-drive" / "dora", 12, seed=29)  # a second dataset version
    code, out, err, _ = run_command("run", "--json", "--home", str(home), "--smoke", env_extra=DEMO, timeout=600)
    assert code == 0, err[-3000:]  # a refusal is the promotion rule working, not a failure
    second = json.loads(out)
    assert second["dataset"]["dataset_id"] != first["dataset"]["dataset_id"]
    refused = [c for c in second["checks"] if not c["passed"]]
    assert [c["name"] for c in refused if c["name"] == "beats_champion"] and not any(c["blocking"] for c in refused)
    assert not second["evaluation"]["promoted"] and "not promoted" in second["evaluation"]["promotion_decision"]
    assert second["evaluation"]["champion_after"] is None  # champion_model did not materialize: nothing changed
    assert json.loads((home / "objects" / "refs" / "models" / "champion").read_text())["model_id"] == champion["model_id"]

    challenger_id = second["model"]["run_id"]
    benchmark = json.loads((home / "objects" / second["model"]["model_key"].replace("best.pt", "benchmark.json"))
                           .read_text())
    assert benchmark["champion"]["model_id"] == champion["model_id"]
    # the champion was scored again, on the challenger's benchmark: the same images, the first run's and more
    assert benchmark["champion"]["scores"]["images"] == benchmark["challenger"]["images"]
    assert benchmark["challenger"]["images"] >= first["evaluation"]["benchmark_images"]
    assert set(benchmark["challenger"]["per_scientist"]) >= {"ana", "ben", "chloe"}
    # each model scored at the size it was trained at: the champion's score on its own benchmark
    # images (append-only: each first-run scientist's are still there) is the score it won with
    first_benchmark = json.loads((home / "objects" / first["model"]["model_key"].replace("best.pt", "benchmark.json"))
                                 .read_text())
    assert benchmark["champion"]["scores"]["imgsz"] == 128 and benchmark["challenger"]["imgsz"] == 64
    for scientist, won_with in first_benchmark["challenger"]["per_scientist"].items():
        assert abs(benchmark["champion"]["scores"]["per_scientist"][scientist]["mAP50"] - won_with["mAP50"]) <= 0.01
    assert "(at 128 px)" in second["evaluation"]["promotion_decision"]
    # why: COCO's reference agrees with Ultralytics' score of the same pass; the error types and the
    # slices set the challenger beside the champion, scored on the same images
    analysis = benchmark["analysis"]
    assert abs(analysis["reference"]["challenger"]["mAP50-95"] - benchmark["challenger"]["overall"]["mAP50-95"]) < 0.02
    assert abs(analysis["reference"]["champion"]["mAP50-95"] - benchmark["champion"]["scores"]["overall"]["mAP50-95"]) < 0.02
    assert set(analysis["error_types"]) == {"challenger", "champion"}
    assert set(analysis["error_types"]["champion"]["dAP"]) == {"classification", "localization", "both", "duplicate",
                                                               "background", "missed"}
    slices = {(r["kind"], r["slice"]): r for r in analysis["slices"]}
    assert {("scientist", "ana"), ("class", "circle")} <= set(slices) and any(k == "size" for k, _ in slices)
    assert all(r["champion"] is not None and r["difference_low"] <= r["difference_high"] for r in slices.values())
    assert slices[("all", "all")]["challenger"] == pytest.approx(benchmark["challenger"]["overall"]["mAP50-95"], abs=1e-6)
    assert [c for c in second["checks"] if c["name"] == "no_slice_regressed"]
    # the operating point is chosen on val, kept with the model and the champion, reported on the benchmark
    point = first_benchmark["operating_point"]
    assert 0 < point["confidence"] < 1 and set(point["per_class"]) <= set(CLASSES)
    assert set(point["benchmark"]) >= {"precision", "recall"}
    assert champion["operating_point"] == point
    assert second["evaluation"]["champion_imgsz"] == 128

    code, out, err, _ = run_command("models", "--home", str(home), "--json")
    models = {m["model_id"]: m for m in json.loads(out)}
    assert models[champion["model_id"]]["champion"] and not models[challenger_id]["champion"]
    assert models[challenger_id]["benchmark"]["decision"]["promoted"] is False

    code, out, err, _ = run_command("pull-model", "champion", str(tmp_path / "served.pt"), "--home", str(home), "--json")
    assert code == 0, err
    pulled = json.loads(out)
    assert pulled["model_id"] == champion["model_id"] and pulled["sha256"] == champion["sha256"]
    served_point = json.loads((tmp_path / "served.operating_point.json").read_text())
    assert pulled["operating_point"] == str(tmp_path / "served.operating_point.json")
    assert served_point["confidence"] == champion["operating_point"]["confidence"] and served_point["chosen_on"] == "val"
    assert (tmp_path / "served.pt").stat().st_size > 0

    fresh = tmp_path / "new" / "folder"
    code, out, err, _ = run_command("pull-model", "champion", f"{fresh}/", "--home", str(home))
    assert code == 0, err
    served = fresh / f"{champion['model_id']}.pt"
    umask = os.umask(0o022)
    os.umask(umask)
    assert served.is_file() and served.stat().st_mode & 0o777 == 0o666 & ~umask
