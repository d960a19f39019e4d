"""Training runs tracked in a real MLflow tracking server, the champion in its model registry: the
demo drive run as a process with ``IMGASSETS_MLFLOW_TRACKING_URI`` set; and a server that is down
never fails training."""

from __future__ import annotations

import json

import pytest

from imgassets_tests.conftest import free_port
from imgassets_tests.e2e.test_commands_real_drive import run_command

pytestmark = pytest.mark.slow

SMOKE = {"IMGASSETS_TRAINING_PRESET": ""}


def test_a_training_is_an_mlflow_run_and_the_champion_a_registered_version(tmp_path, mlflow_server):
    from mlflow import MlflowClient

    home = tmp_path / "home"
    code, out, err, _ = run_command("run", "--json", "--home", str(home), "--smoke", "--epochs", "2", timeout=600,
                                    env_extra={**SMOKE, "IMGASSETS_MLFLOW_TRACKING_URI": mlflow_server})
    assert code == 0, err[-3000:]
    summary = json.loads(out)  # MLflow's own links never reach stdout: --json stays JSON
    model_id, dataset_id = summary["model"]["run_id"], summary["dataset"]["dataset_id"]
    record = json.loads((home / "objects" / summary["model"]["model_key"].replace("best.pt", "model.json")).read_text())
    tracked = record["mlflow"]
    assert tracked["uri"] == mlflow_server and tracked["version"]

    client = MlflowClient(mlflow_server, mlflow_server)
    run = client.get_run(tracked["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["dagster.run_id"] == model_id
    assert run.data.params["epochs"] == "2" and run.data.params["imgsz"] == "64"
    # each epoch's loss and validation metrics as they happened, then the benchmark's scores
    assert [m.step for m in client.get_metric_history(run.info.run_id, "box_loss")] == [1, 2]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "mAP50")] == [1, 2]
    assert {"benchmark/mAP50-95", "reference/mAP50-95", "error_types/missed"} <= set(
        run.data.metrics)
    inputs = [d.dataset for d in run.inputs.dataset_inputs]
    assert [(d.name, d.digest) for d in inputs] == [(f"imgassets-{dataset_id}", dataset_id)]
    assert inputs[0].source == f"datasets/{dataset_id}/manifest.parquet"
    assert {"results.csv", "args.yaml", "slices.csv", "weights"} <= {a.path for a in client.list_artifacts(run.info.run_id)}

    version = client.get_model_version("imgassets-detect", tracked["version"])
    assert version.run_id == run.info.run_id and version.tags["imgassets.dataset_id"] == dataset_id
    assert version.tags["imgassets.model_id"] == model_id
    # the first model is champion: the alias follows refs/models/champion
    champion = json.loads((home / "objects" / "refs" / "models" / "champion").read_text())
    assert champion["model_id"] == model_id
    assert client.get_registered_model("imgassets-detect").aliases == {"champion": tracked["version"]}
    assert client.get_model_version_by_alias("imgassets-detect", "champion").run_id == run.info.run_id


def test_a_tracking_server_that_is_down_never_fails_training(tmp_path):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, out, err, _ = run_command("run", "--json", "--home", str(tmp_path / "home"), "--smoke", timeout=600,
                                    env_extra={**SMOKE, "IMGASSETS_MLFLOW_TRACKING_URI": down})
    assert code == 0, err[-3000:]
    summary = json.loads(out)
    assert summary["model"]["model_key"] and summary["evaluation"]["promoted"]
    assert err.count(f"MLflow tracking at {down} is off") == 1, err[-3000:]
