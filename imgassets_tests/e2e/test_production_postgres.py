"""The production instance (``deploy/dagster.production.yaml``: Postgres run, event log and schedule
storage) on a real PostgreSQL server started by the tests."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from imgassets_tests.conftest import REPO_ROOT, S3_ACCESS_KEY, S3_SECRET_KEY, command_env, copy_dataset, small_books

pytestmark = pytest.mark.slow


def _runs_in_postgres(env: dict[str, str]) -> list[tuple[str, str]]:
    """(job name, status) of every run row in the server's ``runs`` table, read with psycopg2."""
    import psycopg2

    connection = psycopg2.connect(host=env["DAGSTER_POSTGRES_HOST"], port=int(env["DAGSTER_POSTGRES_PORT"]),
                                  user=env["DAGSTER_POSTGRES_USER"], password=env["DAGSTER_POSTGRES_PASSWORD"],
                                  dbname=env["DAGSTER_POSTGRES_DB"])
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT pipeline_name, status FROM runs ORDER BY create_timestamp")
        rows = cursor.fetchall()
    connection.close()
    return rows


def test_imgassets_run_honours_a_production_dagster_home_and_its_runs_land_in_postgres(tmp_path, postgres_env):
    """``imgassets run`` with ``DAGSTER_HOME`` holding the production ``dagster.yaml``: every run it
    executes (each scientist's, then training) is recorded in Postgres, where the production
    webserver and daemon read them; nothing is written to a SQLite instance under the home."""
    dagster_home = tmp_path / "dagster-home"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.production.yaml", dagster_home / "dagster.yaml")
    drive = tmp_path / "drive"
    small_books(drive / "ana", count=6)
    small_books(drive / "ben", count=6)
    home = tmp_path / "home"
    env = command_env(drop=("IMGASSETS_", "DAGSTER_"))
    env.update(postgres_env, DAGSTER_HOME=str(dagster_home), YOLO_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "imgassets.cli", "run", "--shared-root", str(drive), "--home", str(home),
                           "--epochs", "1", "--imgsz", "64", "--json"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    runs = _runs_in_postgres(postgres_env)
    assert [job for job, _ in runs] == ["scientist_job", "scientist_job", "training_job"]
    assert {status for _, status in runs} == {"SUCCESS"}
    assert not (home / "dagster").exists()


def test_the_stack_as_separate_processes_trains_by_itself_and_survives_a_killed_daemon(tmp_path, postgres_env, s3_endpoint):
    """Code server (gRPC), daemon and webserver as separate processes on Postgres and S3, on folders
    above the image index's pool threshold (coco128, 100 books): images dropped in a folder are
    ingested by the sensor's run, the automation builds the dataset and
    trains, and the model's metrics are read through the webserver's GraphQL. Then the daemon is
    killed (SIGKILL) while a scientist's run is in progress and started again: that run (executed
    by the code server, not the daemon) finishes, no run is left in progress, nothing is
    half-written in the store, and the restarted daemon's sensor launches the next change's run."""
    from imgassets.core.store.s3 import S3ObjectStore
    from imgassets_tests.e2e.production_stack import production_stack

    store = S3ObjectStore(s3_endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, "stack", create_bucket=True)
    drive = tmp_path / "drive"
    drive.mkdir()
    with production_stack(tmp_path, drive, postgres_env, s3_endpoint, "stack") as stack:
        ui = stack.ui
        copy_dataset("coco128", drive / "ana")  # 128 images: above the image index's pool threshold
        ui.wait_for("yolo_model to materialize", lambda: ui.materializations("yolo_model"), 480)
        metrics = ui.latest_metadata("yolo_model", "FloatMetadataEntry", "floatValue")
        assert {"mAP50", "mAP50-95", "precision", "recall"} <= set(metrics)
        assert all(0.0 <= metrics[k] <= 1.0 for k in ("mAP50", "mAP50-95", "precision", "recall"))

        small_books(drive / "ben", count=100)

        def ben_in_progress():
            return [r for r in ui.runs() if r["status"] in ("STARTING", "STARTED")
                    and {"key": "dagster/partition", "value": "ben"} in r["tags"]]

        [ben_run] = ui.wait_for("ben's run to start", ben_in_progress, 180)
        stack.stop("daemon")  # SIGTERM then SIGKILL of its whole group, mid-run
        stack.start("daemon")

        def ben_finished():
            return [r for r in ui.runs() if r["runId"] == ben_run["runId"] and r["status"] in ("SUCCESS", "FAILURE")]

        [ben_done] = ui.wait_for("ben's run to finish or be marked failed", ben_finished, 300)
        small_books(drive / "cho", count=6)
        ui.wait_for("cho's snapshot (a tick of the restarted daemon)",
                    lambda: "cho" in [m["partition"] for m in ui.materializations("image_snapshot")], 300)
        # NOT_STARTED: a run the daemon has created and is about to launch (the automation's next one)
        ui.wait_for("no run in progress", lambda: all(r["status"] not in ("NOT_STARTED", "STARTING", "STARTED", "QUEUED")
                                                     for r in ui.runs()), 480)
        runs = ui.runs()
    assert ben_done["status"] == "SUCCESS", stack.log_tail()
    assert {r["status"] for r in runs} == {"SUCCESS"}, [(r["jobName"], r["status"]) for r in runs]
    keys = list(store.list_keys("snapshots/"))
    manifests = sorted(k.split("/")[1] for k in keys if k.endswith(".parquet"))
    assert manifests == ["ana", "ben", "cho"], keys  # one manifest each, nothing half-written
    assert not [k for k in store.list_keys("") if ".tmp" in k or ".part" in k]
