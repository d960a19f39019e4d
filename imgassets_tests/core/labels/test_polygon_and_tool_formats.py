"""Polygon and oriented-box labels (YOLO segmentation and OBB rows, DOTA ``labelTxt/``) and the
exports of two labelling tools (CVAT for images XML, Label Studio JSON), parsed into the one label
table: each planted case asserted with the reason a scientist reads, the polygon kept through the
snapshot and dataset manifests. The CVAT and Label Studio files follow the structure of the tools'
own documented examples (CVAT's XML format page; Label Studio's export guide and its converter's
test exports: upload names without their real extension, rotated rectangles, percent coordinates)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pytest

from imgassets.core.labels import checks as label_checks
from imgassets.core.labels.formats.record import rotated_rectangle
from imgassets.core.labels.table import LABEL_DTYPES, build_label_table
from imgassets.core.store.local import LocalObjectStore
from imgassets.core.versioning.dataset import merge_snapshots
from imgassets.core.versioning.dataset_store import load_dataset, store_dataset
from imgassets.core.versioning.manifest import manifest_id
from imgassets.core.versioning.snapshot import snapshot_table
from imgassets.errors import Reason
from imgassets_tests.conftest import build_image_index, jpeg_bytes, tree_hashes


def _folder(root: Path, files: dict[str, bytes | str], images: dict[str, tuple[int, int]]) -> Path:
    folder = root / "ana"
    for path, size in images.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(jpeg_bytes(size))
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data.encode() if isinstance(data, str) else data)
    return folder


def _table(folder: Path):
    index = build_image_index(folder)
    before = tree_hashes(folder)
    table = build_label_table(folder, index)
    assert tree_hashes(folder) == before  # sources are read, never modified
    return index, table


def _found(table) -> dict[str, set[tuple[str, int, str]]]:
    return {name: {(f.file, f.line, f.reason) for f in found}
            for name, found in label_checks.LabelFindings.of(table).by_check.items() if found}


YAML = "names: [cell, nucleus]\n"


def test_yolo_segmentation_rows_give_their_bounding_box_and_keep_the_polygon(tmp_path):
    folder = _folder(tmp_path, {"labels/a.txt": "0 0.1 0.2 0.5 0.1 0.4 0.6\n1 0.5 0.5 0.9 0.5 0.9 0.9 0.7 0.95 0.5 0.9\n",
                                "data.yaml": YAML}, {"images/a.jpg": (64, 48)})
    index, table = _table(folder)
    assert _found(table) == {}
    rows = table.sort_values("line")
    assert rows["shape"].tolist() == ["polygon", "polygon"] and rows["class_name"].tolist() == ["cell", "nucleus"]
    first = rows.iloc[0]
    assert (first["x_center"], first["y_center"], first["width"], first["height"]) == pytest.approx((0.3, 0.35, 0.4, 0.5))
    assert list(first["polygon"]) == [0.1, 0.2, 0.5, 0.1, 0.4, 0.6]
    manifest = snapshot_table(index, table)
    assert manifest.column_names[-1] == "polygons"
    assert manifest.column("polygons").to_pylist() == [[[0.1, 0.2, 0.5, 0.1, 0.4, 0.6],
                                                         [0.5, 0.5, 0.9, 0.5, 0.9, 0.9, 0.7, 0.95, 0.5, 0.9]]]


def test_yolo_obb_rows_are_oriented_boxes(tmp_path):
    folder = _folder(tmp_path, {"labels/a.txt": "1 0.2 0.1 0.6 0.3 0.5 0.5 0.1 0.3\n", "data.yaml": YAML},
                     {"images/a.jpg": (64, 48)})
    _, table = _table(folder)
    row = table.iloc[0]
    assert row["shape"] == "oriented_box" and row["parse_error"] is pd_na()
    assert (row["x_center"], row["y_center"], row["width"], row["height"]) == pytest.approx((0.35, 0.3, 0.5, 0.4))


def pd_na():
    import pandas as pd

    return pd.NA


def test_a_file_mixing_detection_and_polygon_rows_is_a_blocking_finding_on_the_odd_rows(tmp_path):
    folder = _folder(tmp_path, {"labels/a.txt": "0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.3 0.1 0.2 0.3\n0 0.4 0.4 0.1 0.1\n",
                                "data.yaml": YAML}, {"images/a.jpg": (64, 48)})
    _, table = _table(folder)
    assert _found(table) == {"label_schema": {("labels/a.txt", 2, "a polygon row in a file of detection rows "
                                               "(line 1 is detection): keep one kind of row per label file")}}


def test_a_polygon_leaving_the_image_fails_the_box_checks(tmp_path):
    folder = _folder(tmp_path, {"labels/a.txt": "0 0.8 0.2 1.3 0.2 1.0 0.6\n", "data.yaml": YAML},
                     {"images/a.jpg": (64, 48)})
    _, table = _table(folder)
    found = _found(table)
    assert set(found) == {"label_schema", "box_geometry"}
    assert any("box outside the image: x 0.8000..1.3000" in reason for _, _, reason in found["box_geometry"])


DOTA = ("imagesource:GoogleEarth\ngsd:0.146343590398\n"
        "10 10 40 10 40 30 10 30 plane 0\n"
        "50 20 60 25 55 35 45 30 small-vehicle 1\n"
        "1 2 3 4 5 6 7 8 ship\n"
        "1 2 3 4 5 6 7 plane 0\n")


def test_dota_label_txt_files_pair_with_images_beside_and_normalize_by_the_real_size(tmp_path):
    folder = _folder(tmp_path, {"train/labelTxt/P0001.txt": DOTA}, {"train/images/P0001.jpg": (80, 40)})
    _, table = _table(folder)
    rows = table.set_index("line")
    assert set(table["label_format"]) == {"dota"} and (table["image_path"] == "train/images/P0001.jpg").all()
    assert rows.loc[3, "class_name"] == "plane" and rows.loc[3, "shape"] == "oriented_box"
    assert (rows.loc[3, "x_center"], rows.loc[3, "y_center"], rows.loc[3, "width"], rows.loc[3, "height"]) == \
        pytest.approx((25 / 80, 20 / 40, 30 / 80, 20 / 40))
    assert list(rows.loc[4, "polygon"]) == pytest.approx([50 / 80, 20 / 40, 60 / 80, 25 / 40, 55 / 80, 35 / 40, 45 / 80, 30 / 40])
    assert rows.loc[4, "difficult"] == 1 and rows.loc[5, "parse_error"] is pd_na()  # difficult may be missing
    assert {c for c, i in zip(table["class_name"], table["class_id"], strict=True) if i is not pd_na()} == {
        "plane", "ship", "small-vehicle"}
    assert _found(table)["label_schema"] == {
        ("train/labelTxt/P0001.txt", 6, "non-numeric corner in '1 2 3 4 5 6 7 plane'")}


CVAT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><labels><label><name>car</name></label><label><name>person</name></label></labels></task></meta>
  <image id="0" name="images/street 1.jpg" width="100" height="50" subset="Train">
    <box label="car" occluded="1" source="manual" xtl="10.5" ytl="5" xbr="30.5" ybr="25" z_order="0">
      <attribute name="color">red</attribute>
    </box>
    <box label="person" occluded="0" xtl="50" ytl="10" xbr="60" ybr="30" rotation="90.0" z_order="0"/>
    <polygon label="person" occluded="0" points="70,5;90,10;80,40" z_order="1"/>
    <polyline label="car" points="1,2;3,4"/>
    <points label="person" points="5,5"/>
  </image>
  <image id="1" name="images/street 2.jpg" width="60" height="30">
    <box label="car" occluded="0" xtl="0" ytl="0" xbr="10" ybr="10"/>
  </image>
  <image id="2" name="images/gone.jpg" width="100" height="50">
    <box label="car" occluded="0" xtl="0" ytl="0" xbr="10" ybr="10"/>
  </image>
  <image id="3" name="images/street 1.jpg" width="100" height="50">
    <box label="" occluded="0" xtl="0" ytl="0" xbr="10" ybr="10"/>
    <box label="car" occluded="0" xtl="90" ytl="0" xbr="120" ybr="10"/>
  </image>
  <image id="4" name="../outside.jpg" width="100" height="50">
    <box label="car" occluded="0" xtl="0" ytl="0" xbr="10" ybr="10"/>
  </image>
</annotations>
"""


