"""Progress of long work (indexing a folder, uploading a snapshot, pulling, training), reported
through one ``logging`` logger so that the core needs no terminal and no Dagster.

A stage reports ``(stage, done, total, detail)`` records on :data:`LOGGER` (:class:`Progress`,
throttled to one record per :data:`MIN_INTERVAL_S` and always the last one); ``imgassets run``
shows them on stderr (a bar per stage on a terminal, plain lines otherwise:
:mod:`imgassets.cli.progress`), and the Dagster assets also write each training epoch to the run's
log, which the UI shows. Nothing listens by default: a record nobody handles costs one call.
"""

from __future__ import annotations

import logging
import time

LOGGER = logging.getLogger("imgassets.progress")
LOGGER.propagate = False  # for the handlers that ask for it (the command line), not the root logger
FIELD = "imgassets_progress"
"""Attribute of a progress record holding ``(stage, done, total, detail)``."""
MIN_INTERVAL_S = 0.5


def report(stage: str, done: int, total: int, detail: str = "") -> None:
    """One progress record: ``done`` of ``total`` units of ``stage`` (``detail``: what the last unit said)."""
    if LOGGER.handlers:
        LOGGER.info("%s %d/%d %s", stage, done, total, detail, extra={FIELD: (stage, done, total, detail)})


WARNING = "warning"
"""The stage of a warning record (:func:`warn`): shown as one line, never as a bar."""


def warn(message: str) -> None:
    """A warning for whoever shows progress (the command line prints it on stderr)."""
    if LOGGER.handlers:
        LOGGER.warning("%s", message, extra={FIELD: (WARNING, 0, 0, message)})


class Progress:
    """A stage of ``total`` units: :meth:`advance` reports at most once per :data:`MIN_INTERVAL_S`,
    and always when the stage completes."""

    def __init__(self, stage: str, total: int) -> None:
        self.stage, self.total, self.done = stage, total, 0
        self._last = 0.0
        if total:  # nothing to do is nothing to show
            report(stage, 0, total)

    def advance(self, count: int = 1, detail: str = "") -> None:
        if not self.total:
            return
        self.done += count
        now = time.monotonic()
        if self.done >= self.total or now - self._last >= MIN_INTERVAL_S:
            self._last = now
            report(self.stage, self.done, self.total, detail)
