"""Runs whose process died: marked failed, their pool slots freed, so nothing waits on them forever.

``imgassets run`` executes its runs in its own process (``execute_in_process``), where Dagster's run
monitoring (a daemon that asks the run launcher about its workers; turned on in both deployments'
``dagster.yaml`` for the runs the daemon launches) cannot see them. A run killed there (``kill -9``,
the OOM killer, a closed laptop) stays ``STARTED`` and keeps its claim on the ``yolo_training``
pool slot, and every later run would wait for that slot forever. So each such run carries
:data:`OWNER_TAG` (host, pid and the process's start time, which tells a reused pid apart), and
:func:`reap_dead_runs`, called before each ``imgassets run``, marks the runs of dead owners on this
host failed and frees every slot held by a run that is no longer in progress.
"""

from __future__ import annotations

import os
import socket

import dagster as dg
import psutil

OWNER_TAG = "imgassets/owner"
"""``<host>:<pid>:<process start time>`` of the process executing the run."""

IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def owner_tag(pid: int | None = None) -> str:
    """:data:`OWNER_TAG`'s value for process ``pid`` (default: this one) on this host."""
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{psutil.Process(pid).create_time():.2f}"


def owner_is_dead(tag: str) -> bool:
    """True when ``tag`` (:func:`owner_tag`) names a process of this host that no longer runs
    (gone, or its pid now belongs to a process started at another time). False for another host's
    process, which cannot be checked from here, and for a malformed tag."""
    host, _, rest = tag.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        return f"{psutil.Process(int(pid)).create_time():.2f}" != started
    except psutil.NoSuchProcess:
        return True


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every in-progress run whose :data:`OWNER_TAG` names a dead process of this host,
    and free the pool slots of every run that holds one but is no longer in progress (those too).
    Returns the ids of the runs marked failed."""
    reaped = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        tag = run.tags.get(OWNER_TAG)
        if tag and owner_is_dead(tag):
            instance.report_run_failed(run, message=f"the process that ran it ({tag}) is gone: killed or crashed")
            reaped.append(run.run_id)
    for run_id in instance.event_log_storage.get_concurrency_run_ids():
        run = instance.get_run_by_id(run_id)
        if run is None or run.status not in IN_PROGRESS:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return reaped


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def dead_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Every minute, in the daemon: :func:`reap_dead_runs` (runs of an ``imgassets run`` that was
    killed on this host, pool slots of runs that ended). Launches nothing."""
    reaped = reap_dead_runs(context.instance)
    return dg.SkipReason(f"marked failed: {', '.join(reaped)}" if reaped else "no dead run")
