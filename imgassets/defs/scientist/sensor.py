"""Sensor: a new scientist folder becomes a partition; a settled change gets a run.

Each tick stat-walks every scientist folder (:func:`imgassets.core.drive.walk.scan_folders`, no reads;
on every core once the drive is large) and applies :func:`imgassets.core.drive.change_detection.decide`.
The cursor is a compact JSON object ``{scientist: [launched, pending, since]}`` (about 60 bytes a
scientist). The run key is ``<scientist>:<fingerprint>``, so the same folder state never launches
twice; a new folder's partition is added in the tick that launches its first run. The listing
behind each launched fingerprint is stored (:mod:`imgassets.core.drive.listing`), and the run's image
index reads it instead of walking the folder again.
"""

import json
import time

import dagster as dg

from imgassets import settings
from imgassets.core.drive.change_detection import decide
from imgassets.core.drive.listing import prune_listings, save_listing
from imgassets.core.drive.walk import scan_folders
from imgassets.defs.partitions import FINGERPRINT_TAG, scientists
from imgassets.defs.resources import ObjectStoreResource, SharedDrive
from imgassets.defs.scientist.jobs import scientist_job


def default_sensor_status() -> dg.DefaultSensorStatus:
    """The sensor's default status from ``IMGASSETS_DRIVE_SENSOR`` (:func:`imgassets.settings.drive_sensor_running`):
    stopped means runs are launched from the UI or ``imgassets run``. Raises ``ValueError`` for a
    value other than ``running`` or ``stopped``."""
    return dg.DefaultSensorStatus.RUNNING if settings.drive_sensor_running() else dg.DefaultSensorStatus.STOPPED


@dg.sensor(job=scientist_job, minimum_interval_seconds=settings.sensor_interval_seconds(),
           default_status=default_sensor_status())
def shared_drive_sensor(context: dg.SensorEvaluationContext, shared_drive: SharedDrive,
                        object_store: ObjectStoreResource) -> dg.SensorResult:
    """Stat-walks each scientist folder; requests a ``scientist_job`` run for each settled change
    and stores the listing that run will index."""
    previous = json.loads(context.cursor) if context.cursor else {}
    names, skipped = shared_drive.scientist_folders()
    for name, reason in skipped:
        context.log.warning(f"folder {name} of {shared_drive.root} skipped: {reason}")
    states = scan_folders({name: shared_drive.folder(name) for name in names})
    decision = decide(previous, states, time.time(), shared_drive.settle_seconds)
    for name in decision.missing:
        context.log.warning(f"scientist folder {name} is gone from {shared_drive.root}; its partition and history are kept")
    if decision.settling:
        context.log.info(f"waiting for changes to settle ({shared_drive.settle_seconds} s): {', '.join(decision.settling)}")
    new_partitions = []
    if decision.launch:  # a no-change tick ends here: no store, no partitions query
        store = object_store.get_store()
        for name, _ in decision.launch:
            prune_listings(store, name, keep=save_listing(store, name, states[name]))
        known = set(context.instance.get_dynamic_partitions(scientists.name))
        new_partitions = [name for name, _ in decision.launch if name not in known]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=name, run_key=f"{name}:{fingerprint}",
                                    tags={FINGERPRINT_TAG: fingerprint}) for name, fingerprint in decision.launch],
        dynamic_partitions_requests=[scientists.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps(decision.cursor, sort_keys=True, separators=(",", ":")),
    )
