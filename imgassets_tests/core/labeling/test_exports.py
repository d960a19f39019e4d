"""Pre-annotation exports (imgassets.core.labeling.exports) read back by imgassets' own parsers: a
YOLO or CVAT export dropped into a scientist's folder unchanged yields exactly the champion's boxes;
a Label Studio export's predictions are proposals, not labels, until an annotator accepts them."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from imgassets.core.labeling.exports import CVAT, LABEL_STUDIO, YOLO, ExportError, label_studio_config, write_prelabels
from imgassets.core.labeling.queue import Candidate, rank_queue
from imgassets.core.labeling.scoring import ImageScore
from imgassets.core.labels.table import build_label_table, usable_boxes
from imgassets.core.labels.unlabelled import unlabelled_counts
from imgassets.core.store.hashing import sha256_bytes
from imgassets.core.store.keys import content_key
from imgassets.core.store.local import LocalObjectStore
from imgassets_tests.conftest import build_image_index, noise_image

CLASSES = ["circle", "square", "triangle"]
BOXES = [  # (class id, x_center, y_center, width, height, confidence) per image
    [(0, 0.25, 0.3, 0.2, 0.3, 0.91), (2, 0.7, 0.6, 0.3, 0.25, 0.55)],
    [(1, 0.5, 0.5, 0.4, 0.4, 0.8)],
    [],
]


@pytest.fixture
def queued(tmp_path):
    """A store holding three unlabelled images and the queue of them, with known champion boxes."""
    store = LocalObjectStore(tmp_path / "objects")
    candidates, scores = [], {}
    for i, boxes in enumerate(BOXES):
        sink = io.BytesIO()
        noise_image((96, 64), i).save(sink, "JPEG", quality=90)
        data = sink.getvalue()
        sha = sha256_bytes(data)
        store.put_bytes(content_key(sha), data)
        candidates.append(Candidate(sha, f"field/day {i}/shot_{i}.jpg", 96, 64, None))
        scores[sha] = ImageScore(sha, 0.9 - i / 10, max((b[5] for b in boxes), default=0.0),
                                 [dict(zip(("class_id", "x_center", "y_center", "width", "height", "confidence"), b,
                                           strict=True)) for b in boxes], np.ones(4, np.float32) / 2)
    return store, rank_queue("ana", candidates, scores, {}, {}, class_names=CLASSES, model_id="champion-1")


def _boxes(folder) -> dict[str, list[tuple]]:
    index = build_image_index(folder)
    table = build_label_table(folder, index)
    rows = table[usable_boxes(table)]
    found: dict[str, list[tuple]] = {}
    for row in rows.itertuples():
        found.setdefault(row.image_path.rpartition("/")[2], []).append(
            (row.class_name, row.x_center, row.y_center, row.width, row.height))
    return {k: sorted(v) for k, v in found.items()}


def _expected() -> dict[str, list[tuple]]:
    return {f"shot_{i}.jpg": sorted((CLASSES[c], x, y, w, h) for c, x, y, w, h, _ in boxes)
            for i, boxes in enumerate(BOXES) if boxes}


def _close(found: dict, expected: dict, tolerance: float) -> None:
    assert found.keys() == expected.keys()
    for name, boxes in expected.items():
        assert len(found[name]) == len(boxes), name
        for got, want in zip(found[name], boxes, strict=True):
            assert got[0] == want[0]
            assert np.allclose(got[1:], want[1:], atol=tolerance), (name, got, want)


@pytest.mark.parametrize(("fmt", "tolerance"), [(YOLO, 1e-6), (CVAT, 0.01 / 64)])
def test_a_yolo_or_cvat_export_dropped_back_unchanged_yields_the_champions_boxes(queued, tmp_path, fmt, tolerance):
    store, queue = queued
    written = write_prelabels(store, queue, fmt, tmp_path / "export")
    assert len(written) == len(BOXES) + (1 if fmt == CVAT else len(BOXES) + 1)
    for entry in queue.entries:  # the images byte for byte, under their path in the scientist's folder
        assert sha256_bytes((tmp_path / "export" / "images" / entry["path"]).read_bytes()) == entry["sha256"]
    scientist = tmp_path / "drive" / "ana"
    shutil.copytree(tmp_path / "export", scientist)
    _close(_boxes(scientist), _expected(), tolerance)
    index = build_image_index(scientist)
    assert unlabelled_counts(index, build_label_table(scientist, index)) == (0, 3)  # shot_2: labelled background


def test_a_label_studio_export_holds_predictions_that_become_labels_only_once_accepted(queued, tmp_path):
    store, queue = queued
    write_prelabels(store, queue, LABEL_STUDIO, tmp_path / "export", image_url="/data/local-files/?d=ana/images/")
    tasks = json.loads((tmp_path / "export" / "tasks.json").read_text())
    assert [t["meta"]["rank"] for t in tasks] == [1, 2, 3]
    first = tasks[0]
    assert first["data"]["image"] == f"/data/local-files/?d=ana/images/{queue.entries[0]['path']}"
    prediction = first["predictions"][0]
    assert prediction["model_version"] == "champion-1" and prediction["score"] == queue.entries[0]["score"]
    assert [r["score"] for r in prediction["result"]] == [0.91, 0.55]
    assert prediction["result"][0]["value"]["x"] == pytest.approx(15.0)  # (0.25 - 0.2 / 2) * 100, top-left corner
    assert '<Label value="triangle"/>' in (tmp_path / "export" / "label_config.xml").read_text()
    assert label_studio_config(["a&b"]) .count('value="a&amp;b"') == 1

    scientist = tmp_path / "drive" / "ana"
    shutil.copytree(tmp_path / "export", scientist)
    assert _boxes(scientist) == {}  # predictions are proposals: nothing is labelled yet
    index = build_image_index(scientist)
    assert unlabelled_counts(index, build_label_table(scientist, index)) == (3, 3)

    for task in tasks:  # the annotator accepts every proposal unchanged, as Label Studio's export then holds it
        task["annotations"] = [{"id": 1, "result": task["predictions"][0]["result"], "was_cancelled": False}]
    (scientist / "tasks.json").write_text(json.dumps(tasks))
    _close(_boxes(scientist), _expected(), 1e-9)


def test_an_image_path_leaving_the_export_is_refused_before_anything_is_written(queued, tmp_path):
    store, queue = queued
    queue.entries[1]["path"] = "../../escape.jpg"
    with pytest.raises(ExportError, match="would leave the export folder"):
        write_prelabels(store, queue, YOLO, tmp_path / "export")
    assert not (tmp_path / "escape.jpg").exists()


def test_an_unknown_format_is_refused(queued, tmp_path):
    with pytest.raises(ExportError, match="unknown pre-annotation format 'coco'"):
        write_prelabels(queued[0], queued[1], "coco", tmp_path / "export")


def test_class_names_with_markup_survive_the_cvat_export(queued, tmp_path):
    store, queue = queued
    queue.class_names = ["a<b", "c&d", "e\"f"]
    for entry in queue.entries:
        for box in entry["prelabels"]:
            box["class_name"] = queue.class_names[box["class_id"]]
    write_prelabels(store, queue, CVAT, tmp_path / "export")
    scientist = tmp_path / "drive" / "ana"
    shutil.copytree(tmp_path / "export", scientist)
    assert {b[0] for boxes in _boxes(scientist).values() for b in boxes} == {"a<b", "c&d", "e\"f"}
    assert Image.open(scientist / "images" / queue.entries[0]["path"]).size == (96, 64)


DATUMARO_READ = """
import json, sys
import datumaro as dm
dataset = dm.Dataset.import_from(sys.argv[1], "cvat")
labels = dataset.categories()[dm.AnnotationType.label]
print(json.dumps({item.id: [(labels[a.label].name, *a.get_bbox()) for a in item.annotations
                            if a.type == dm.AnnotationType.bbox] for item in dataset}))
