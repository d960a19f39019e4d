"""The snapshot manifest built column by column, and ids that follow a manifest's values only."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from imgassets.core.labels.table import build_label_table
from imgassets.core.versioning.manifest import SNAPSHOT_SCHEMA, manifest_id
from imgassets.core.versioning.snapshot import snapshot_table
from imgassets_tests.conftest import build_image_index, jpeg_bytes


def _folder(root: Path) -> Path:
    folder = root / "ana"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    (folder / "data.yaml").write_text("names: [cat, dog]\n")
    for stem, color in (("a", (10, 20, 30)), ("b", (200, 20, 30)), ("d", (10, 200, 30))):
        (folder / "images" / f"{stem}.jpg").write_bytes(jpeg_bytes(color=color))
    (folder / "images" / "c.jpg").write_bytes(jpeg_bytes(color=(9, 9, 9))[:300])  # truncated: rejected
    (folder / "labels" / "a.txt").write_text("1 0.5 0.5 0.2 0.2\n0 0.25 0.25 0.1 0.1\n1 0.75 0.5 0.2 0.4\n")
    (folder / "labels" / "c.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (folder / "labels" / "d.txt").write_text("")
    return folder


def _box(class_name: str, class_id: int, x: float, y: float, w: float, h: float) -> dict:
    return {"class_name": class_name, "class_id": class_id, "x_center": x, "y_center": y, "width": w, "height": h,
            "difficult": None, "truncated": None, "iscrowd": None}


def test_snapshot_table_gathers_each_valid_images_boxes_in_line_order(tmp_path):
    folder = _folder(tmp_path)
    index = build_image_index(folder)
    table = snapshot_table(index, build_label_table(folder, index))
    assert table.schema == SNAPSHOT_SCHEMA
    rows = table.to_pylist()
    assert [r["path"] for r in rows] == ["images/a.jpg", "images/b.jpg", "images/d.jpg"]  # c.jpg rejected, its box too
    assert rows[0]["boxes"] == [_box("dog", 1, 0.5, 0.5, 0.2, 0.2), _box("cat", 0, 0.25, 0.25, 0.1, 0.1),
                                _box("dog", 1, 0.75, 0.5, 0.2, 0.4)]
    assert rows[1]["boxes"] == [] and rows[2]["boxes"] == []
    by_path = index.set_index("path")
    assert [(r["sha256"], r["size_bytes"], r["width"], r["height"]) for r in rows] == [
        (by_path.at[p, "sha256"], by_path.at[p, "size_bytes"], 64, 48) for p in ("images/a.jpg", "images/b.jpg", "images/d.jpg")]


def test_manifest_id_follows_values_not_chunking_or_input_form(tmp_path):
    folder = _folder(tmp_path)
    index = build_image_index(folder)
    table = snapshot_table(index, build_label_table(folder, index))
    header = {"scientist": "ana"}
    same = [pa.Table.from_pylist(table.to_pylist(), schema=SNAPSHOT_SCHEMA),
            pa.concat_tables([table.slice(0, 1), table.slice(1, 1), table.slice(2)]),
            pa.concat_tables([table, table]).combine_chunks().slice(len(table))]  # buffers at an offset
    assert {manifest_id(t, header) for t in same} == {manifest_id(table, header)}
    rows = table.to_pylist()
    rows[0]["boxes"][2]["x_center"] = 0.7500001
    moved_box = pa.Table.from_pylist(rows, schema=SNAPSHOT_SCHEMA)
    rows = table.to_pylist()
    rows[0]["boxes"], rows[1]["boxes"] = rows[0]["boxes"][:2], rows[0]["boxes"][2:]  # same values, other image
    other_image = pa.Table.from_pylist(rows, schema=SNAPSHOT_SCHEMA)
    ids = [manifest_id(table, header), manifest_id(table, {"scientist": "bo"}), manifest_id(moved_box, header),
           manifest_id(other_image, header)]
    assert len(set(ids)) == 4 and all(len(i) == 16 for i in ids)


def test_manifest_id_tells_null_from_empty_and_ignores_bytes_under_nulls():
    def table(paths: list[str | None]) -> pa.Table:
        return pa.table({"path": pa.array(paths, pa.string()), "size_bytes": pa.array([1] * len(paths), pa.int64())})

    header = {"scientist": "ana"}
    null_first, empty_first, swapped = table([None, "a"]), table(["", "a"]), table(["a", None])
    assert len({manifest_id(t, header) for t in (null_first, empty_first, swapped)}) == 3
    # A null slot over non-empty bytes (as a filter or a cast can leave it) hashes as any other null.
    garbage = pa.Array.from_buffers(pa.string(), 2, [pa.py_buffer(bytes([0b10])), pa.py_buffer(
        pa.array([0, 3, 4], pa.int32()).to_numpy().tobytes()), pa.py_buffer(b"xyza")], null_count=1)
    assert garbage.to_pylist() == [None, "a"]
    same = pa.table({"path": garbage, "size_bytes": pa.array([1, 1], pa.int64())})
    assert manifest_id(same, header) == manifest_id(null_first, header)
