"""Process pools kept for the life of the process: warm workers for the image index (decoding on
every core) and the sensor's folder scans.

One pool per worker count, shared by every caller: a Dagster run indexes one scientist after
another, and the code server scans the shared drive on every sensor tick, so the pool's start-up is
paid once per process, not once per call.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from concurrent.futures import ProcessPoolExecutor

POOLS: dict[int, ProcessPoolExecutor] = {}
"""The pools started by :func:`process_pool`, by worker count."""

POOL_MODULES = ("imgassets.core.image_index", "imgassets.core.drive")
"""The modules pool tasks run (Pillow, simplejpeg, imagehash and pandas come with the image index)."""


def forkserver_preload() -> list[str]:
    """Modules the fork server imports once, so that pool workers fork with them loaded.

    A forkserver worker re-runs the parent's ``__main__`` (``dagster``'s entry point in a run, a
    benchmark script...) before its first task; with the packages that ``__main__`` imports
    already loaded in the server, a pool starts in about 25 ms instead of about a second per pool.
    :data:`POOL_MODULES` and every top-level package the parent has loaded are named; one that
    fails to import in the server is skipped by ``multiprocessing``.
    """
    loaded = {name.partition(".")[0] for name in list(sys.modules)} - {"__main__", "__mp_main__"}
    return [*POOL_MODULES, *sorted(name for name in loaded if not name.startswith("_"))]


def pool_context() -> multiprocessing.context.BaseContext:
    """``fork`` when this process has a single thread (the CLI, a benchmark: workers start in
    milliseconds with everything already imported), else a ``forkserver`` preloaded with the
    parent's packages: forking a threaded parent (a Dagster run has log and heartbeat threads, the
    code server its gRPC threads) can copy a lock another thread holds and hang the child."""
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(forkserver_preload())
    return context


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of ``workers`` kept for the life of the process (a broken one is replaced);
    see :func:`pool_context` for how the workers start."""
    pool = POOLS.get(workers)
    if pool is None or getattr(pool, "_broken", False):
        pool = POOLS[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=pool_context())
    return pool
