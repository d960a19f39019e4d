"""What a real share holds never stops a scientist, nothing is written where it must not be, every
manifest is checked against its id: each command as a process on copies of the real datasets, the
shared root compared byte for byte and mtime for mtime before and after."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imgassets.core.images.index import PARALLEL_THRESHOLD
from imgassets.core.versioning.manifest import METADATA_KEY
from imgassets_tests.conftest import shared_data_dir
from imgassets_tests.e2e.test_commands_real_drive import coco128_folder, run_command

SMOKE = ["--epochs", "1", "--imgsz", "64", "--batch", "8", "--device", "cpu", "--workers", "0"]
LATIN1_IMAGE = b"images/train2017/na\xefve.jpg"
LATIN1_LABEL = b"labels/train2017/na\xefve.txt"
ORPHAN_LABEL = b"labels/train2017/gon\xe9.txt"


def drive_state(root: Path) -> dict[bytes, tuple]:
    """Every entry under ``root`` (names as bytes, links not followed): its kind, mode, mtime_ns
    and, for a file, its SHA-256. Equal before and after a command: nothing was created, changed
    or deleted, not even a folder's mtime."""
    state: dict[bytes, tuple] = {}
    base = os.fsencode(root)
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            digest = hashlib.sha256(open(path, "rb").read()).hexdigest() if stat.S_ISREG(info.st_mode) else None
            state[os.path.relpath(path, base)] = (stat.S_IFMT(info.st_mode), info.st_mode, info.st_mtime_ns, digest)
    state[b"."] = (os.lstat(base).st_mtime_ns,)
    return state


@pytest.fixture(scope="module")
def latin1_run(tmp_path_factory):
    """coco128 as ``ana`` (above the index's pool threshold) with one image and its label renamed to a
    Latin-1 name, a Latin-1 note and a Latin-1 label file with no image; one ``imgassets run``."""
    tmp = tmp_path_factory.mktemp("latin1")
    drive, home = tmp / "drive", tmp / "home"
    folder = coco128_folder(drive / "ana")
    assert len(list(folder.rglob("*.jpg"))) >= 2 * PARALLEL_THRESHOLD
    base = os.fsencode(folder)
    os.rename(base + b"/images/train2017/000000000009.jpg", base + b"/" + LATIN1_IMAGE)
    os.rename(base + b"/labels/train2017/000000000009.txt", base + b"/" + LATIN1_LABEL)
    with open(base + b"/notes\xff.md", "wb") as handle:
        handle.write(b"shot on the Samba share\n")
    with open(base + b"/" + ORPHAN_LABEL, "wb") as handle:
        handle.write(b"0 0.5 0.5 0.2 0.2\n")
    before = drive_state(drive)
    code, out, err, _ = run_command("run", "--json", "--shared-root", str(drive), "--home", str(home), *SMOKE)
    return drive, home, before, code, out, err


@pytest.mark.slow
def test_a_name_that_is_not_utf8_is_ingested_like_any_other(latin1_run):
    drive, home, before, code, out, err = latin1_run
    assert code == 0, err[-3000:]
    assert drive_state(drive) == before
    summary = json.loads(out)
    [ana] = summary["scientists"]
    assert ana["images_valid"] == 128 and ana["rejected"] == []
    manifest = pq.read_table(home / "objects" / "snapshots" / "ana" / f"{ana['snapshot_id']}.parquet").to_pylist()
    [naive] = [row for row in manifest if row["path"] == "images/train2017/na\\xefve.jpg"]
    boxes = open(os.fsencode(drive / "ana") + b"/" + LATIN1_LABEL, "rb").read().decode().strip().splitlines()
    assert len(naive["boxes"]) == len(boxes) > 0
    assert naive["sha256"] == hashlib.sha256(open(os.fsencode(drive / "ana") + b"/" + LATIN1_IMAGE, "rb").read()).hexdigest()
    index = pq.read_table(home / "storage" / "image_index" / "ana.parquet").column("path").to_pylist()
    assert "notes\\xff.md" in index
    [orphans] = [c for c in summary["checks"] if c["name"] == "label_files_have_images"]
    assert any(f["file"] == "labels/train2017/gon\\xe9.txt" for f in orphans["findings"])  # readable, lossless

    native = os.fsdecode(os.fsencode(drive / "ana") + b"/" + LATIN1_IMAGE)  # as a shell passes the file
    for argument in (native, "ana/images/train2017/na\\xefve.jpg", os.fsdecode(b"ana/" + LATIN1_IMAGE)):
        code, out, err, _ = run_command("lineage", argument, "--home", str(home), "--json")
        assert code == 0, err
        [found] = json.loads(out)
        assert found["sha256"] == naive["sha256"]
        assert [s["path"] for s in found["snapshots"]] == ["images/train2017/na\\xefve.jpg"]
        assert [d["dataset_id"] for d in found["datasets"]] == [summary["dataset"]["dataset_id"]]


def _rewrite(path: Path, change) -> None:
    table = pq.read_table(path)
    table, meta = change(table, json.loads(table.schema.metadata[METADATA_KEY]))
    sink = io.BytesIO()
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()}), sink)
    path.chmod(0o644)
    path.write_bytes(sink.getvalue())


def _poisoned_split(table, meta):
    del meta["id_scheme"]
    splits = table.column("split").to_pylist()
    splits[splits.index("val")] = "train"
    return table.set_column(table.schema.get_field_index("split"), "split", pa.array(splits)), meta


