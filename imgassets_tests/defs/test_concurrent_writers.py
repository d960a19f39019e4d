"""Concurrent writers: the same partition's Parquet written by several processes at once is never
torn or unreadable, and a failed write leaves no temporary file."""

from __future__ import annotations

import multiprocessing
import os

import dagster as dg
import pandas as pd
import pytest

from imgassets.core.store.atomic import atomic_path
from imgassets.defs.io_managers import ParquetIOManager


def _writer(base: str, worker: int, rounds: int, errors) -> None:
    manager = ParquetIOManager(base_dir=base)
    key = dg.AssetKey("image_index")
    frame = pd.DataFrame({"path": [f"w{worker}/{i}.jpg" for i in range(2000)], "size": range(2000)})
    for _ in range(rounds):
        try:
            manager.handle_output(dg.build_output_context(asset_key=key, partition_key="ana"), frame)
            loaded = manager.load_input(dg.build_input_context(asset_key=key, partition_key="ana"))
            if len(loaded) != 2000 or not loaded["path"].str.startswith("w").all():
                errors.put("torn read")
        except Exception as exc:  # recorded, then asserted on: any error fails the test
            errors.put(repr(exc))


@pytest.mark.slow  # processes, servers or a timed race: the full suite runs it
def test_concurrent_writers_of_one_partition_never_tear_it(tmp_path):
    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    workers = [context.Process(target=_writer, args=(str(tmp_path), w, 75, errors)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == [] and all(w.exitcode == 0 for w in workers)
    assert sorted(os.listdir(tmp_path / "image_index")) == ["ana.parquet"]


def test_parquet_tables_are_stored_by_asset_and_partition_and_a_missing_one_is_named(tmp_path):
    """The layout ``<base>/<asset>/<partition>.parquet`` (``<base>/<asset>.parquet`` unpartitioned)
    that homes written before keep, the path in the output's metadata, and a missing input named."""
    manager = ParquetIOManager(base_dir=str(tmp_path))
    frame = pd.DataFrame({"path": ["a.jpg", "b.jpg"], "size": [1, 2]})
    output = dg.build_output_context(asset_key=dg.AssetKey("image_index"), partition_key="ana")
    manager.handle_output(output, frame)
    manager.handle_output(dg.build_output_context(asset_key=dg.AssetKey("model_evaluation")), frame)
    assert (tmp_path / "image_index" / "ana.parquet").is_file() and (tmp_path / "model_evaluation.parquet").is_file()
    assert output.consume_logged_metadata()["path"].value == str(tmp_path / "image_index" / "ana.parquet")
    loaded = manager.load_input(dg.build_input_context(asset_key=dg.AssetKey("image_index"), partition_key="ana"))
    pd.testing.assert_frame_equal(loaded, frame)
    with pytest.raises(FileNotFoundError, match="bob.parquet"):
        manager.load_input(dg.build_input_context(asset_key=dg.AssetKey("image_index"), partition_key="bob"))


def test_a_failed_write_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "x.parquet"
    target.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"), atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(b"partial")
        raise OSError(28, "disk full")
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["x.parquet"]


@pytest.mark.slow
def test_commands_creating_one_fresh_instance_at_once_all_succeed(tmp_path):
    """Six processes open the same fresh Dagster home at the same moment (``imgassets run`` started
    twice by a cron job and a user): each gets the instance, none fails on the schema version row."""
    import subprocess
    import sys
    import time

    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    code = (f"import os, time\nos.environ['DAGSTER_HOME'] = {str(home)!r}\n"
            "from pathlib import Path\nfrom imgassets.cli.home import open_instance\n"
            f"while not os.path.exists({str(tmp_path / 'go')!r}): time.sleep(0.001)\n"
            f"with open_instance(Path({str(home)!r})) as instance:\n    instance.get_runs(limit=1)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(6)]
    time.sleep(5)  # every process imported and waiting
    (tmp_path / "go").touch()
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, "\n".join(e[-500:] for e in errors)
