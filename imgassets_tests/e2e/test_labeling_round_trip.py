"""The labeling flywheel as a scientist meets it, each command a process, against a real Label Studio
server: a folder of fresh captures is unlabelled (never trained), the champion ranks it and proposes
boxes, ``imgassets label push`` makes the Label Studio project, an annotator accepts, moves, deletes
and draws boxes, the project's JSON export dropped into the folder is read by the next run: the
annotated images leave the queue and join the dataset with exactly the annotator's boxes, and the
champion predicts nothing again."""

from __future__ import annotations

import io
import json
import random

import pyarrow.parquet as pq
import pytest
import requests

from imgassets.core.drive.demo import build_demo_drive, draw_scene
from imgassets_tests.e2e.test_commands_real_drive import run_command

pytestmark = pytest.mark.slow

DEMO = {"IMGASSETS_TRAINING_PRESET": ""}  # the command's own choice: the demo preset on the demo drive
CAPTURES = 16


def _fresh_captures(folder, count: int, seed: int) -> None:
    """Demo scenes with no label file anywhere: a scientist who has not labelled yet."""
    rng = random.Random(seed)
    (folder / "captures").mkdir(parents=True)
    for i in range(count):
        draw_scene(rng).image.save(folder / "captures" / f"nina_{i:03d}.png")


def _region(result: dict) -> tuple:
    """(class, x_center, y_center, width, height), normalized, of a Label Studio rectangle result."""
    v = result["value"]
    return (v["rectanglelabels"][0], (v["x"] + v["width"] / 2) / 100, (v["y"] + v["height"] / 2) / 100,
            v["width"] / 100, v["height"] / 100)


