"""Process pools: workers for the image index (decoding on every core) and the sensor's folder scans.

Two lifetimes:

* :func:`job_pool` -- a pool for one job (indexing one scientist's folder), shut down and its
  workers joined when the job's ``with`` block ends, whatever process the job runs in. A Dagster
  step may run in the multiprocess executor's step subprocess, which ends through
  ``multiprocessing``'s own bootstrap: there neither ``atexit`` hooks nor ``threading._shutdown``
  (where ``concurrent.futures`` tells its workers to stop) run before ``multiprocessing`` joins its
  children, so a pool still open at the end of the step would keep the step process waiting on its
  workers forever (the run stays STARTED). A pool that ends with the job cannot.
* :func:`process_pool` -- one pool per worker count kept for the life of the process, for the code
  server's folder scans on every sensor tick (start-up paid once). Every such pool ends with the
  process that made it: :func:`shutdown_pools` runs as an ``atexit`` hook (registered when the
  first pool starts, so that it runs before ``multiprocessing``'s own hook joins the workers; a
  process ending through ``os._exit`` after :func:`imgassets.cli.exit.exit_now` runs it too) and as
  a ``multiprocessing`` finalizer, which ``multiprocessing`` runs before it joins children when a
  process of its own ends.

Each worker of either kind asks the kernel for ``SIGKILL`` when its parent dies (Linux ``prctl``
``PR_SET_PDEATHSIG``), so a command killed mid-index (``kill -9``, OOM) leaves no worker behind.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

POOLS: dict[int, ProcessPoolExecutor] = {}
"""The pools started by :func:`process_pool`, by worker count."""

POOL_MODULES = ("imgassets.core.images.index", "imgassets.core.drive.walk")
"""The modules pool tasks run (Pillow, simplejpeg, imagehash and pandas come with the image index)."""

PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal a process gets when its parent thread exits (``<linux/prctl.h>``)."""

_hooked_pid: int | None = None
"""The process whose exit hooks stop :data:`POOLS` (a forked child inherits the dict, not the pools)."""


def forkserver_preload() -> list[str]:
    """Modules the fork server imports once, so that pool workers fork with them loaded.

    A forkserver worker re-runs the parent's ``__main__`` (``dagster``'s entry point in a run, a
    benchmark script...) before its first task; with the packages that ``__main__`` imports
    already loaded in the server, a pool starts without importing them again per pool.
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


def die_with_parent(parent_pid: int) -> None:
    """Pool worker initializer: have the kernel kill this worker when its parent process dies
    (``PR_SET_PDEATHSIG``; a no-op where ``prctl`` is missing), and exit at once if the parent
    ``parent_pid`` is already gone (it died before the request was made). A forkserver worker's
    parent is the fork server, which exits when the process that started it does."""
    libc_name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and libc_name:
        ctypes.CDLL(libc_name, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def new_pool(workers: int) -> ProcessPoolExecutor:
    """A new process pool of ``workers`` processes, started as :func:`pool_context` says, each
    worker set to die with its parent (:func:`die_with_parent`). The caller shuts it down."""
    context = pool_context()
    # A fork worker's parent is this process; a forkserver worker's is the fork server (0: not known here).
    parent = os.getpid() if context.get_start_method() == "fork" else 0
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(parent,))


@contextlib.contextmanager
def job_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` processes for the ``with`` block: when the block ends (normally or by
    an exception) the pool is shut down, its queued tasks cancelled and its workers joined, so no
    worker outlives the job in any process it runs in (module docstring)."""
    pool = new_pool(workers)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of ``workers`` kept for the life of the process (a broken one is replaced);
    see :func:`pool_context` for how the workers start and the module docstring for how they end."""
    global _hooked_pid
    pool = POOLS.get(workers)
    if pool is None or getattr(pool, "_broken", False):
        if _hooked_pid != os.getpid():
            POOLS.clear()  # a forked child's copy of its parent's pools: not this process's to use or stop
            atexit.register(shutdown_pools)
            multiprocessing.util.Finalize(None, shutdown_pools, exitpriority=100)
            _hooked_pid = os.getpid()
        pool = POOLS[workers] = new_pool(workers)
    return pool


def _init_worker(parent_pid: int) -> None:
    die_with_parent(parent_pid or os.getppid())


def shutdown_pools() -> None:
    """Stop every pool of :func:`process_pool` and wait for its workers to exit (queued tasks
    are cancelled). Safe to call more than once; the next :func:`process_pool` starts afresh.
    In a forked child that never made a pool of its own, it does nothing."""
    if _hooked_pid != os.getpid():
        return
    while POOLS:
        _, pool = POOLS.popitem()
        pool.shutdown(wait=True, cancel_futures=True)
