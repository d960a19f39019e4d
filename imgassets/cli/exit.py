"""Ending the command-line process without native teardown.

A command that has done its work and printed its result can still die at interpreter exit: native
thread pools (Arrow's CPU and I/O pools behind ``pyarrow.parquet``; reproduced here without Dagster
loaded) are destroyed during CPython's finalization, and a worker still joinable then makes ``std::thread``'s
destructor call ``std::terminate`` -- ``terminate called without an active exception``, SIGABRT,
exit code -6/134 after a complete, correct run (apache/arrow#34314, #38352; seen here once in CI on
``imgassets pull``). The process is ending anyway, so :func:`exit_now` does what a normal exit must
(``atexit`` hooks, flushing stdout and stderr) and then leaves with ``os._exit``, skipping object
finalizers and module teardown, where the crash lives.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import NoReturn


def exit_status(code: object) -> int:
    """The process exit status for a ``SystemExit.code``-like value, as ``sys.exit`` maps it:
    ``None`` -> 0, an int -> itself, anything else (a message) -> printed to stderr, 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def exit_now(code: object) -> NoReturn:
    """Run the ``atexit`` hooks (logging, ``concurrent.futures`` joins, telemetry flushes), flush
    stdout and stderr, and end the process with ``os._exit(exit_status(code))``. A flush that fails
    (closed pipe) is ignored: the status is what the caller chose, as with a normal exit."""
    status = exit_status(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
