"""``imgassets run`` as a user runs it: a subprocess, its exit code, its JSON summary."""

from __future__ import annotations

import json
import subprocess
import sys

import dagster as dg
import pytest

from imgassets.core.drive.demo import IMAGES_PER_SCIENTIST
from imgassets.core.versioning.splits import MIN_BENCHMARK_IMAGES_PER_CLASS
from imgassets_tests.conftest import command_env, jpeg_bytes


def run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = command_env()
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "imgassets.cli", *args], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.slow
def test_run_json_on_the_demo_drive(tmp_path):
    home = tmp_path / "home"
    proc = run_cli("run", "--json", "--home", str(home))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["ok"] is True and summary["exit_code"] == 0
    assert summary["shared_root"] == str(home / "demo-drive")
    assert [s["name"] for s in summary["scientists"]] == ["ana", "ben", "chloe"]
    for scientist in summary["scientists"]:
        assert scientist["images_found"] == scientist["images_valid"] == IMAGES_PER_SCIENTIST
        assert scientist["rejected"] == [] and scientist["boxes"] > 0 and len(scientist["snapshot_id"]) == 16
    dataset = summary["dataset"]
    assert dataset["images_train"] + dataset["images_val"] + dataset["images_benchmark"] == 3 * IMAGES_PER_SCIENTIST
    assert dataset["images_benchmark"] >= 3 * MIN_BENCHMARK_IMAGES_PER_CLASS // 2  # three classes, shared images
    assert summary["dataset"]["classes"] == 3
    model = summary["model"]
    assert (home / "objects" / model["model_key"]).is_file()
    assert model["model_key"].startswith(f"models/{summary['dataset']['dataset_id']}/")
    assert set(model["metrics"]) == {"mAP50", "mAP50-95", "precision", "recall"}
    evaluation = summary["evaluation"]
    assert evaluation["evaluation_key"] == model["model_key"].replace("best.pt", "evaluation.parquet")
    import pandas as pd

    per_image = pd.read_parquet(home / "objects" / evaluation["evaluation_key"])
    # one row per validation image, and per benchmark image with its quality signals and bucket
    assert per_image["split"].value_counts().to_dict() == {"val": summary["dataset"]["images_val"],
                                                           "benchmark": summary["dataset"]["images_benchmark"]}
    val = per_image[per_image["split"] == "val"]
    assert evaluation["missed_boxes"] == int(val["missed"].sum())
    assert (per_image["matched"] + per_image["missed"] == per_image["labelled"]).all()
    benchmark_rows = per_image[per_image["split"] == "benchmark"]
    assert benchmark_rows["brightness"].between(0, 1).all() and benchmark_rows["quality"].notna().all()
    assert evaluation["reference_mAP50-95"] is not None and set(evaluation["error_types"]) == {
        "classification", "localization", "both", "duplicate", "background", "missed"}
    checks = summary["checks"]
    assert len(checks) == 3 * 13 + 4 + 3  # thirteen per scientist, four on the dataset, three on the model
    assert {c["name"]: c["passed"] for c in checks if c["partition"] == "ana"}["classes_in_registry"]  # none set
    model_checks = {c["name"]: c for c in checks if c["asset"] in ("yolo_model", "model_evaluation")}
    assert model_checks["weights_predict"]["passed"] and model_checks["beats_champion"]["passed"]
    dataset_checks = {c["name"]: c for c in checks if c["asset"] == "training_dataset"}
    assert dataset_checks["no_split_leakage"]["passed"] and dataset_checks["no_split_leakage"]["blocking"]
    assert {(c["name"], c["partition"], c["passed"], c["severity"]) for c in checks if c["partition"] == "ben"} >= {
        ("box_geometry", "ben", True, "ERROR"), ("images_decode", "ben", True, "WARN")}
    assert "scientist ana: index, labels, checks, snapshot" in proc.stderr
    assert "imgassets: indexing ana: 65/65" in proc.stderr  # progress, plain lines when not a terminal
    assert "imgassets: training: 1/1  box_loss" in proc.stderr and "training: 2/1" not in proc.stderr
    assert "this epoch: val mAP50" in proc.stderr  # told apart from best.pt validated again after training

    # Lineage: which snapshots, datasets and models include this image file?
    image = home / "demo-drive" / "ana" / "street survey" / "images" / "ana_001.jpg"
    traced = run_cli("lineage", str(image), "--home", str(home), "--json")
    assert traced.returncode == 0, traced.stderr
    [found] = json.loads(traced.stdout)
    assert [(s["scientist"], s["path"]) for s in found["snapshots"]] == [("ana", "street survey/images/ana_001.jpg")]
    assert [d["dataset_id"] for d in found["datasets"]] == [summary["dataset"]["dataset_id"]]
    assert [m["keys"]["best.pt"] for m in found["models"]] == [model["model_key"]]
    by_path = run_cli("lineage", "ana/street survey/images/ana_001.jpg", "--home", str(home))
    assert f"model {model['run_id']} on dataset {summary['dataset']['dataset_id']}" in by_path.stdout
    models = json.loads(run_cli("models", "--home", str(home), "--json").stdout)
    assert [m["model_id"] for m in models] == [model["run_id"]]
    assert set(models[0]["keys"]) == {"best.pt", "last.pt", "results.csv", "args.yaml"}
    assert models[0]["snapshots"] == {s["name"]: s["snapshot_id"] for s in summary["scientists"]}
    assert models[0]["images_per_second"] > 0 and set(models[0]["per_class_map50_95"]) <= {"circle", "square", "triangle"}

    # The runs were recorded in a persistent instance, so `dagster dev` on this home shows them.
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        jobs = sorted(run.job_name for run in instance.get_runs())
        training_run = next(run for run in instance.get_runs() if run.job_name == "training_job")
        epochs = [e.user_message for e in instance.all_logs(training_run.run_id) if e.user_message.startswith("epoch ")]
        assert len(epochs) == 1 and epochs[0].startswith("epoch 1/1: box_loss")  # live in the run's log in the UI
    assert jobs == ["scientist_job"] * 3 + ["training_job"]


