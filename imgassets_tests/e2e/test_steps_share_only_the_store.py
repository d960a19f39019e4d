"""Steps that share nothing but the object store: the multiprocess executor (each step its own
process, as each is its own pod on Kubernetes) with a private scratch folder per step process,
created when it starts and deleted when it ends. Every step must fetch what it needs from the
store or the IO manager (S3 over HTTP on loopback, moto's server)."""

from __future__ import annotations

import dagster as dg
import pytest

from imgassets.definitions import build_defs
from imgassets.defs.deployment import production_resources
from imgassets_tests.conftest import S3_ACCESS_KEY, S3_SECRET_KEY, add_scientists, small_books

pytestmark = pytest.mark.slow


def isolated_defs() -> dg.Definitions:
    """The graph on the production resources named by the environment, each step process with its
    own scratch, under the multiprocess executor (loaded again in every step process)."""
    return build_defs(production_resources(private_scratch=True), executor=dg.multiprocess_executor)


def isolated_scientist_job() -> dg.JobDefinition:
    return isolated_defs().resolve_job_def("scientist_job")


def isolated_training_job() -> dg.JobDefinition:
    return isolated_defs().resolve_job_def("training_job")


def test_scientist_and_training_runs_succeed_with_a_private_scratch_per_step(tmp_path, s3_endpoint, monkeypatch):
    drive, scratch = tmp_path / "drive", tmp_path / "scratch-home"
    small_books(drive / "ana", count=10)
    for name, value in {"IMGASSETS_S3_ACCESS_KEY": S3_ACCESS_KEY, "IMGASSETS_S3_SECRET_KEY": S3_SECRET_KEY,
                        "IMGASSETS_S3_ENDPOINT": s3_endpoint, "IMGASSETS_S3_BUCKET": "isolated-steps",
                        "IMGASSETS_DEPLOYMENT": "production", "IMGASSETS_HOME": str(scratch),
                        "IMGASSETS_SHARED_ROOT": str(drive), "YOLO_OFFLINE": "1"}.items():
        monkeypatch.setenv(name, value)
    from imgassets.core.store.s3 import S3ObjectStore

    S3ObjectStore(s3_endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, "isolated-steps", create_bucket=True)
    training = {"ops": {"yolo_model": {"config": {"epochs": 1, "imgsz": 64, "batch": 4, "device": "cpu"}}}}
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        add_scientists(instance, "ana")
        scientist = dg.execute_job(dg.reconstructable(isolated_scientist_job), instance=instance,
                                   tags={"dagster/partition": "ana"})
        assert scientist.success, [e.message for e in scientist.all_events if e.is_failure]
        run = dg.execute_job(dg.reconstructable(isolated_training_job), instance=instance, run_config=training)
        events = run.all_events
        assert run.success, [e.message for e in events if e.is_failure]
        processes = {e.pid for e in events if e.is_step_start}
        checks = {e.event_specific_data.check_name: e.event_specific_data.passed
                  for e in events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
        materialized = {e.asset_key.to_user_string() for e in events if e.is_step_materialization}
    assert materialized == {"retractions", "training_dataset", "yolo_model", "model_evaluation", "champion_model"}
    assert checks["weights_predict"] and checks["no_split_leakage"] and checks["beats_champion"]
    assert len(processes) >= 5  # the dataset, its checks, training, its checks and evaluation: one process each
    assert list((scratch / "scratch").iterdir()) == []  # every step's scratch deleted when it ended
    assert not (scratch / "staging").exists() and not (scratch / "cache").exists()
