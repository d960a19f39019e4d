"""Pascal VOC and COCO into the one label table: real datasets (bccd_voc, deepforest) and planted
cases, each quirk asserted with the reason a scientist would read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from imgassets.core.labels import checks as label_checks
from imgassets.core.labels.table import LabelTableSchema, build_label_table
from imgassets_tests.conftest import build_image_index, jpeg_bytes, shared_data_dir, tree_hashes


def _table(folder: Path):
    index = build_image_index(folder)
    return index, build_label_table(folder, index)


@pytest.fixture(scope="module")
def bccd():
    folder = shared_data_dir() / "bccd_voc"
    before = tree_hashes(folder)
    index, table = _table(folder)
    assert tree_hashes(folder) == before  # read only
    return folder, index, table


def test_bccd_every_object_becomes_a_row_with_its_class(bccd):
    folder, index, table = bccd
    objects = sum(len(re.findall(r"<object>", p.read_text())) for p in (folder / "Annotations").glob("*.xml"))
    assert len(table) == objects and set(table["label_format"]) == {"voc"}
    assert set(table["class_name"]) == {"RBC", "WBC", "Platelets"}
    assert table["image_path"].notna().all() and table["image_path"].str.startswith("JPEGImages/").all()
    assert ((index["kind"] == "image") & (index["status"] == "ok")).sum() == 364


def test_bccd_zero_size_boxes_are_reported_by_file_and_line(bccd):
    folder, _, table = bccd
    expected = set()
    for path in (folder / "Annotations").glob("*.xml"):
        text = path.read_text()
        for match in re.finditer(r"<object>.*?</object>", text, re.S):
            box = {k: int(re.search(rf"<{k}>(\d+)</{k}>", match.group()).group(1)) for k in ("xmin", "xmax", "ymin", "ymax")}
            if box["xmin"] == box["xmax"] or box["ymin"] == box["ymax"]:
                expected.add((f"Annotations/{path.name}", text.count("\n", 0, match.start()) + 1))
    findings = label_checks.geometry_failures(table)
    assert expected and {(f.file, f.line) for f in findings} == expected
    assert all(f.reason.startswith("zero-area box") for f in findings)


def test_bccd_mixed_tab_space_xml_parses_cleanly(bccd):
    _, _, table = bccd
    assert label_checks.schema_failures(table) == [] and label_checks.frame_failures(table) == []


def test_deepforest_voc_pairs_by_filename_and_keeps_names_with_spaces():
    folder = shared_data_dir() / "deepforest"
    index, table = _table(folder)
    counts = table[table["label_format"] == "voc"].groupby("image_path").size().to_dict()
    for xml in folder.glob("*.xml"):
        text = xml.read_text()
        named = re.search(r"<filename>([^<]+)</filename>", text).group(1)
        assert counts[named] == text.count("<object>")
    assert "OSBS_029.tif" in counts and "OSBS_029.png" not in counts  # the XML names the .tif
    images = index[index["kind"] == "image"]
    spaced = images[images["path"] == "AWPE Pigeon Lake 2020 DJI_0005.JPG"]
    assert len(spaced) == 1 and spaced["status"].iloc[0] == "ok" and spaced["format"].iloc[0] == "JPEG"
    LabelTableSchema.validate(table)


def _voc_xml(filename: str, size: tuple[int, int], boxes: list[tuple], extra: str = "") -> str:
    objects = "".join(
        f"\t<object>\n\t\t<name>{n}</name>\n    <difficult>{d}</difficult>\n\t\t<truncated>0</truncated>\n"
        f"\t\t<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>\n\t</object>\n"
        for n, x0, y0, x1, y1, d in boxes)
    return (f"<annotation>\n\t<filename>{filename}</filename>{extra}\n\t<size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>\n{objects}</annotation>\n")


def test_voc_conversion_follows_ultralytics_and_keeps_flags(tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes((64, 48)))
    (tmp_path / "a.xml").write_text(_voc_xml("a.jpg", (64, 48), [("cat", 11, 5, 43, 29, 1), ("dog", 1, 1, 64, 48, 0)]))
    _, table = _table(tmp_path)
    first = table.iloc[0]
    assert (first.x_center, first.y_center, first.width, first.height) == pytest.approx((
        ((11 + 43) / 2 - 1) / 64, ((5 + 29) / 2 - 1) / 48, 32 / 64, 24 / 48))
    assert (first.difficult, first.truncated, first.line, first.class_name) == (1, 0, 4, "cat")
    assert label_checks.blocking_findings(table) == []


def test_voc_in_the_unrotated_frame_of_an_exif_rotated_image_is_flagged(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "r.jpg").write_bytes(jpeg_bytes((64, 48), exif=exif.tobytes()))  # displayed 48x64
    (tmp_path / "r.xml").write_text(_voc_xml("r.jpg", (64, 48), [("cat", 40, 5, 60, 20, 0)]))
    _, table = _table(tmp_path)
    findings = label_checks.frame_failures(table)
    assert [f.file for f in findings] == ["r.xml"]
    assert "un-rotated frame of an image displayed 48x64 (EXIF orientation 6)" in findings[0].reason


@pytest.mark.parametrize("content,reason", [
    ("<annotation><filename>a.jpg", "not well-formed XML"),
    ("<svg></svg>", "not a Pascal VOC file: root element is <svg>"),
    (_voc_xml("a.jpg", (64, 48), [("cat", "x", 1, 2, 3, 0)]), "<bndbox> needs numeric"),
])
def test_bad_voc_files_are_reported(tmp_path, content, reason):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "a.xml").write_text(content)
    _, table = _table(tmp_path)
    findings = label_checks.schema_failures(table)
    assert findings and findings[0].file == "a.xml" and reason in findings[0].reason


def _coco(tmp_path: Path, images: list[dict], annotations: list[dict], name: str = "annotations/instances.json") -> None:
    categories = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 7, "name": "truck"}]
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))


def test_coco_non_contiguous_ids_subfolders_and_iscrowd(tmp_path):
    (tmp_path / "images" / "day 1").mkdir(parents=True)
    (tmp_path / "images" / "day 1" / "a.jpg").write_bytes(jpeg_bytes((64, 48)))
    (tmp_path / "images" / "b.jpg").write_bytes(jpeg_bytes((64, 48), color=(5, 5, 5)))
    _coco(tmp_path, [{"id": 10, "file_name": "images/day 1/a.jpg", "width": 64, "height": 48},
                     {"id": 11, "file_name": "images/b.jpg", "width": 64, "height": 48}],
          [{"id": 1, "image_id": 10, "category_id": 7, "bbox": [16, 12, 32, 24], "iscrowd": 0},
           {"id": 2, "image_id": 10, "category_id": 3, "bbox": [0, 0, 8, 8], "iscrowd": 1}], name="result.json")
    _, table = _table(tmp_path)
    assert list(table["class_name"]) == ["truck", "car"] and list(table["class_id"]) == [7, 3]
    assert list(table["iscrowd"]) == [0, 1] and set(table["image_path"]) == {"images/day 1/a.jpg"}
    assert tuple(table.iloc[0][["x_center", "y_center", "width", "height"]]) == pytest.approx((0.5, 0.5, 0.5, 0.5))
    assert label_checks.blocking_findings(table) == []


def test_coco_faults_are_reported(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(jpeg_bytes((64, 48)))
    (tmp_path / "notes.json").write_text('{"owner": "ana"}')  # not COCO: ignored
    _coco(tmp_path, [{"id": 1, "file_name": "../images/a.jpg", "width": 64, "height": 48},
                     {"id": 2, "file_name": "../../../etc/passwd", "width": 64, "height": 48},
                     {"id": 3, "file_name": "images/missing.jpg", "width": 64, "height": 48},
                     {"id": 4, "file_name": "images/a.jpg", "width": 640, "height": 480}],
          [{"image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]},
           {"image_id": 2, "category_id": 1, "bbox": [1, 1, 10, 10]},
           {"image_id": 3, "category_id": 1, "bbox": [1, 1, 10, 10]},
           {"image_id": 99, "category_id": 1, "bbox": [1, 1, 10, 10]},
           {"image_id": 1, "category_id": 2, "bbox": [1, 1, 10, 10]},
           {"image_id": 4, "category_id": 1, "bbox": [1, 1, 10, 10]}])
    _, table = _table(tmp_path)
    schema = {(f.line, f.reason) for f in label_checks.schema_failures(table)}
    assert (2, "image reference '../../../etc/passwd' escapes the scientist's folder") in schema
    assert (4, "annotation 4 refers to no image in 'images'") in schema
    assert [f.reason for f in label_checks.class_map_failures(table)] == [
        "class id 2 is not in the class map annotations/instances.json"]
    assert [f.reason for f in label_checks.orphan_label_files(table)] == [
        "no image images/missing.jpg found for this label file (1 boxes unused)"]
    frame = label_checks.frame_failures(table)
    assert frame[0].reason == "declares image size 640x480 but the image is 64x48"
    assert set(table["label_file"]) == {"annotations/instances.json"}


def test_deepforest_xml_and_csv_agree_or_disagree_per_image():
    """SOURCES.md: "XML and CSV disagree on the number of boxes" -- reported, blocking, per image;
    where they agree (same boxes, 1-based vs 0-based corners) one copy is used."""
    _, table = _table(shared_data_dir() / "deepforest")
    conflicts = label_checks.source_conflicts(table)
    assert [f.file for f in conflicts] == ["2019_YELL_2_541000_4977000_image_crop.png"]
    assert conflicts[0].reason == ("annotated by 2 label files that disagree: 2019_YELL_2_541000_4977000_image_crop.xml "
                                   "(279 boxes), example.csv (79 boxes); keep one")
    superseded = table[table["superseded_by"].notna()].groupby("label_file")["superseded_by"].first().to_dict()
    assert superseded == {"OSBS_029.xml": "OSBS_029.csv", "testfile_multi.csv": "SOAP_061.xml"}
    assert (table["label_file"] == "classes.csv").sum() == 0  # not a box table: ignored


def test_csv_labels_convert_from_zero_based_corners(tmp_path):
    (tmp_path / "a.png").write_bytes(_png(64, 48))
    (tmp_path / "boxes.csv").write_text("image_path,xmin,ymin,xmax,ymax,label\na.png,16,12,48,36,Tree\nb.png,1,1,2,2,Tree\n")
    _, table = _table(tmp_path)
    row = table[table["image_path"] == "a.png"].iloc[0]
    assert (row.x_center, row.y_center, row.width, row.height, row.line) == (0.5, 0.5, 0.5, 0.5, 2)
    assert [f.reason for f in label_checks.orphan_label_files(table)] == ["no image b.png found for this label file (1 boxes unused)"]


def _png(width: int, height: int) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (9, 99, 9)).save(buffer, "PNG")
    return buffer.getvalue()