"""


@pytest.mark.slow
def test_datumaro_reads_the_cvat_export_as_the_champions_boxes(queued, tmp_path):
    """An independent reader of CVAT for images XML (datumaro, in a virtual environment of its own)."""
    import subprocess

    from imgassets_tests.conftest import tool_binary

    store, queue = queued
    write_prelabels(store, queue, CVAT, tmp_path / "export")
    done = subprocess.run([str(tool_binary("datumaro")), "-c", DATUMARO_READ, str(tmp_path / "export" / "annotations.xml")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    read = json.loads(done.stdout.strip().splitlines()[-1])
    for entry in queue.entries:
        item = next(boxes for item_id, boxes in read.items() if entry["path"].endswith(f"{item_id}.jpg")
                    or item_id == entry["path"])
        want = sorted((b["class_name"], (b["x_center"] - b["width"] / 2) * 96, (b["y_center"] - b["height"] / 2) * 64,
                       b["width"] * 96, b["height"] * 64) for b in entry["prelabels"])
        got = sorted(tuple(box) for box in item)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g[0] == w[0] and np.allclose(g[1:], w[1:], atol=0.01), (g, w)


@pytest.mark.slow
def test_label_studio_imports_the_prelabel_tasks_as_scored_predictions(queued, tmp_path, label_studio):
    """Label Studio's own importer, on a real server, reads the tasks.json `imgassets prelabel` writes."""
    import requests

    from imgassets.core.labeling.exports import label_studio_config

    store, queue = queued
    write_prelabels(store, queue, LABEL_STUDIO, tmp_path / "export")
    session = requests.Session()
    session.headers["Authorization"] = f"Token {label_studio['token']}"
    url = label_studio["url"]
    project = session.post(f"{url}/api/projects", json={"title": "prelabel import", "label_config":
                                                        label_studio_config(queue.class_names)}, timeout=30).json()["id"]
    done = session.post(f"{url}/api/projects/{project}/import", json=json.loads((tmp_path / "export" / "tasks.json")
                                                                                 .read_text()), timeout=60)
    assert done.status_code == 201, done.text
    assert done.json()["task_count"] == len(queue.entries) and done.json()["prediction_count"] == len(queue.entries)
    tasks = session.get(f"{url}/api/tasks", params={"project": project, "fields": "all"}, timeout=30).json()["tasks"]
    by_path = {t["data"]["path"]: t for t in tasks}
    for entry in queue.entries:
        prediction = by_path[entry["path"]]["predictions"][0]
        assert prediction["model_version"] == "champion-1" and prediction["score"] == pytest.approx(entry["score"])
        assert [r["score"] for r in prediction["result"]] == [b["confidence"] for b in entry["prelabels"]]
        assert [r["value"]["rectanglelabels"] for r in prediction["result"]] == [[b["class_name"]] for b in entry["prelabels"]]