@pytest.mark.slow  # processes, servers or a timed race: the full suite runs it
def test_run_exits_1_and_names_the_check_scientist_and_file_when_blocked(tmp_path):
    drive = tmp_path / "drive"
    (drive / "dora" / "images").mkdir(parents=True)
    (drive / "dora" / "images" / "a.jpg").write_bytes(jpeg_bytes())
    (drive / "dora" / "images" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n5 0.5 0.5 0.2 0.2\n")
    (drive / "dora" / "images" / "classes.txt").write_text("cat\n")
    proc = run_cli("run", "--json", "--shared-root", str(drive), "--home", str(tmp_path / "home"))
    assert proc.returncode == 1, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["scientists"][0]["blocked_by"] == ["class_ids_in_class_map"]
    assert summary["model"] is None and summary["training_skipped"] == (
        "no scientist's run succeeded: dora blocked by class_ids_in_class_map")
    assert summary["left_out"] == [{"scientist": "dora", "reason": "blocked by class_ids_in_class_map",
                                    "snapshot_used": None}]
    failing = [c for c in summary["checks"] if not c["passed"]]
    assert failing[0]["findings"] == [{"file": "images/a.txt", "line": 2,
                                       "reason": "class id 5 is not in the class map images/classes.txt",
                                       "code": "unknown_class"}]

    text = run_cli("run", "--shared-root", str(drive), "--home", str(tmp_path / "home"))
    assert text.returncode == 1
    assert "BLOCKING class_ids_in_class_map on dora" in text.stdout
    assert "images/a.txt:2: class id 5 is not in the class map images/classes.txt" in text.stdout
    # stderr carries what stopped the run, as file:line: reason, and no Dagster traceback ...
    assert "scientist dora blocked by class_ids_in_class_map (1 finding(s)):" in text.stderr
    assert "images/a.txt:2: class id 5 is not in the class map images/classes.txt" in text.stderr
    assert "Stack Trace" not in text.stderr and "ERROR" not in text.stderr, text.stderr
    # ... which --verbose adds
    verbose = run_cli("run", "--verbose", "--shared-root", str(drive), "--home", str(tmp_path / "home"))
    assert verbose.returncode == 1 and "DagsterAssetCheckFailedError" in verbose.stderr


@pytest.mark.parametrize("args,message", [
    (["--shared-root", "/nonexistent/drive"], "shared drive root /nonexistent/drive does not exist"),
    (["--model", "missing-weights.pt"], "weights file missing-weights.pt not found"),
    (["--val-fraction", "1.5"], "--val-fraction must be between 0 and 1"),
])
def test_bad_configuration_exits_2_with_a_clear_message(tmp_path, args, message):
    proc = run_cli("run", "--home", str(tmp_path / "home"), *args)
    assert proc.returncode == 2
    assert message in proc.stderr


@pytest.mark.parametrize("variable,value", [("IMGASSETS_CHAMPION_MARGIN", "abc"), ("IMGASSETS_REVIEW_FOLDS", "two"),
                                            ("IMGASSETS_BURST_SECONDS", "-1")])
def test_a_policy_setting_that_cannot_work_exits_2_before_anything_is_made(tmp_path, variable, value):
    (tmp_path / "drive" / "ana").mkdir(parents=True)
    for command in ("run", "ui"):
        proc = run_cli(command, "--home", str(tmp_path / "home"), "--shared-root", str(tmp_path / "drive"),
                       env_extra={variable: value})
        assert proc.returncode == 2 and proc.stderr.startswith("imgassets: error: ") and variable in proc.stderr
        assert "Traceback" not in proc.stderr and not (tmp_path / "home").exists()


def test_empty_shared_root_exits_2(tmp_path):
    (tmp_path / "drive").mkdir()
    proc = run_cli("run", "--home", str(tmp_path / "home"), "--shared-root", str(tmp_path / "drive"))
    assert proc.returncode == 2 and "has no scientist folders" in proc.stderr


def test_home_inside_the_shared_root_exits_2(tmp_path):
    proc = run_cli("run", "--home", str(tmp_path / "home"), "--shared-root", str(tmp_path))
    assert proc.returncode == 2 and "must not be inside the shared drive root" in proc.stderr


def test_bad_usage_exits_2(tmp_path):
    proc = run_cli("run", "--epochs", "0")
    assert proc.returncode == 2 and "must be a positive integer" in proc.stderr


def _stored_dataset(store, drive):
    """A 4-image dataset of one scientist committed to ``store``, marked latest; its id."""
    from imgassets.core.labels.table import build_label_table
    from imgassets.core.versioning.dataset import merge_snapshots
    from imgassets.core.versioning.dataset_store import store_dataset
    from imgassets.core.versioning.refs import write_latest_ref
    from imgassets.core.versioning.snapshot import commit_snapshot, load_snapshot
    from imgassets_tests.conftest import build_image_index, snapshot_records

    folder = drive / "ana"
    folder.mkdir(parents=True)
    (folder / "classes.txt").write_text("cat\n")
    for i in range(4):
        (folder / f"{i}.jpg").write_bytes(jpeg_bytes(color=(i * 30, 0, 0)))
        (folder / f"{i}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    index = build_image_index(folder)
    result = commit_snapshot(store, "ana", folder, snapshot_records(index, build_label_table(folder, index)))
    dataset = merge_snapshots({"ana": (result.snapshot_id, load_snapshot(store, result.manifest_key))})
    store_dataset(store, dataset)
    write_latest_ref(store, dataset.dataset_id)
    return dataset.dataset_id


def test_pull_latest_twice_downloads_once(tmp_path):
    from imgassets.core.store.local import LocalObjectStore

    dataset_id = _stored_dataset(LocalObjectStore(tmp_path / "home" / "objects"), tmp_path / "drive")
    first = run_cli("pull", "latest", str(tmp_path / "a"), "--home", str(tmp_path / "home"), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["downloaded"] == 4
    second = run_cli("pull", dataset_id, str(tmp_path / "b"), "--home", str(tmp_path / "home"))
    assert second.returncode == 0
    assert f"dataset {dataset_id}: 4 images" in second.stdout and "(0 downloaded, 4 from cache" in second.stdout
    missing = run_cli("pull", "feedfacefeedface", str(tmp_path / "c"), "--home", str(tmp_path / "home"))
    assert missing.returncode == 1 and "datasets/feedfacefeedface/manifest.parquet not found" in missing.stderr


def test_pull_from_the_production_store_without_loading_dagster(tmp_path, s3_store):
    """``IMGASSETS_DEPLOYMENT=production``: the CLI opens the S3 store from the same settings the
    Dagster resources read, over HTTP, and never imports Dagster (2 s of a warm pull)."""
    from imgassets_tests.conftest import S3_ACCESS_KEY, S3_SECRET_KEY

    dataset_id = _stored_dataset(s3_store, tmp_path / "drive")
    env = {"IMGASSETS_DEPLOYMENT": "production", "IMGASSETS_S3_ENDPOINT": s3_store.endpoint,
           "IMGASSETS_S3_BUCKET": s3_store.bucket, "IMGASSETS_HOME": str(tmp_path / "home")}
    keys = {"IMGASSETS_S3_ACCESS_KEY": S3_ACCESS_KEY, "IMGASSETS_S3_SECRET_KEY": S3_SECRET_KEY}
    script = ("import sys; from imgassets.cli.main import main; code = main(sys.argv[1:]); "
              "print('dagster loaded' if 'dagster' in sys.modules else 'dagster not loaded'); sys.exit(code)")
    clean = command_env()
    pulled = subprocess.run([sys.executable, "-c", script, "pull", "latest", str(tmp_path / "a"), "--json"],
                            capture_output=True, text=True, env={**clean, **env, **keys}, timeout=300)
    assert pulled.returncode == 0, pulled.stderr
    summary, loaded = pulled.stdout.rsplit("\n", 2)[0], pulled.stdout.rsplit("\n", 2)[1]
    assert json.loads(summary)["downloaded"] == 4 and json.loads(summary)["dataset_id"] == dataset_id
    assert loaded == "dagster not loaded"
    assert len(list((tmp_path / "a").rglob("*.jpg"))) == 4
    no_keys = run_cli("pull", "latest", str(tmp_path / "b"), env_extra=env)
    assert no_keys.returncode == 2
    assert "IMGASSETS_DEPLOYMENT=production needs IMGASSETS_S3_ACCESS_KEY and IMGASSETS_S3_SECRET_KEY" in no_keys.stderr
    unknown = run_cli("pull", "latest", str(tmp_path / "b"), env_extra={**env, "IMGASSETS_DEPLOYMENT": "staging"})
    assert unknown.returncode == 2 and "unknown IMGASSETS_DEPLOYMENT 'staging'" in unknown.stderr


@pytest.mark.parametrize("command", [["lineage", "0" * 64], ["models"], ["pull", "latest", "DEST"]])
def test_store_commands_name_an_unreachable_endpoint_without_a_traceback(tmp_path, command):
    from imgassets_tests.conftest import S3_ACCESS_KEY, S3_SECRET_KEY, free_port

    endpoint = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = {"IMGASSETS_DEPLOYMENT": "production", "IMGASSETS_S3_ENDPOINT": endpoint, "IMGASSETS_S3_BUCKET": "vision",
           "IMGASSETS_S3_ACCESS_KEY": S3_ACCESS_KEY, "IMGASSETS_S3_SECRET_KEY": S3_SECRET_KEY,
           "IMGASSETS_HOME": str(tmp_path / "home")}
    proc = run_cli(*[str(tmp_path / "dest") if a == "DEST" else a for a in command], env_extra=env)
    assert proc.returncode == 1, proc.stderr
    assert f"S3 bucket vision at http://{endpoint}: endpoint unreachable" in proc.stderr
    assert "Traceback" not in proc.stderr and S3_SECRET_KEY not in proc.stderr + proc.stdout


def test_readers_never_create_a_mistyped_bucket(tmp_path, s3_store):
    from imgassets_tests.conftest import S3_ACCESS_KEY, S3_SECRET_KEY

    env = {"IMGASSETS_DEPLOYMENT": "production", "IMGASSETS_S3_ENDPOINT": s3_store.endpoint,
           "IMGASSETS_S3_BUCKET": "visoin", "IMGASSETS_S3_ACCESS_KEY": S3_ACCESS_KEY,
           "IMGASSETS_S3_SECRET_KEY": S3_SECRET_KEY, "IMGASSETS_HOME": str(tmp_path / "home")}
    for command in (["pull", "latest", str(tmp_path / "dest")], ["models"]):
        proc = run_cli(*command, env_extra=env)
        assert proc.returncode == 1 and "bucket visoin does not exist" in proc.stderr, proc.stderr
    assert not s3_store._client.bucket_exists("visoin")


@pytest.mark.parametrize("ref", ["../../etc", "latest/../x"])
def test_pull_of_a_path_is_a_usage_error(tmp_path, ref):
    proc = run_cli("pull", ref, str(tmp_path / "dest"), "--home", str(tmp_path / "home"))
    assert proc.returncode == 2 and "is not a dataset id" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "dest").exists()


def test_pull_into_a_folder_of_other_files_is_a_usage_error(tmp_path):
    from imgassets.core.store.local import LocalObjectStore

    _stored_dataset(LocalObjectStore(tmp_path / "home" / "objects"), tmp_path / "drive")
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "notes.txt").write_text("mine")
    proc = run_cli("pull", "latest", str(tmp_path / "dest"), "--home", str(tmp_path / "home"))
    assert proc.returncode == 2 and "holds files that are not a pulled dataset (notes.txt)" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["notes.txt"]


def test_a_home_that_cannot_be_written_is_a_usage_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    proc = run_cli("run", "--home", str(tmp_path / "file" / "home"))
    assert proc.returncode == 2 and "is not writable" in proc.stderr and "Traceback" not in proc.stderr


def test_a_shared_root_inside_the_home_is_a_usage_error(tmp_path):
    (tmp_path / "home" / "objects" / "datasets").mkdir(parents=True)
    proc = run_cli("run", "--home", str(tmp_path / "home"), "--shared-root", str(tmp_path / "home" / "objects"))
    assert proc.returncode == 2 and "must not be inside the home" in proc.stderr


def test_the_json_error_names_the_cause_not_dagsters_wrapper(tmp_path):
    from imgassets_tests.conftest import S3_ACCESS_KEY, S3_SECRET_KEY, free_port

    drive = tmp_path / "drive"
    (drive / "ana").mkdir(parents=True)
    (drive / "ana" / "a.jpg").write_bytes(jpeg_bytes())
    endpoint = f"127.0.0.1:{free_port()}"
    env = {"IMGASSETS_DEPLOYMENT": "production", "IMGASSETS_S3_ENDPOINT": endpoint, "IMGASSETS_S3_BUCKET": "vision",
           "IMGASSETS_S3_ACCESS_KEY": S3_ACCESS_KEY, "IMGASSETS_S3_SECRET_KEY": S3_SECRET_KEY}
    proc = run_cli("run", "--json", "--shared-root", str(drive), "--home", str(tmp_path / "home"), env_extra=env)
    assert proc.returncode == 1, proc.stderr[-2000:]
    [ana] = json.loads(proc.stdout)["scientists"]
    assert ana["error"].startswith("image_index: S3 bucket vision at http://")
    assert f"{endpoint}: endpoint unreachable" in ana["error"] and "Error occurred while" not in ana["error"]


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (needs root and mount; skipped elsewhere), unmounted after the test."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_during_a_pull_is_one_clear_error_and_leaves_no_partial_file(tmp_path, small_disk):
    from imgassets.core.store.local import LocalObjectStore

    dataset_id = _stored_dataset(LocalObjectStore(tmp_path / "home" / "objects"), tmp_path / "drive")
    (small_disk / "filler").write_bytes(b"\0" * (2 * 2**20 - 8 * 1024))  # room for two 4 KiB pages, not ten files
    proc = run_cli("pull", dataset_id, str(small_disk / "dest"), "--home", str(tmp_path / "home"),
                   "--cache", str(small_disk / "cache"))
    assert proc.returncode == 1, proc.stderr
    assert "No space left on device" in proc.stderr and "Traceback" not in proc.stderr
    leftovers = [p for p in small_disk.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_help_describes_the_product_in_whole_sentences():
    proc = run_cli("--help")
    assert proc.returncode == 0
    usage, description, *_ = proc.stdout.split("\n\n")
    text = " ".join(description.split())
    assert text.startswith("Turn the images") and text.endswith(".")
    assert "Exit codes of run: 0" in " ".join(proc.stdout.split())


@pytest.mark.parametrize("args,said", [
    (["retract", "--snapshot", "../x/abc", "--reason", "r"], "--snapshot '../x/abc': '..' is not a scientist"),
    (["retract", "--snapshot", "ana/0123456789abcdef", "--reason", "r"], "ana has no such snapshot: nothing retracted"),
    (["retract", "--snapshot", "ana/../../x", "--reason", "r"], "is not a snapshot id"),
    (["diff", "--scientist", "../x", "latest", "latest"], "--scientist: '../x' is not a scientist"),
])
def test_a_scientist_or_snapshot_that_cannot_be_is_a_usage_error_without_a_traceback(tmp_path, args, said):
    (tmp_path / "home" / "objects").mkdir(parents=True)
    proc = run_cli(*args, "--home", str(tmp_path / "home"))
    assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "home" / "objects" / "retractions").exists()


@pytest.mark.parametrize("args,env,said", [
    (["gc", "--grace-hours", "nan"], {}, "--grace-hours: must be a finite number, got nan"),
    (["gc"], {"IMGASSETS_GC_GRACE_HOURS": "inf"}, "IMGASSETS_GC_GRACE_HOURS must be a finite number, not 'inf'"),
    (["run", "--val-fraction", "nan"], {}, "--val-fraction: must be a finite number, got nan"),
])
def test_a_number_that_is_not_finite_is_refused(tmp_path, args, env, said):
    (tmp_path / "home" / "objects").mkdir(parents=True)
    proc = run_cli(*args, "--home", str(tmp_path / "home"), env_extra=env)
    assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_numeric_setting_that_is_not_finite_names_itself(monkeypatch):
    from imgassets import settings

    monkeypatch.setenv("IMGASSETS_BURST_SECONDS", "nan")
    with pytest.raises(ValueError, match="IMGASSETS_BURST_SECONDS must be a finite number"):
        settings.sequence_rules()