def test_cvat_for_images_xml_gives_boxes_rotated_boxes_and_polygons_with_every_fault_at_its_line(tmp_path):
    folder = _folder(tmp_path, {"export/annotations.xml": CVAT},
                     {"export/images/street 1.jpg": (100, 50), "export/images/street 2.jpg": (100, 50)})
    _, table = _table(folder)
    rows = table.set_index("line")
    assert set(table["label_format"]) == {"cvat"} and len(table) == 8  # polylines and points are no boxes
    car = rows.loc[6]
    assert car["image_path"] == "export/images/street 1.jpg" and car["occluded"] == 1
    assert (car["x_center"], car["y_center"], car["width"], car["height"]) == pytest.approx((0.205, 0.3, 0.2, 0.4))
    rotated = rows.loc[9]  # 10 x 20 px turned 90 degrees about its center: 20 x 10 px
    assert rotated["shape"] == "oriented_box"
    assert (rotated["x_center"], rotated["y_center"], rotated["width"], rotated["height"]) == pytest.approx((0.55, 0.4, 0.2, 0.2))
    assert rows.loc[10, "shape"] == "polygon" and list(rows.loc[10, "polygon"]) == pytest.approx([0.7, 0.1, 0.9, 0.2, 0.8, 0.8])
    found = _found(table)
    assert found["label_frame"] == {("export/annotations.xml", 15, "declares image size 60x30 but the image is 100x50")}
    assert found["label_files_have_images"] == {
        ("export/annotations.xml", 18, "no image images/gone.jpg found for this label file (1 boxes unused)")}
    assert ("export/annotations.xml", 21, "<box> without a label") in found["label_schema"]
    assert ("export/annotations.xml", 25, "image reference '../outside.jpg' escapes the scientist's folder") \
        in found["label_schema"]
    assert {line for _, line, _ in found["box_geometry"]} == {22}


