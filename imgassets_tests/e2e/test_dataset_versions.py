"""Dataset versions as a platform team uses them, each command a process with a timeout, on a drive
the demo builds: what changed between two versions, an image retracted (and left out though still on
the drive), a class registry that blocks an unknown name, a scientist folder that disappears, and a
garbage collection that keeps every version a model or a ref needs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from imgassets.core.drive.demo import build_demo_drive
from imgassets_tests.e2e.test_commands_real_drive import run_command

pytestmark = pytest.mark.slow


def _run(home: Path, drive: Path, **env: str) -> tuple[int, dict, str]:
    code, out, err, _ = run_command("run", "--json", "--smoke", "--home", str(home), "--shared-root", str(drive),
                                    env_extra=env, timeout=600)
    return code, json.loads(out) if out.strip() else {}, err


def _command(home: Path, *args: str, **env: str) -> tuple[int, str, str]:
    code, out, err, _ = run_command(*args, "--home", str(home), env_extra=env, timeout=300)
    return code, out, err


def test_diff_retract_registry_departed_and_gc_on_a_real_run(tmp_path):
    home, drive = tmp_path / "home", tmp_path / "drive"
    build_demo_drive(drive)
    ana = drive / "ana" / "street survey"
    code, first, err = _run(home, drive)
    assert code == 0, err[-3000:]

    # a second version: one image removed, one box added, one new image
    (ana / "images" / "ana_006.png").unlink()
    (ana / "labels" / "ana_006.txt").unlink()
    with open(ana / "labels" / "ana_005.txt", "a") as labels:
        labels.write("1 0.5 0.5 0.2 0.2\n")
    Image.open(ana / "images" / "ana_001.jpg").rotate(180).save(ana / "images" / "ana_new.jpg", quality=95)
    shutil.copy(ana / "labels" / "ana_001.txt", ana / "labels" / "ana_new.txt")
    code, second, err = _run(home, drive)
    assert code == 0, err[-3000:]
    assert second["dataset"]["previous_dataset_id"] == first["dataset"]["dataset_id"]
    assert (second["dataset"]["diff/added"], second["dataset"]["diff/removed"], second["dataset"]["diff/relabelled"]) \
        == (1, 1, 1)

    code, out, err = _command(home, "diff", "latest~1", "latest", "--json")
    assert code == 0, err
    changes = json.loads(out)
    assert changes["scientists"]["ana"] == {"added": 1, "removed": 1, "relabelled": 1}
    assert changes["examples"]["removed"] == ["ana/street survey/images/ana_006.png"]
    assert changes["split_changes"] == [] and changes["boxes"]["square"]["added"] >= 1
    code, out, _ = _command(home, "diff", "latest~1", "latest")
    assert "ana: +1 added, -1 removed, 1 re-labelled" in out and "split changes: none" in out
    code, out, _ = _command(home, "diff", "--scientist", "ana", "latest~1", "latest")
    assert code == 0 and "snapshot ana/" in out
    bens = [p.stem for p in (home / "objects" / "snapshots" / "ben").glob("*.parquet") if "." not in p.stem]
    code, out, err = _command(home, "diff", "--scientist", "ana", bens[0], "latest")
    assert (code, out) == (2, "") and f"snapshot {bens[0]} is not one of ana's: it is ben's" in err
    code, out, err = _command(home, "diff", "0123456789abcdef", "latest")
    assert code == 2 and "no dataset 0123456789abcdef" in err and "Traceback" not in err
    code, _, err = _command(home, "diff", "../etc", "latest")
    assert code == 2 and "'../etc' is not a dataset id" in err
    code, _, err = _command(home, "diff", "latest~7", "latest")
    assert code == 1 and "latest~7: the dataset history holds 2 version(s)" in err

    # retract a train image that stays on the drive: left out of the next dataset, its models named
    manifest = pd.read_parquet(home / "objects" / second["dataset"]["manifest_key"], columns=["scientist", "path", "split"])
    train = manifest[(manifest["scientist"] == "ana") & (manifest["split"] == "train")]["path"].sort_values()
    retracted = f"ana/{train.iloc[0]}"
    code, out, err = _command(home, "retract", retracted, "--reason", "consent withdrawn", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["images"] == 1 and record["asset_materialized"] is True
    assert {m["model_id"] for m in record["models_to_retrain"]} == {first["model"]["run_id"], second["model"]["run_id"]}
    code, out, _ = _command(home, "lineage", retracted)
    assert "RETRACTED" in out and "consent withdrawn" in out
    code, out, _ = _command(home, "models", "--json")
    assert {m["model_id"]: m["retracted_images"] for m in json.loads(out)} == {
        first["model"]["run_id"]: 1, second["model"]["run_id"]: 1}
    code, out, _ = _command(home, "models")
    assert out.count("trained on 1 image(s) retracted since: retrain it") == 2
    code, third, err = _run(home, drive)
    assert code == 0, err[-3000:]
    assert third["dataset"]["retracted_images_left_out"] == 1 and third["dataset"]["diff/removed"] == 1
    code, out, _ = _command(home, "retract", "ana/no/such.jpg", "--reason", "x")
    assert code == 2 and out == ""
    outside = tmp_path / "outside.txt"
    outside.write_text("not an image of any snapshot\n")
    for stranger in (str(outside), "0" * 64):  # a file no snapshot holds, a hash no snapshot holds
        code, out, err = _command(home, "retract", stranger, "--reason", "x")
        assert (code, out) == (2, "") and "is in no snapshot" in err, err
    assert len(list((home / "objects" / "retractions").glob("*.json"))) == 1  # nothing more recorded

    # a class registry: ids kept (the same three classes at the same ids), and an unknown name blocks
    registry = tmp_path / "classes.yaml"
    registry.write_text("classes:\n  0: circle\n  1: square\n")
    with open(ana / "labels" / "ana_007.txt", "a") as labels:
        labels.write("0 0.3 0.3 0.1 0.1\n")  # a change, so ana's checks run again
    code, blocked, err = _run(home, drive, IMGASSETS_CLASS_REGISTRY=str(registry))
    assert code == 1
    failed = [c for c in blocked["checks"] if c["name"] == "classes_in_registry" and not c["passed"]]
    assert failed and "class 'triangle' is not in the class registry" in failed[0]["findings"][0]["reason"]
    assert "class 'triangle' is not in the class registry" in err
    registry.write_text("classes:\n  0: circle\n  1: {name: square, aliases: [box]}\n  2: triangle\n")
    code, fourth, err = _run(home, drive, IMGASSETS_CLASS_REGISTRY=str(registry))
    assert code == 0, err[-3000:]
    assert fourth["dataset"]["class_registry"].startswith("registries/")

    # a scientist folder that disappears: retracted at once with a grace period of 0 days
    shutil.rmtree(drive / "chloe")
    code, fifth, err = _run(home, drive, IMGASSETS_DEPARTED_POLICY="retract", IMGASSETS_DEPARTED_GRACE_DAYS="0")
    assert code == 0, err[-3000:]
    assert [d["scientist"] for d in fifth["dataset"]["departed_scientists"]] == ["chloe"]
    assert "chloe" not in fifth["dataset"]["snapshots"]
    code, out, _ = run_command("run", "--smoke", "--home", str(home), "--shared-root", str(drive),
                               env_extra={"IMGASSETS_DEPARTED_POLICY": "retract", "IMGASSETS_DEPARTED_GRACE_DAYS": "0"},
                               timeout=600)[:3]
    assert "departed chloe" in out

    # garbage collection: every dataset here has a model, so every version stays; then it runs for real
    code, out, err = _command(home, "gc", "--dry-run", "--json", "--grace-hours", "0", "--keep-datasets", "1")
    assert code == 0, err
    plan = json.loads(out)
    for run in (first, second, third, fourth, fifth):
        assert run["dataset"]["dataset_id"] in plan["retained_datasets"]
    code, out, err = _command(home, "gc", "--grace-hours", "0", "--keep-datasets", "1", "--keep-snapshots", "1")
    assert code == 0 and "deleted" in out and "grace period under" in err
    code, out, err = _command(home, "pull", "latest~1", str(tmp_path / "staged"))
    assert code == 0, err
