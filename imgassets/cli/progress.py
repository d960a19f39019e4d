"""``imgassets run``'s progress on stderr: a rich bar per stage on a terminal, plain lines otherwise
(a CI log or a file: one line per training epoch, at most one every :data:`PLAIN_INTERVAL_S`
seconds per other stage, and each stage's last)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from imgassets.core import progress

PLAIN_INTERVAL_S = 10.0


class _PlainLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        stage, done, total, detail = getattr(record, progress.FIELD)
        if stage == progress.WARNING:
            print(f"imgassets: warning: {detail}", file=sys.stderr, flush=True)
            return
        now = time.monotonic()
        if done and done < total and not stage.startswith("training") and now - self._last.get(stage, 0) < PLAIN_INTERVAL_S:
            return
        self._last[stage] = now
        if done or not total:
            print(f"imgassets: {stage}: {done}/{total}{'  ' + detail if detail else ''}", file=sys.stderr, flush=True)


class _Bars(logging.Handler):
    def __init__(self, bars) -> None:
        super().__init__()
        self._bars, self._tasks = bars, {}

    def emit(self, record: logging.LogRecord) -> None:
        stage, done, total, detail = getattr(record, progress.FIELD)
        if stage == progress.WARNING:
            self._bars.console.print(f"imgassets: warning: {detail}", markup=False, highlight=False)
            return
        if stage not in self._tasks:
            self._tasks[stage] = self._bars.add_task(stage, total=total or None)
        self._bars.update(self._tasks[stage], completed=done, total=total or None,
                          description=f"{stage} {detail}".strip())


@contextmanager
def shown_on_stderr(terminal: bool | None = None) -> Iterator[None]:
    """Show the progress records of :mod:`imgassets.core.progress` on stderr while the block runs:
    bars when ``terminal`` (default: stderr is a TTY), plain lines otherwise."""
    terminal = sys.stderr.isatty() if terminal is None else terminal
    if terminal:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=False)
        handler: logging.Handler = _Bars(bars)
        bars.start()
    else:
        bars, handler = None, _PlainLines()
    progress.LOGGER.addHandler(handler)
    progress.LOGGER.setLevel(logging.INFO)
    try:
        yield
    finally:
        progress.LOGGER.removeHandler(handler)
        if bars is not None:
            bars.stop()