def test_cvat_xml_that_is_not_well_formed_is_one_finding(tmp_path):
    folder = _folder(tmp_path, {"annotations.xml": "<annotations><image name='a.jpg'><box"}, {"a.jpg": (64, 48)})
    _, table = _table(folder)
    assert len(table) == 1 and table["parse_error"].iloc[0].startswith("not well-formed XML")


def _ls_result(kind: str, value: dict, size=(100, 50), **extra) -> dict:
    return {"original_width": size[0], "original_height": size[1], "image_rotation": 0, "value": value,
            "id": "r", "from_name": "label", "to_name": "image", "type": kind, "origin": "manual", **extra}


def _ls_task(image: str, results: list[dict], **extra) -> dict:
    return {"id": 1, "annotations": [{"id": 1, "result": results, "was_cancelled": False, "ground_truth": False}],
            "predictions": [], "data": {"image": image}, "meta": {}, **extra}


def test_label_studio_export_rectangles_polygons_and_rotations_by_upload_name(tmp_path):
    tasks = [
        _ls_task("/data/upload/3/5f1e2a3b-bee 1.jpg", [
            _ls_result("rectanglelabels", {"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0,
                                           "rectanglelabels": ["bee"]}),
            _ls_result("polygonlabels", {"points": [[10, 10], [50, 10], [30, 60]], "polygonlabels": ["wasp"]}),
            _ls_result("rectanglelabels", {"x": 50, "y": 40, "width": 10, "height": 20, "rotation": 90,
                                           "rectanglelabels": ["bee"]}),
            _ls_result("choices", {"choices": ["outdoor"]}),
        ], predictions=[{"result": [_ls_result("rectanglelabels", {"x": 0, "y": 0, "width": 5, "height": 5,
                                                                   "rectanglelabels": ["ghost"]})]}]),
        {"id": 2, "data": {"image": "/data/upload/3/0a0b0c0d-bee 2.jpg"}, "annotations": [
            {"result": [_ls_result("rectanglelabels", {"x": 0, "y": 0, "width": 5, "height": 5,
                                                       "rectanglelabels": ["cancelled"]})], "was_cancelled": True},
            {"result": [_ls_result("rectanglelabels", {"x": 90, "y": 0, "width": 20, "height": 10,
                                                       "rectanglelabels": ["bee"]})], "was_cancelled": False}]},
        _ls_task("/data/local-files/?d=shots/bee%203.jpg", [
            _ls_result("rectanglelabels", {"x": 0, "y": 0, "width": 5, "height": 5, "rectanglelabels": ["bee"]},
                       size=(60, 30))]),
        _ls_task("/data/upload/3/11112222-rotated.jpg", [
            _ls_result("rectanglelabels", {"x": 0, "y": 0, "width": 5, "height": 5, "rectanglelabels": ["bee"]},
                       image_rotation=90)]),
        _ls_task("/data/upload/3/33334444-missing.jpg", [
            _ls_result("rectanglelabels", {"x": 0, "y": 0, "width": 5, "height": 5, "rectanglelabels": ["bee"]})]),
    ]
    folder = _folder(tmp_path, {"project/export.json": json.dumps(tasks)},
                     {"project/images/bee 1.jpg": (100, 50), "project/images/bee 2.jpg": (100, 50),
                      "shots/bee 3.jpg": (100, 50), "project/rotated.jpg": (100, 50)})
    _, table = _table(folder)
    rows = table.set_index("line")
    assert set(table["label_format"]) == {"label_studio"} and len(table) == 7  # no choices, predictions, cancelled
    assert rows.loc[1, "image_path"] == "project/images/bee 1.jpg" and rows.loc[1, "class_name"] == "bee"
    assert (rows.loc[1, "x_center"], rows.loc[1, "y_center"], rows.loc[1, "width"], rows.loc[1, "height"]) == \
        pytest.approx((0.25, 0.4, 0.3, 0.4))
    assert rows.loc[2, "shape"] == "polygon" and list(rows.loc[2, "polygon"]) == pytest.approx([0.1, 0.1, 0.5, 0.1, 0.3, 0.6])
    corners = rotated_rectangle(50, 20, 10, 10, 90, about_center=False)  # 10 x 20 %: 10 x 10 px, turned about (50, 20)
    xs, ys = corners[0::2], corners[1::2]
    assert rows.loc[3, "shape"] == "oriented_box"
    assert (rows.loc[3, "x_center"], rows.loc[3, "width"]) == pytest.approx(((min(xs) + max(xs)) / 200, (max(xs) - min(xs)) / 100))
    assert (rows.loc[3, "y_center"], rows.loc[3, "height"]) == pytest.approx(((min(ys) + max(ys)) / 100, (max(ys) - min(ys)) / 50))
    assert rows.loc[5, "image_path"] == "shots/bee 3.jpg"
    found = _found(table)
    assert found["box_geometry"] == {("project/export.json", 4, "box outside the image: x 0.9000..1.1000, "
                                      "y 0.0000..0.1000 (must be within 0..1)")}
    assert found["label_frame"] == {("project/export.json", 5, "declares image size 60x30 but the image is 100x50")}
    assert any(line == 6 and "image_rotation" in reason for _, line, reason in found["label_schema"])
    assert found["label_files_have_images"] == {
        ("project/export.json", 7, "no image missing.jpg found for this label file (1 boxes unused)")}


