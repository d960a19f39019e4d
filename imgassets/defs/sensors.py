"""Sensor: a new scientist folder becomes a partition; a changed folder gets a run.

The cursor is a JSON object ``{scientist: fingerprint}`` (16 hex digits each). The fingerprint is a
stat-only hash of the folder (:func:`imgassets.core.drive.folder_fingerprint`), and the run key is
``<scientist>:<fingerprint>``, so the same folder state never launches twice.
"""


import json

import dagster as dg

from imgassets.core.drive import folder_fingerprint
from imgassets.defs.jobs import scientist_job
from imgassets.defs.partitions import scientists
from imgassets.defs.resources import SharedDrive


@dg.sensor(job=scientist_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def shared_drive_sensor(context: dg.SensorEvaluationContext, shared_drive: SharedDrive) -> dg.SensorResult:
    """Stat-walks each scientist folder; requests a ``scientist_job`` run for each changed one."""
    previous: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    known = set(context.instance.get_dynamic_partitions(scientists.name))
    current = {name: folder_fingerprint(shared_drive.folder(name)) for name in shared_drive.scientists()}
    new_partitions = sorted(set(current) - known)
    run_requests = [
        dg.RunRequest(partition_key=name, run_key=f"{name}:{fingerprint}", tags={"imgassets/fingerprint": fingerprint})
        for name, fingerprint in sorted(current.items())
        if previous.get(name) != fingerprint
    ]
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[scientists.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps(current, sort_keys=True, separators=(",", ":")),
    )
