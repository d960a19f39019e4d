"""`imgassets run` as a process on a drive whose scientists label with other tools: CVAT for images
XML with polygons and rotated boxes (on books_roboflow images), DOTA `labelTxt/` oriented boxes (on
bccd_voc images), a Label Studio export with upload names, and YOLO segmentation rows (on coco128
images, over the index's pool threshold). Every scientist's boxes reach the dataset, the polygons
reach both manifests, a burst of EXIF-timed photos shares one split, and nothing on the drive changes."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from imgassets.core.images.index import PARALLEL_THRESHOLD
from imgassets_tests.conftest import shared_data_dir
from imgassets_tests.e2e.test_commands_real_drive import run_command
from imgassets_tests.e2e.test_hostile_share import SMOKE, drive_state

pytestmark = pytest.mark.slow


def _cvat(folder, images):
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<annotations>", "  <version>1.1</version>",
             "  <meta><task><labels><label><name>book</name></label><label><name>logo</name></label></labels>"
             "</task></meta>"]
    for i, path in enumerate(images):
        shutil.copy(path, folder / "images" / path.name)
        width, height = Image.open(path).size
        x, y = 20 + 7 * i, 30 + 5 * i
        lines += [f'  <image id="{i}" name="images/{path.name}" width="{width}" height="{height}">',
                  f'    <box label="book" occluded="{i % 2}" xtl="{x}" ytl="{y}" xbr="{x + 200}" ybr="{y + 250}"/>',
                  f'    <box label="book" occluded="0" xtl="{x + 300}" ytl="{y}" xbr="{x + 340}" ybr="{y + 80}" rotation="30"/>',
                  f'    <polygon label="logo" occluded="0" points="{x + 250},{y + 300};{x + 330},{y + 320};{x + 290},{y + 400}"/>',
                  "  </image>"]
    (folder / "annotations.xml").write_text("\n".join([*lines, "</annotations>"]))


def _burst_photo(seed: int, second: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)).resize((160, 120), Image.BILINEAR)
    exif = Image.Exif()
    exif[271], exif[272] = "Sony", "A7"
    exif.get_ifd(0x8769)[36867] = f"2025:03:01 09:00:{second:02d}"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def test_exports_of_other_tools_reach_the_dataset_with_their_polygons(tmp_path):
    drive, home = tmp_path / "drive", tmp_path / "home"
    ben = drive / "ben" / "cvat_export"
    (ben / "images").mkdir(parents=True)
    _cvat(ben, sorted((shared_data_dir() / "books_roboflow" / "train" / "images").glob("*.jpg"))[:12])
    carl = drive / "carl"
    (carl / "images").mkdir(parents=True)
    (carl / "labelTxt").mkdir()
    for i, path in enumerate(sorted((shared_data_dir() / "bccd_voc" / "JPEGImages").glob("*.jpg"))[:10]):
        shutil.copy(path, carl / "images" / path.name)
        x, y = 40 + 9 * i, 60 + 4 * i
        (carl / "labelTxt" / f"{path.stem}.txt").write_text(
            "imagesource:microscope\ngsd:0.1\n"
            f"{x} {y} {x + 60} {y + 10} {x + 50} {y + 70} {x - 10} {y + 60} RBC 0\n"
            f"{x + 200} {y} {x + 260} {y} {x + 260} {y + 50} {x + 200} {y + 50} WBC 1\n")
    dan = drive / "dan"
    (dan / "shots").mkdir(parents=True)
    tasks = []
    for i in range(8):
        (dan / "shots" / f"bee {i}.jpg").write_bytes(_burst_photo(i, i if i < 5 else 30 + 10 * i))  # 0-4: one burst
        tasks.append({"id": i, "data": {"image": f"/data/upload/7/{i:08x}-bee%20{i}.jpg"}, "annotations": [{"result": [
            {"type": "rectanglelabels", "original_width": 160, "original_height": 120, "image_rotation": 0,
             "value": {"x": 10 + i, "y": 20, "width": 30, "height": 40, "rotation": 0, "rectanglelabels": ["bee"]}},
            {"type": "polygonlabels", "original_width": 160, "original_height": 120, "image_rotation": 0,
             "value": {"points": [[60, 10], [90, 15], [75, 60]], "polygonlabels": ["flower"]}}],
            "was_cancelled": False}]})
    (dan / "project-7-export.json").write_text(json.dumps(tasks))
    eva = drive / "eva"
    coco = shared_data_dir() / "coco128"
    images = sorted((coco / "images" / "train2017").glob("*.jpg"))[:PARALLEL_THRESHOLD + 8]  # the index's pool
    (eva / "images").mkdir(parents=True)
    (eva / "labels").mkdir()
    shutil.copy(coco / "data.yaml", eva / "data.yaml")
    for path in images:
        shutil.copy(path, eva / "images" / path.name)
        (eva / "labels" / f"{path.stem}.txt").write_text("0 0.2 0.2 0.6 0.25 0.4 0.7\n1 0.5 0.5 0.9 0.5 0.8 0.9 0.6 0.8\n")
    before = drive_state(drive)

    code, out, err, _ = run_command("run", "--json", "--shared-root", str(drive), "--home", str(home), *SMOKE)
    assert code == 0, err[-3000:]
    assert drive_state(drive) == before
    summary = json.loads(out)
    boxes = {s["name"]: s["boxes"] for s in summary["scientists"]}
    assert boxes == {"ben": 36, "carl": 20, "dan": 16, "eva": 2 * len(images)}
    assert all(c["passed"] for c in summary["checks"] if c["blocking"])

    manifest = pq.read_table(home / "objects" / "snapshots" / "ben" / f"{summary['scientists'][0]['snapshot_id']}.parquet")
    assert manifest.column_names[-1] == "polygons"
    assert all(len([p for p in row if p is not None]) == 2 for row in manifest.column("polygons").to_pylist())
    dataset = pq.read_table(home / "objects" / "datasets" / summary["dataset"]["dataset_id"] / "manifest.parquet")
    rows = dataset.to_pylist()
    assert {r["scientist"] for r in rows} == {"ben", "carl", "dan", "eva"}
    burst = {r["split"] for r in rows if r["scientist"] == "dan" and r["path"] in {f"shots/bee {i}.jpg" for i in range(5)}}
    assert len(burst) == 1  # one burst, one split
    assert (home / "objects" / "datasets" / summary["dataset"]["dataset_id"] / "sequences.parquet").exists()

    code, out, err, _ = run_command("lineage", str(dan / "shots" / "bee 0.jpg"), "--home", str(home), "--json")
    assert code == 0, err
    [found] = json.loads(out)
    assert [d["dataset_id"] for d in found["datasets"]] == [summary["dataset"]["dataset_id"]]