def test_json_that_is_neither_coco_nor_label_studio_is_not_a_label_file(tmp_path):
    folder = _folder(tmp_path, {"settings.json": json.dumps([{"a": 1}]), "other.json": json.dumps({"k": "v"})},
                     {"a.jpg": (64, 48)})
    _, table = _table(folder)
    assert len(table) == 0 and list(table.columns) == list(LABEL_DTYPES)


def test_polygons_travel_through_the_dataset_manifest_and_box_only_ids_do_not_change(tmp_path):
    seg = _folder(tmp_path / "seg", {"labels/a.txt": "0 0.1 0.2 0.5 0.1 0.4 0.6\n", "labels/b.txt": "", "data.yaml": YAML},
                  {"images/a.jpg": (64, 48), "images/b.jpg": (64, 40)})
    box = _folder(tmp_path / "box", {"labels/c.txt": "0 0.5 0.5 0.2 0.2\n", "labels/d.txt": "1 0.5 0.5 0.2 0.2\n",
                                     "data.yaml": YAML}, {"images/c.jpg": (32, 48), "images/d.jpg": (48, 32)})
    seg_manifest = snapshot_table(*_table(seg))
    box_index, box_table = _table(box)
    box_manifest = snapshot_table(box_index, box_table)
    assert "polygons" not in box_manifest.column_names
    without = box_manifest  # the id of a box-only manifest is over exactly the columns it always had
    assert manifest_id(without, {"scientist": "b"}) == manifest_id(pa.Table.from_pylist(
        without.to_pylist(), schema=without.schema), {"scientist": "b"})
    dataset = merge_snapshots({"ana": ("s1", seg_manifest), "ben": ("s2", box_manifest)})
    store = LocalObjectStore(tmp_path / "store")
    store_dataset(store, dataset)
    loaded = load_dataset(store, dataset.dataset_id)
    polygons = dict(zip(loaded.table.column("path").to_pylist(), loaded.table.column("polygons").to_pylist(), strict=True))
    assert polygons == {"images/a.jpg": [[0.1, 0.2, 0.5, 0.1, 0.4, 0.6]], "images/b.jpg": [],
                        "images/c.jpg": None, "images/d.jpg": None}
    assert all(math.isclose(a, b) for a, b in zip(polygons["images/a.jpg"][0], [0.1, 0.2, 0.5, 0.1, 0.4, 0.6], strict=True))


