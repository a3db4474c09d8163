"""What this host knows of another process by its pid: whether it is there, its state and
when it started (Linux's /proc). The sweep's stop, the stale-run check and the shared
study's reaper all ask these questions of the processes that hold their runs and trials.
"""

from __future__ import annotations

import os
from pathlib import Path

GONE, OURS, OTHER_USERS = "gone", "ours", "other user's"


def signal_zero(pid: int | str) -> str:
    """Whether `pid` names a process: GONE, OURS (we may signal it) or OTHER_USERS."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return GONE
    except PermissionError:
        return OTHER_USERS
    return OURS


def _stat_fields(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def state(pid: int | str) -> str | None:
    """The process's state letter ("Z": a zombie, dead and not yet reaped), or None."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def start_ticks(pid: int | str = "self") -> str:
    """Clock ticks since boot at which the process started, '' where unknown: with the pid
    it names one process even after the pid is reused."""
    fields = _stat_fields(pid)
    return fields[19] if fields else ""  # field 22 of the file: starttime


def alive(pid: int | str) -> bool:
    """Whether the process is there and not a zombie (a pool's dead worker not yet reaped
    by its parent is gone); another user's process, or one whose state cannot be read,
    counts as alive."""
    there = signal_zero(pid)
    return there == OTHER_USERS or (there == OURS and state(pid) != "Z")


def started_at(pid: int | str) -> float | None:
    """When the process started, in seconds since the epoch; None where unknown."""
    ticks = start_ticks(pid)
    try:
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text()
                    .splitlines() if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    return boot + int(ticks) / os.sysconf("SC_CLK_TCK") if ticks else None
