"""Runs whose process is gone while the store still says RUNNING, found and closed.

A run closes itself FAILED or KILLED whenever it can; when its store could not be written
at that moment (a full disk, a read-only filesystem) or the process was SIGKILLed, the
run stays RUNNING. Every run records `mlplab.host` and `mlplab.pid` when it starts (and
again when it is resumed; a sweep's parent run, those of the launching process), so the
next mlplab command that opens the store on that host can tell: a RUNNING run of this
host whose process no longer exists (or whose pid now belongs to a process started after
the run) is closed FAILED with a `stop_reason` tag and `mlplab.stale` = "true", which
`mlplab runs --stale` lists. Its metrics stay as written. Runs of other hosts are left
alone: their processes cannot be seen from here.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket

from mlplab.processes import GONE, OURS, signal_zero, started_at

log = logging.getLogger(__name__)

HOST_TAG, PID_TAG, STALE_TAG = "mlplab.host", "mlplab.pid", "mlplab.stale"
STALE_FILTER = f"tags.`{STALE_TAG}` = 'true'"


def process_tags() -> dict[str, str]:
    """The tags a run records when it starts: which process on which host holds it."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def process_gone(pid: int, run_start_ms: int | None) -> bool:
    """Whether the process that started a run is gone: no such pid, or the pid belongs to
    a process started after the run (the pid was reused)."""
    there = signal_zero(pid)
    if there != OURS:  # another user's live process is left alone
        return there == GONE
    started = started_at(pid)
    # /proc's start time is in clock ticks; a second of slack covers the rounding
    return bool(started and run_start_ms and started > run_start_ms / 1000 + 1)


def stale_runs(client) -> list:
    """RUNNING runs of this host whose process is gone."""
    host = socket.gethostname()
    ids = [e.experiment_id for e in client.search_experiments()]
    if not ids:
        return []
    running = client.search_runs(
        ids, filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
        max_results=1000)
    return [run for run in running
            if run.data.tags.get(PID_TAG, "").isdigit()
            and process_gone(int(run.data.tags[PID_TAG]), run.info.start_time)]


def close_stale_runs(client) -> list:
    """Close every stale run FAILED with a `stop_reason`; the runs closed."""
    closed = []
    for run in stale_runs(client):
        when = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        reason = (f"process {run.data.tags[PID_TAG]} on {run.data.tags[HOST_TAG]} ended "
                  f"without closing this run; closed by mlplab at {when}")
        client.set_tag(run.info.run_id, "stop_reason", reason)
        client.set_tag(run.info.run_id, STALE_TAG, "true")
        client.set_terminated(run.info.run_id, status="FAILED")
        log.warning("closed stale run %s FAILED: %s", run.info.run_id, reason)
        closed.append(run)
    return closed


def left_by_a_dead_process(run) -> bool:
    """Whether a launcher that saw a job die may close `run` with its own reason: the run is
    RUNNING, or the stale-run check of another process closed it FAILED first (the launcher
    knows why the job ended; that check only knows that its process is gone)."""
    return run.info.status == "RUNNING" or (
        run.info.status == "FAILED" and run.data.tags.get(STALE_TAG) == "true")


def close_with_reason(client, run, status: str, tags: dict[str, str]) -> None:
    """Close a run left by a dead job `status` with `tags` (its reason), in place of what
    the stale-run check may have written."""
    for key, value in tags.items():
        client.set_tag(run.info.run_id, key, value)
    if STALE_TAG in run.data.tags:
        client.delete_tag(run.info.run_id, STALE_TAG)
    client.set_terminated(run.info.run_id, status)
