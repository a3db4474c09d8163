"""Runs whose process is gone while the store still says RUNNING, found and closed.

A run closes itself FAILED or KILLED whenever it can; when its store could not be written
at that moment (a full disk, a read-only filesystem) or the process was SIGKILLed, the
run stays RUNNING. Every run records `mlplab.host` and `mlplab.pid` when it starts (and
again when it is resumed; a sweep's parent run, those of the launching process), so the
next mlplab command that opens the store on that host can tell: a RUNNING run of this
host whose process no longer exists (or whose pid now belongs to a process started after
the run) is closed with a `stop_reason` tag and `mlplab.stale` = "true", which
`mlplab runs --stale` lists. Its metrics stay as written. Runs of other hosts are left
alone: their processes cannot be seen from here.

How it is closed depends on what its process left. A process that knew how its run ended
but could not write it (the store failed) leaves the status and the tags it meant to
write in `<state dir>/unclosed/<run id>.json` (`leave_close`): the state dir is
`$MLPLAB_STATE_DIR`, else `$XDG_STATE_HOME/mlplab`, else `~/.local/state/mlplab`, on this
host and away from the store, whose directory may be the thing that failed. The check then
closes the run with that status (FAILED, with the store's reason) and removes the file. A
run whose process left nothing just vanished (SIGKILL, the OOM killer, a power loss): it
is closed KILLED, `process <pid> on <host> is gone ...`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import socket
from pathlib import Path

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


def state_dir() -> Path:
    """Where this user's mlplab keeps state on this host (see the module's notes)."""
    if os.environ.get("MLPLAB_STATE_DIR"):
        return Path(os.environ["MLPLAB_STATE_DIR"])
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "mlplab"


def _unclosed_file(run_id: str) -> Path:
    return state_dir() / "unclosed" / f"{run_id}.json"


def leave_close(run_id: str, status: str, tags: dict[str, str]) -> Path | None:
    """In a process that could not close its run: leave the status and tags it meant to
    write for the stale-run check; returns the file, or None if it could not be written
    either (the run is then closed as vanished)."""
    path = _unclosed_file(run_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(json.dumps({"status": status, "tags": dict(tags)}))
        scratch.replace(path)
    except OSError as error:
        log.warning("could not leave how run %s ended in %s: %s", run_id, path, error)
        return None
    return path


def left_close(run_id: str) -> dict | None:
    """What the run's process left with `leave_close`, or None."""
    try:
        left = json.loads(_unclosed_file(run_id).read_text())
    except (OSError, ValueError):
        return None
    if left.get("status") not in ("FAILED", "KILLED") or not isinstance(left.get("tags"), dict):
        return None
    return left


def close_stale_runs(client) -> list:
    """Close every stale run, FAILED or KILLED with a `stop_reason` (see the module's
    notes); the runs closed."""
    closed = []
    for run in stale_runs(client):
        when = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        process = f"process {run.data.tags[PID_TAG]} on {run.data.tags[HOST_TAG]}"
        left = left_close(run.info.run_id)
        if left is not None:
            status, tags = left["status"], {str(k): str(v) for k, v in left["tags"].items()}
            why = tags.get("stop_reason") or tags.get("failure_reason") or status
            tags["stop_reason"] = (f"{why} ({process} could not write this to the store; "
                                   f"closed by mlplab at {when})")
        else:
            status, tags = "KILLED", {"stop_reason": (
                f"{process} is gone without closing this run (killed: SIGKILL, out of "
                f"memory or power lost); closed by mlplab at {when}")}
        for key, value in {**tags, STALE_TAG: "true"}.items():
            client.set_tag(run.info.run_id, key, value)
        client.set_terminated(run.info.run_id, status=status)
        if left is not None:
            with contextlib.suppress(OSError):
                _unclosed_file(run.info.run_id).unlink()
        log.warning("closed stale run %s %s: %s", run.info.run_id, status, tags["stop_reason"])
        closed.append(run)
    return closed


def left_by_a_dead_process(run) -> bool:
    """Whether a launcher that saw a job die may close `run` with its own reason: the run is
    RUNNING, or the stale-run check of another process closed it first (the launcher knows
    why the job ended; that check may only know that its process is gone)."""
    return run.info.status == "RUNNING" or (
        run.info.status in ("FAILED", "KILLED") and run.data.tags.get(STALE_TAG) == "true")


def close_with_reason(client, run, status: str, tags: dict[str, str]) -> None:
    """Close a run left by a dead job `status` with `tags` (its reason), in place of what
    the stale-run check may have written."""
    for key, value in tags.items():
        client.set_tag(run.info.run_id, key, value)
    if STALE_TAG in run.data.tags:
        client.delete_tag(run.info.run_id, STALE_TAG)
    client.set_terminated(run.info.run_id, status)