def test_reasons_of_the_new_formats_are_the_existing_codes(tmp_path):
    folder = _folder(tmp_path, {"annotations.xml": CVAT.replace("images/", "")}, {"street 1.jpg": (100, 50)})
    _, table = _table(folder)
    codes = {f.code for found in label_checks.LabelFindings.of(table).by_check.values() for f in found}
    assert codes <= {Reason.LABEL_SCHEMA, Reason.BOX_OUTSIDE_IMAGE, Reason.LABEL_FRAME, Reason.LABEL_WITHOUT_IMAGE}


def test_a_finding_in_a_many_image_export_shows_its_own_image_with_the_polygons_drawn(tmp_path):
    import base64
    import io
    import re

    from PIL import Image

    from imgassets.core.images.thumbnails import finding_pictures
    from imgassets.core.labels.checks import Finding

    xml = CVAT.replace('name="images/street 2.jpg" width="60" height="30"', 'name="images/street 2.jpg" width="50" height="100"')
    folder = _folder(tmp_path, {"export/annotations.xml": xml},
                     {"export/images/street 1.jpg": (100, 50), "export/images/street 2.jpg": (50, 100)})
    _, table = _table(folder)
    portrait = finding_pictures(folder, [Finding("export/annotations.xml", 15, "look here", Reason.LABEL_FRAME)], table)
    landscape = finding_pictures(folder, [Finding("export/annotations.xml", 10, "a polygon", Reason.LABEL_SCHEMA)], table)

    def picture(markdown: str) -> Image.Image:
        data = re.search(r"base64,([A-Za-z0-9+/=]+)\)", markdown).group(1)
        return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")

    assert "export/annotations.xml:15" in portrait and picture(portrait).height > picture(portrait).width
    drawn = picture(landscape)
    assert drawn.width > drawn.height
    green = [(x, y) for x in range(drawn.width) for y in range(drawn.height)
             if (lambda p: p[1] > 150 and p[0] < 90 and p[2] < 90)(drawn.getpixel((x, y)))]
    assert any(x > drawn.width * 0.65 for x, _ in green)  # the polygon at x 0.7..0.9 is outlined


