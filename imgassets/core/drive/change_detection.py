"""When a scientist folder has changed for real: the sensor's decision, as a pure function.

The cursor holds, per scientist, ``[launched, pending, since]``: the fingerprint last launched,
the fingerprint of a change seen but not launched yet, and when it was first seen (epoch seconds).
A change is launched once it has *settled*: the same fingerprint on two looks at least
``settle_seconds`` apart, and no file modified within ``settle_seconds``. A half-copied image keeps
changing size, so its fingerprint changes and the wait restarts; a copy that preserves an old mtime
is still caught by the fingerprint, which covers paths, sizes and inodes, not only mtimes.
A folder that disappears keeps its cursor entry (and its partition and history) and is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imgassets.core.drive.walk import FolderState


@dataclass
class Decision:
    """What one sensor tick does: the new cursor, folders to launch (name, fingerprint), folders
    still settling, folders that disappeared."""

    cursor: dict[str, list]
    launch: list[tuple[str, str]] = field(default_factory=list)
    settling: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def decide(previous: dict[str, list], states: dict[str, FolderState], now: float, settle_seconds: float) -> Decision:
    """Apply the rules of the module docstring to one tick's folder states (``now`` in seconds)."""
    decision = Decision(cursor={})
    for name in sorted(states):
        fingerprint, newest = states[name].fingerprint, states[name].newest_mtime_ns / 1e9
        launched, pending, since = (previous.get(name) or [None, None, None])[:3]
        if fingerprint == launched:
            decision.cursor[name] = [launched, None, None]
            continue
        if fingerprint != pending:
            pending, since = fingerprint, now
        quiet = now - newest >= settle_seconds
        if settle_seconds <= 0 or (now - since >= settle_seconds and quiet):
            decision.launch.append((name, fingerprint))
            decision.cursor[name] = [fingerprint, None, None]
        else:
            decision.settling.append(name)
            decision.cursor[name] = [launched, pending, int(since)]
    for name in sorted(set(previous) - set(states)):
        decision.missing.append(name)
        decision.cursor[name] = previous[name]
    return decision