def _poisoned_box(table, meta):
    del meta["id_scheme"]
    rows = table.to_pylist()
    box_row = next(row for row in rows if row["boxes"])
    box_row["boxes"][0]["class_name"] = "toothbrush"
    return pa.Table.from_pylist(rows, schema=table.schema), meta


@pytest.mark.slow
def test_a_manifest_whose_footer_lost_its_id_scheme_is_refused(latin1_run, tmp_path):
    drive, home, _, code, out, _ = latin1_run
    assert code == 0
    summary = json.loads(out)
    poisoned = tmp_path / "home"
    shutil.copytree(home, poisoned, symlinks=True)
    dataset_id = summary["dataset"]["dataset_id"]
    _rewrite(poisoned / "objects" / "datasets" / dataset_id / "manifest.parquet", _poisoned_split)
    code, out, err, _ = run_command("pull", dataset_id, str(tmp_path / "dest"), "--home", str(poisoned))
    assert code == 1 and f"datasets/{dataset_id}/manifest.parquet: its footer records no id scheme" in err, err
    assert not (tmp_path / "dest" / "images").exists()

    snapshot_id = summary["scientists"][0]["snapshot_id"]
    _rewrite(poisoned / "objects" / "snapshots" / "ana" / f"{snapshot_id}.parquet", _poisoned_box)
    before = drive_state(drive)
    code, out, err, _ = run_command("run", "--json", "--shared-root", str(drive), "--home", str(poisoned), *SMOKE)
    assert code == 1, err[-3000:]
    assert f"snapshots/ana/{snapshot_id}.parquet: its footer records no id scheme" in out
    assert json.loads(out)["model"] is None  # nothing trained on the poisoned snapshot
    assert drive_state(drive) == before


def test_a_refused_home_inside_the_shared_root_writes_nothing(tmp_path):
    drive = tmp_path / "drive"
    shutil.copytree(shared_data_dir() / "bccd_voc", drive / "erin")
    before = drive_state(drive)
    code, out, err, _ = run_command("run", "--shared-root", str(drive), "--home", str(drive / "erin" / "myhome"))
    assert code == 2 and "must not be inside the shared drive root" in err, err
    assert drive_state(drive) == before  # no myhome/dagster left behind, no folder mtime changed

    nohome = tmp_path / "nohome"
    for args in (["pull", "latest", str(tmp_path / "dest")], ["lineage", "images/a.jpg"], ["models"]):
        code, out, err, _ = run_command(*args, "--home", str(nohome))
        assert code == 2 and f"home {nohome} holds no object store" in err, (args, err)
    assert not nohome.exists() and not (tmp_path / "dest").exists()


@pytest.mark.slow
def test_a_pull_into_the_shared_root_is_refused(latin1_run):
    drive, home, _, code, _, _ = latin1_run
    assert code == 0
    before = drive_state(drive)
    code, _, err, _ = run_command("pull", "latest", str(drive / "ana" / "pulled"), "--home", str(home),
                                  env_extra={"IMGASSETS_SHARED_ROOT": str(drive)})
    assert code == 2 and "is inside the shared drive root" in err, err
    assert drive_state(drive) == before


@pytest.mark.slow
def test_csv_boxes_follow_the_rule_of_every_format(tmp_path):
    """deepforest's CSV labels (its XML removed): a row for a missing image warns at its line, the
    rows of a rejected image are left out with its reason, nothing blocks, no null box is stored."""
    drive, home = tmp_path / "drive", tmp_path / "home"
    folder = drive / "ana"
    shutil.copytree(shared_data_dir() / "deepforest", folder)
    for xml in folder.glob("*.xml"):
        xml.unlink()
    with open(folder / "testfile_deepforest.csv", "a") as handle:
        handle.write("gone.png,10,10,50,50,Tree\n")
    lines = (folder / "testfile_deepforest.csv").read_text().count("\n")
    (folder / "SOAP_061.png").write_bytes((folder / "SOAP_061.png").read_bytes()[:20000])  # truncated
    before = drive_state(drive)
    code, out, err, _ = run_command("run", "--json", "--shared-root", str(drive), "--home", str(home), *SMOKE)
    assert code == 0, err[-3000:]
    assert drive_state(drive) == before
    summary = json.loads(out)
    checks = {c["name"]: c for c in summary["checks"]}
    assert all(c["passed"] for c in checks.values() if c["blocking"])
    findings = {(f["file"], f["line"], f["code"]) for f in checks["label_files_have_images"]["findings"]}
    assert ("testfile_deepforest.csv", lines, "label_without_image") in findings
    [left_out] = [f for f in checks["label_files_have_images"]["findings"] if f["code"] == "label_image_rejected"]
    assert left_out["file"] == "testfile_multi.csv" and left_out["line"] == 2
    assert left_out["reason"].startswith("its image SOAP_061.png is left out (corrupt: ")
    manifest = pq.read_table(home / "objects" / "snapshots" / "ana" / f"{summary['scientists'][0]['snapshot_id']}.parquet")
    rows = manifest.to_pylist()
    assert "SOAP_061.png" not in {r["path"] for r in rows}
    boxes = [b for r in rows for b in r["boxes"]]
    assert boxes and all(None not in (b["x_center"], b["y_center"], b["width"], b["height"]) for b in boxes)
