"""One rule pairs a box with its image in every format: a label for a missing image warns at its file
and line, a label for a rejected image is left out with the image's reason, and neither blocks nor
reaches a snapshot with null coordinates."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pytest

from imgassets.core.labels.checks import BLOCKING, LabelFindings
from imgassets.core.labels.table import build_label_table, usable_boxes
from imgassets.core.versioning.snapshot import snapshot_table
from imgassets.errors import Reason
from imgassets_tests.conftest import build_image_index, jpeg_bytes

GOOD, BROKEN = "good.jpg", "broken.jpg"


def _voc(image: str, size: bool) -> str:
    declared = "<size><width>64</width><height>48</height><depth>3</depth></size>" if size else ""
    return (f"<annotation><filename>{image}</filename>{declared}<object><name>cat</name><bndbox><xmin>4</xmin>"
            "<ymin>4</ymin><xmax>30</xmax><ymax>20</ymax></bndbox></object></annotation>")


def _coco(images: list[str], size: bool) -> str:
    entries = [{"id": i, "file_name": name, **({"width": 64, "height": 48} if size else {})} for i, name in enumerate(images)]
    annotations = [{"id": i, "image_id": i, "category_id": 1, "bbox": [4, 4, 26, 16]} for i in range(len(images))]
    return json.dumps({"images": entries, "annotations": annotations, "categories": [{"id": 1, "name": "cat"}]})


def _drive(folder: Path, fmt: str, image: str) -> None:
    """``folder`` with a valid image, a truncated (rejected) one, and one ``fmt`` label naming ``image``."""
    folder.mkdir(parents=True)
    (folder / GOOD).write_bytes(jpeg_bytes())
    (folder / BROKEN).write_bytes(jpeg_bytes()[:300])
    stem = Path(image).stem
    if fmt == "yolo":
        (folder / "classes.txt").write_text("cat\n")
        (folder / f"{stem}.txt").write_text("0 0.3 0.25 0.4 0.3\n")
    elif fmt == "voc":
        (folder / f"{stem}.xml").write_text(_voc(image, size=False))
    elif fmt == "coco":
        (folder / "instances.json").write_text(_coco([GOOD, image], size=False))
    else:
        (folder / "boxes.csv").write_text(f"image_path,xmin,ymin,xmax,ymax,label\n{GOOD},4,4,30,20,cat\n{image},4,4,30,20,cat\n")


def _findings(folder: Path):
    index = build_image_index(folder)
    table = build_label_table(folder, index)
    return index, table, LabelFindings.of(table)


@pytest.mark.parametrize("fmt", ["yolo", "voc", "coco", "csv"])
def test_a_label_for_a_rejected_image_is_left_out_with_the_images_reason(tmp_path, fmt):
    folder = tmp_path / "ana"
    _drive(folder, fmt, BROKEN)
    index, table, findings = _findings(folder)
    assert findings.blocking == []
    [left_out] = [f for f in findings.by_check["label_files_have_images"] if f.code == Reason.LABEL_IMAGE_REJECTED]
    assert left_out.line >= 1 and left_out.file.endswith((".txt", ".xml", ".json", ".csv"))
    [image] = index[index["path"] == BROKEN].itertuples()
    assert image.status == "corrupt" and image.width is pd.NA  # cut before its size: nothing to normalize by
    assert left_out.reason == f"its image {BROKEN} is left out ({image.status}: {image.reason}): 1 boxes unused"
    rejected_rows = table[table["image_path"] == BROKEN]
    assert len(rejected_rows) == 1 and not usable_boxes(rejected_rows).any()
    manifest = snapshot_table(index, table)
    assert manifest.column("path").to_pylist() == [GOOD]
    boxes = pc.list_flatten(manifest.column("boxes")).to_pylist()
    assert len(boxes) == (1 if fmt in ("coco", "csv") else 0)  # those files also label the good image
    assert all(box[c] is not None for box in boxes for c in ("x_center", "y_center", "width", "height"))


@pytest.mark.parametrize("fmt", ["voc", "coco", "csv"])
def test_a_label_for_a_missing_image_warns_at_its_file_and_line_in_every_format(tmp_path, fmt):
    """A CSV row for a missing image used to be a blocking ``x_center = nan fails not_nullable``."""
    folder = tmp_path / "ana"
    _drive(folder, fmt, "gone.jpg")
    _, table, findings = _findings(folder)
    assert findings.blocking == [], [str(f) for f in findings.blocking]
    [orphan] = [f for f in findings.by_check["label_files_have_images"] if f.code == Reason.LABEL_WITHOUT_IMAGE]
    assert "no image gone.jpg found" in orphan.reason and "1 boxes unused" in orphan.reason
    expected_line = {"voc": 1, "coco": 2, "csv": 3}[fmt]  # the VOC <object>, the COCO annotation, the CSV row
    assert orphan.line == expected_line
    assert not usable_boxes(table[table["image_path"].isna()]).any()
    assert "image size unknown" not in " ".join(table["parse_error"].dropna())


def test_a_csv_box_of_a_valid_image_is_normalized_by_its_size(tmp_path):
    folder = tmp_path / "ana"
    _drive(folder, "csv", "gone.jpg")
    _, table, _ = _findings(folder)
    [row] = table[table["image_path"] == GOOD].itertuples()
    assert (row.x_center, row.y_center, row.width, row.height) == pytest.approx((17 / 64, 12 / 48, 26 / 64, 16 / 48))


def test_blocking_checks_still_judge_the_boxes_of_valid_images(tmp_path):
    folder = tmp_path / "ana"
    _drive(folder, "csv", BROKEN)
    with open(folder / "boxes.csv", "a") as handle:
        handle.write(f"{GOOD},40,4,30,20,cat\n")  # xmax < xmin: a negative width on a valid image
    _, _, findings = _findings(folder)
    assert [(f.file, f.line) for f in findings.by_check["box_geometry"]] == [("boxes.csv", 4)]
    assert set(BLOCKING) >= {"box_geometry"}