def _annotate(url: str, token: str, project: int) -> tuple[dict[str, list[tuple]], dict[str, int]]:
    """Play the annotator on four tasks with pre-annotations: accept one unchanged, move a box of the
    second (by a tenth of its width: IoU 0.82), delete a box of the third, draw a new box on the
    fourth. Returns the boxes left by path, and the boxes by provenance they should get."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    tasks = session.get(f"{url}/api/tasks", params={"project": project, "page_size": 100, "fields": "all"},
                        timeout=30).json()["tasks"]
    proposed = [t for t in tasks if t["predictions"] and t["predictions"][-1]["result"]]
    assert len(proposed) >= 4, "the champion proposes boxes on at least four queued images"
    # the third task loses a box and keeps the others: it needs two proposals (an image whose every
    # proposal is deleted has no box left to carry a provenance)
    several = [t for t in proposed if len(t["predictions"][-1]["result"]) >= 2]
    assert several, "the champion proposes two boxes on at least one queued image"
    chosen = [t for t in proposed if t is not several[0]][:3]
    chosen.insert(2, several[0])
    left, kinds = {}, {"accepted": 0, "corrected": 0, "added": 0, "rejected": 0}
    for i, task in enumerate(chosen):
        result = [{k: v for k, v in r.items() if k != "score"} for r in task["predictions"][-1]["result"]]
        kinds["accepted"] += len(result) - (i in (1, 2))
        kinds["corrected"] += i == 1
        kinds["rejected"] += i == 2
        kinds["added"] += i == 3
        if i == 1:
            value = result[0]["value"]
            value["x"] = value["x"] + value["width"] / 10 if value["x"] + 1.1 * value["width"] <= 100 else \
                value["x"] - value["width"] / 10
        elif i == 2:
            result = result[1:]
        elif i == 3:
            result.append({"id": "drawn", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
                           "original_width": result[0]["original_width"], "original_height": result[0]["original_height"],
                           "image_rotation": 0, "value": {"x": 5.0, "y": 6.0, "width": 12.5, "height": 10.0, "rotation": 0,
                                                          "rectanglelabels": ["circle"]}})
        done = session.post(f"{url}/api/tasks/{task['id']}/annotations", json={"result": result, "was_cancelled": False},
                            timeout=30)
        assert done.status_code == 201, done.text
        left[task["data"]["path"]] = sorted(_region(r) for r in result)
    return left, kinds


def test_fresh_captures_are_queued_prelabelled_labelled_in_label_studio_and_trained(tmp_path, label_studio):
    home = tmp_path / "home"
    drive = build_demo_drive(home / "demo-drive")
    _fresh_captures(drive / "nina", CAPTURES, seed=41)
    code, out, err, _ = run_command("run", "--json", "--home", str(home), env_extra=DEMO, timeout=900)
    assert code == 0, err[-3000:]
    first = json.loads(out)
    nina = next(s for s in first["scientists"] if s["name"] == "nina")
    assert (nina["images_valid"], nina["unlabelled"], nina["boxes"]) == (CAPTURES, CAPTURES, 0)
    assert first["dataset"]["unlabelled_images_left_out"] == CAPTURES
    assert first["dataset"]["unlabelled_images"] == {"nina": CAPTURES}
    manifest = pq.read_table(io.BytesIO((home / "objects" / first["dataset"]["manifest_key"]).read_bytes()))
    assert "nina" not in set(manifest.column("scientist").to_pylist())  # never trained, never in val or benchmark
    assert first["evaluation"]["promoted"]
    queue_run = next(q for q in first["labeling"] if q["scientist"] == "nina")
    assert queue_run["error"] is None and queue_run["predicted_now"] == CAPTURES
    assert queue_run["champion_model_id"] == first["model"]["run_id"]

    code, out, err, _ = run_command("queue", "--scientist", "nina", "--json", "--home", str(home))
    assert code == 0, err
    queue = json.loads(out)
    assert queue["candidates"] == CAPTURES and len(queue["entries"]) + len(queue["set_aside"]) == CAPTURES
    assert [e["rank"] for e in queue["entries"]] == list(range(1, len(queue["entries"]) + 1))
    assert queue["class_names"] == ["circle", "square", "triangle"]

    env = {"IMGASSETS_LABEL_STUDIO_TOKEN": label_studio["token"]}
    code, out, err, _ = run_command("label", "push", "--scientist", "nina", "--url", label_studio["url"], "--json",
                                    "--home", str(home), env_extra=env)
    assert code == 0, err
    pushed = json.loads(out)
    assert pushed["created"] == len(queue["entries"]) and pushed["project_created"]
    code, out, err, _ = run_command("label", "push", "--scientist", "nina", "--url", label_studio["url"], "--json",
                                    "--home", str(home), env_extra=env)
    assert code == 0 and json.loads(out)["unchanged"] == len(queue["entries"]) and json.loads(out)["created"] == 0

    left, kinds = _annotate(label_studio["url"], label_studio["token"], pushed["project"])
    export = requests.get(f"{label_studio['url']}/api/projects/{pushed['project']}/export",
                          params={"exportType": "JSON", "download_all_tasks": "true"},
                          headers={"Authorization": f"Token {label_studio['token']}"}, timeout=60)
    assert export.status_code == 200
    (drive / "nina" / "label-studio-export.json").write_bytes(export.content)  # as the scientist would

    code, out, err, _ = run_command("run", "--json", "--home", str(home), "--smoke", env_extra=DEMO, timeout=600)
    assert code == 0, err[-3000:]
    second = json.loads(out)
    nina = next(s for s in second["scientists"] if s["name"] == "nina")
    assert nina["unlabelled"] == CAPTURES - len(left)
    manifest = pq.read_table(io.BytesIO((home / "objects" / second["dataset"]["manifest_key"]).read_bytes()))
    rows = [r for r in manifest.to_pylist() if r["scientist"] == "nina"]
    assert sorted(r["path"] for r in rows) == sorted(left)  # the annotated images joined the dataset
    for row in rows:
        got = sorted((b["class_name"], b["x_center"], b["y_center"], b["width"], b["height"]) for b in row["boxes"])
        want = left[row["path"]]
        assert len(got) == len(want), row["path"]
        for g, w in zip(got, want, strict=True):
            assert g[0] == w[0] and all(abs(a - b) < 1e-6 for a, b in zip(g[1:], w[1:], strict=True)), (row["path"], g, w)
    # every box knows where it came from: in the snapshot, and counted in the dataset's flywheel
    snapshot = pq.read_table(io.BytesIO((home / "objects" / "snapshots" / "nina" /
                                         f"{nina['snapshot_id']}.parquet").read_bytes())).to_pylist()
    seen = {"accepted": 0, "corrected": 0, "added": 0, "rejected": 0}
    for row in snapshot:
        if row["path"] in left:
            assert row["provenance"]["model_id"] == first["model"]["run_id"]
            assert len(row["provenance"]["boxes"]) == len(row["boxes"])
            seen["rejected"] += row["provenance"]["rejected"]
            for kind in row["provenance"]["boxes"]:
                seen[kind] += 1
        else:
            assert row["provenance"] is None and row["unlabelled"]
    assert seen == kinds
    flywheel = {k: second["dataset"][f"flywheel/{k}"] for k in (*kinds, "prelabelled_images_added")}
    assert flywheel == {**kinds, "prelabelled_images_added": len(left)}
    assert second["dataset"]["flywheel/acceptance_rate"] == pytest.approx(
        kinds["accepted"] / (kinds["accepted"] + kinds["corrected"] + kinds["rejected"]), abs=1e-4)
    again = next(q for q in second["labeling"] if q["scientist"] == "nina")
    assert again["predicted_now"] == 0 and again["scores_reused"] == CAPTURES - len(left)  # the champion did not change
    code, out, err, _ = run_command("queue", "--scientist", "nina", "--json", "--home", str(home))
    queued = {e["path"] for e in json.loads(out)["entries"]} | {a["path"] for a in json.loads(out)["set_aside"]}
    assert not queued & set(left) and len(queued) == CAPTURES - len(left)
