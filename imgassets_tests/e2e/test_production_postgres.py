"""The production instance (``deploy/dagster.production.yaml``: Postgres run, event log and schedule
storage) on a real PostgreSQL server started by the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from imgassets_tests.conftest import REPO_ROOT, small_books

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


def test_imgassets_run_honours_a_production_dagster_home_and_its_runs_land_in_postgres(tmp_path, postgres_server):
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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMGASSETS_", "DAGSTER_"))}
    env.update(postgres_server, DAGSTER_HOME=str(dagster_home), YOLO_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "imgassets.cli", "run", "--shared-root", str(drive), "--home", str(home),
                           "--epochs", "1", "--imgsz", "64", "--json"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    runs = _runs_in_postgres(postgres_server)
    assert [job for job, _ in runs] == ["scientist_job", "scientist_job", "training_job"]
    assert {status for _, status in runs} == {"SUCCESS"}
    assert not (home / "dagster").exists()
