"""The production deployment: the graph materialized in-process with every resource on S3 over
HTTP (moto's emulation, and a real S3 server: SeaweedFS): objects, manifests, Dagster's pickled values and Parquet tables all in the bucket,
and the secret key nowhere in Dagster's event log or run config."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from imgassets.cli.run import materialize_all
from imgassets.core.store.s3 import S3ObjectStore
from imgassets.core.training.train import PRESETS
from imgassets.definitions import build_defs
from imgassets.defs.deployment import production_resources, resources_for
from imgassets_tests.conftest import S3_ACCESS_KEY, S3_SECRET_KEY, small_books


def test_production_needs_an_endpoint(monkeypatch):
    monkeypatch.delenv("IMGASSETS_S3_ENDPOINT", raising=False)
    with pytest.raises(ValueError, match="production needs IMGASSETS_S3_ENDPOINT"):
        resources_for("production")
    with pytest.raises(ValueError, match="unknown IMGASSETS_DEPLOYMENT 'staging'"):
        resources_for("staging")


@pytest.mark.slow
@pytest.mark.parametrize("server", ["moto", "seaweedfs"])
def test_whole_graph_on_s3(tmp_path, server, request, monkeypatch):
    s3_endpoint = request.getfixturevalue("s3_endpoint" if server == "moto" else "seaweed_endpoint")
    monkeypatch.setenv("IMGASSETS_S3_ACCESS_KEY", S3_ACCESS_KEY)
    monkeypatch.setenv("IMGASSETS_S3_SECRET_KEY", S3_SECRET_KEY)
    monkeypatch.setenv("IMGASSETS_HOME", str(tmp_path / "scratch"))
    drive = tmp_path / "drive"
    small_books(drive / "ana", count=10)
    defs = build_defs(production_resources(shared_root=str(drive), endpoint=s3_endpoint, bucket="prod-bucket"))
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        summary = materialize_all(defs, instance, str(drive), str(tmp_path / "scratch"), ["ana"], PRESETS["smoke"])
        logged = [serialize_value(entry) for run in instance.get_runs() for entry in instance.all_logs(run.run_id)]
        logged += [serialize_value(run.run_config) for run in instance.get_runs()]
    assert summary.exit_code == 0, summary.as_dict()
    assert len(logged) > 50 and not [entry for entry in logged if S3_SECRET_KEY in entry]
    store = S3ObjectStore(s3_endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, "prod-bucket")
    keys = list(store.list_keys(""))
    assert len([k for k in keys if k.startswith("objects/sha256/")]) == 10
    assert f"snapshots/ana/{summary.scientists[0].snapshot_id}.parquet" in keys
    assert f"datasets/{summary.dataset['dataset_id']}/manifest.parquet" in keys
    assert summary.model["model_key"] in keys
    assert {"dagster/image_index/ana.parquet", "dagster/label_table/ana.parquet"} <= set(keys)
    assert any(k.startswith("dagster/pickles/training_dataset") for k in keys)
    assert not (tmp_path / "scratch" / "objects").exists() and not (tmp_path / "scratch" / "storage").exists()