def test_a_cvat_shape_with_a_label_the_export_does_not_declare_is_a_finding(tmp_path):
    xml = CVAT.replace('<polygon label="person" occluded="0" points="70,5;90,10;80,40"',
                       '<polygon label="truck" occluded="0" points="70,5;90,10;80,40"')
    folder = _folder(tmp_path, {"export/annotations.xml": xml}, {"export/images/street 1.jpg": (100, 50)})
    _, table = _table(folder)
    assert ("export/annotations.xml", 10, "label 'truck' is not one of the labels the export declares (car, person)") \
        in _found(table)["label_schema"]


def test_label_studio_json_min_export_is_read_like_the_full_one(tmp_path):
    tasks = [{"image": "/data/upload/3/5f1e2a3b-bee 1.jpg", "id": 1, "annotator": 1,
              "label": [{"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0, "rectanglelabels": ["bee"],
                         "original_width": 100, "original_height": 50}]},
             {"image": "/data/upload/3/0a0b0c0d-bee 2.jpg", "id": 2,
              "outline": [{"points": [[10, 10], [50, 10], [30, 60]], "polygonlabels": ["wasp"],
                           "original_width": 100, "original_height": 50}]},
             {"image": "/data/upload/3/0a0b0c0e-bee 3.jpg", "id": 3}]  # not labelled yet
    folder = _folder(tmp_path, {"project/export-min.json": json.dumps(tasks)},
                     {"project/images/bee 1.jpg": (100, 50), "project/images/bee 2.jpg": (100, 50),
                      "project/images/bee 3.jpg": (100, 50)})
    _, table = _table(folder)
    assert _found(table) == {}
    rows = table.set_index("line")
    assert list(rows["image_path"]) == ["project/images/bee 1.jpg", "project/images/bee 2.jpg"]
    assert (rows.loc[1, "x_center"], rows.loc[1, "width"]) == pytest.approx((0.25, 0.3))
    assert rows.loc[2, "shape"] == "polygon" and rows.loc[2, "class_name"] == "wasp"


HUGE = "1e308"
INFINITE_FILES = {
    "yolo/labels/a.txt": f"0 0.5 0.5 {HUGE} 0.1\n",
    "yolo/data.yaml": "names: [x]\n",
    "dota/labelTxt/d.txt": f"0 0 {HUGE} 0 {HUGE} 10 0 10 plane\n",
    "cvat/annotations.xml": ('<?xml version="1.0"?><annotations><meta><task><labels><label><name>car</name></label>'
                             '</labels></task></meta>'
                             '<image id="0" name="c.jpg" width="inf" height="1e400">'
                             f'<box label="car" xtl="0" ytl="0" xbr="{HUGE}" ybr="10"/></image></annotations>'),
    "voc/v.xml": ("<annotation><filename>v.jpg</filename><size><width>inf</width><height>1e400</height></size>"
                  f"<object><name>car</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>{HUGE}</xmax><ymax>10</ymax>"
                  "</bndbox></object></annotation>"),
    "coco/instances.json": ('{"images": [{"id": 1, "file_name": "o.jpg", "width": 1e400, "height": 1e400}],'
                            f' "annotations": [{{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, {HUGE}, 10]}}],'
                            ' "categories": [{"id": 1, "name": "car"}]}'),
}


def test_infinite_and_huge_coordinates_are_findings_at_their_file_and_their_pictures_draw(tmp_path):
    """Coordinates of 1e308 (infinite once normalized or subtracted) and image sizes of inf or
    1e400, in every format: each a finding at its file, and the finding pictures still draw."""
    from imgassets.core.images.thumbnails import finding_pictures

    files = {**INFINITE_FILES, "label_studio/ls.json": json.dumps([_ls_task("/data/upload/1/abc-l.jpg", [
        _ls_result("rectanglelabels", {"x": 1e308, "y": 0, "width": 10, "height": 10, "rectanglelabels": ["bee"]},
                   size=(float("inf"), 50))])])}
    images = {"yolo/images/a.jpg": (64, 48), "dota/images/d.jpg": (64, 48), "cvat/c.jpg": (64, 48),
              "voc/v.jpg": (64, 48), "coco/o.jpg": (64, 48), "label_studio/l.jpg": (64, 48)}
    folder = _folder(tmp_path, files, images)
    _, table = _table(folder)
    findings = label_checks.LabelFindings.of(table)
    named = {f.file for found in findings.by_check.values() for f in found}
    assert named == {"yolo/labels/a.txt", "dota/labelTxt/d.txt", "cvat/annotations.xml", "voc/v.xml",
                     "coco/instances.json", "label_studio/ls.json"}
    assert all(len(f.reason) < 300 for found in findings.by_check.values() for f in found)  # no 300-digit numbers
    pictures = finding_pictures(folder, [f for found in findings.by_check.values() for f in found], table)
    assert pictures.count("data:image/jpeg;base64,") >= 5 and "cannot be drawn" not in pictures


def test_a_cvat_file_with_a_doctype_is_cvat_and_a_rotation_that_is_not_a_number_says_so():
    from imgassets.core.labels.formats.cvat import is_cvat, parse_cvat

    body = (b'<annotations><image id="0" name="a.jpg" width="10" height="10">'
            b'<box label="c" xtl="1" ytl="1" xbr="5" ybr="5" rotation="nan"/></image></annotations>')
    assert is_cvat(b'<?xml version="1.0"?>\n<!DOCTYPE annotations>\n' + body)
    assert is_cvat(b'<!DOCTYPE annotations [<!ELEMENT annotations ANY>]>\n' + body)
    assert not is_cvat(b"<!DOCTYPE annotation>\n<annotation><filename>a.jpg</filename></annotation>")
    [record] = parse_cvat(b"<!DOCTYPE annotations>\n" + body, "a.xml")
    assert record.error == "<box rotation='nan'>: the rotation is not a finite number of degrees"


def test_a_cvat_project_export_pairs_each_subsets_image_of_the_same_name(tmp_path):
    """A CVAT project export: ``images/<subset>/<name>`` with ``img0.jpg`` in Train and Validation,
    each ``<image>`` naming its subset; each box pairs with its own subset's image."""
    xml = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><project><labels><label><name>car</name></label><label><name>bus</name></label></labels></project></meta>
  <image id="0" name="img0.jpg" subset="Train" width="64" height="48">
    <box label="car" occluded="0" xtl="4" ytl="4" xbr="20" ybr="20"></box>
  </image>
  <image id="1" name="img0.jpg" subset="Validation" width="64" height="48">
    <box label="bus" occluded="0" xtl="30" ytl="10" xbr="60" ybr="40"></box>
  </image>
</annotations>
"""
    folder = _folder(tmp_path, {"export/annotations.xml": xml},
                     {"export/images/Train/img0.jpg": (64, 48), "export/images/Validation/img0.jpg": (64, 48)})
    (folder / "export/images/Validation/img0.jpg").write_bytes(jpeg_bytes((64, 48), color=(10, 20, 200)))
    _, table = _table(folder)
    pairs = dict(zip(table["image_path"], table["class_name"], strict=True))
    assert pairs == {"export/images/Train/img0.jpg": "car", "export/images/Validation/img0.jpg": "bus"}
