"""Stopping a grid sweep whose jobs run in other processes (joblib, local_parallel,
submitit_local, Ray), through two kinds of file in the sweep directory:

- `.jobs/<pid>`: a job running in process <pid>, holding the job's host name and, for a
  job that watches `.stop` itself, the word `watch` (written by the job when it starts,
  removed when it ends);
- `.stop`: the sweep is stopping, and on which signal (written by the launching process).

On SIGINT or SIGTERM the launching process writes `.stop`, sends `FORWARDED_STOP` to every
running job of its own host that does not watch, and waits until each job has ended (its
fit finishes the epoch, checkpoints and closes its run KILLED with a stop_reason), then
stops the launcher. A job that watches (Ray's, which may run on another machine sharing
the sweep directory, where a pid names another process) polls `.stop` from a thread and
sends itself `FORWARDED_STOP` when it appears. A job that starts after `.stop` exists
returns at once, without a run. A job of this host that has not ended after the wait
(`STOP_WAIT_SECONDS`) is killed, and the launching process closes its run KILLED saying
so. The order of the writes makes this race-free: a job writes its marker before it looks
for `.stop`, the launching process writes `.stop` before it lists the markers, so a job
is either stopped or sees the stop itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

from mlplab.processes import alive
from mlplab.signals import FORWARDED_STOP, job_signals, stopping

log = logging.getLogger(__name__)

JOBS_DIR = ".jobs"
STOP_FILE = ".stop"
# How long the launching process waits for its jobs to close their runs: an epoch, a
# checkpoint and a few store writes, on a loaded machine. `MLPLAB_STOP_WAIT_SECONDS`
# changes it (a job whose epochs are longer; the tests).
STOP_WAIT_SECONDS = 120.0
STOP_WAIT_ENV = "MLPLAB_STOP_WAIT_SECONDS"
# How often a job that watches the stop file looks at it.
WATCH_INTERVAL_SECONDS = 0.25
WATCHES = "watch"


def start(sweep_dir) -> None:
    """In the launching process, before any job: forget a stop of an earlier sweep that
    ran in the same directory."""
    (Path(sweep_dir) / STOP_FILE).unlink(missing_ok=True)


def stop_signal(sweep_dir) -> str | None:
    """The signal the sweep in `sweep_dir` is stopping on, or None."""
    try:
        return (Path(sweep_dir) / STOP_FILE).read_text().strip() or "SIGTERM"
    except OSError:
        return None


def _markers(directory: Path) -> list[tuple[Path, int, bool, bool]]:
    """(marker, pid, of this host, watches) of each job marker but this process's own."""
    own, host = os.getpid(), socket.gethostname()
    found = []
    for path in (directory / JOBS_DIR).glob("*"):
        try:
            pid = int(path.name)
            words = path.read_text().split()
        except (ValueError, OSError):
            continue
        if pid != own:
            found.append((path, pid, not words or words[0] == host, WATCHES in words[1:]))
    return found


def running_jobs(sweep_dir) -> list[int]:
    """The pids of the jobs running in processes of this host other than this one."""
    return [pid for _, pid, here, _ in _markers(Path(sweep_dir)) if here and alive(pid)]


def stop_wait_seconds() -> float:
    """`STOP_WAIT_SECONDS`, or the positive number `MLPLAB_STOP_WAIT_SECONDS` gives."""
    with contextlib.suppress(KeyError, ValueError):
        value = float(os.environ[STOP_WAIT_ENV])
        if value > 0:
            return value
    return STOP_WAIT_SECONDS


def stop_jobs(sweep_dir, name: str, timeout: float | None = None) -> list[int]:
    """In the launching process: stop the sweep's running jobs as on signal `name`, wait
    (up to `timeout` s, default `stop_wait_seconds()`) until they have ended, and kill
    those of this host that have not, closing their runs KILLED (`kill_unstopped`);
    returns the pids of the jobs that had not ended."""
    timeout = stop_wait_seconds() if timeout is None else timeout
    left = _stop_and_wait(sweep_dir, name, timeout)
    here = [pid for _, pid, this_host, _ in _markers(Path(sweep_dir))
            if this_host and pid in left]
    if here:
        kill_unstopped(sweep_dir, here, name, timeout)
    return left


def kill_unstopped(sweep_dir, pids: list[int], name: str, waited: float) -> list[str]:
    """SIGKILL the jobs `pids` (of this host) that did not stop within `waited` s of signal
    `name`, and close their runs KILLED with a reason saying so, rather than leave them
    RUNNING for the stale-run check; returns the ids of the runs closed."""
    try:  # the store opened first: its stale-run check must not see the killed jobs
        store = _sweep_store(sweep_dir)
    except Exception as error:  # noqa: BLE001 -- the stale-run check closes them later
        log.warning("could not open the sweep's store to close the killed jobs' runs: %s",
                    error)
        store = None
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30  # SIGKILL cannot be caught: only the kernel's time
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    log.warning("%s: killed %d job(s) that did not stop within %g s: %s", name, len(pids),
                waited, pids)
    if store is None:
        return []
    try:
        return _close_runs_of(*store, pids, (
            f"killed by the sweep's launching process: it did not stop within {waited:g} s "
            f"of {name}"))
    except Exception as error:  # noqa: BLE001 -- the stale-run check closes them later
        log.warning("could not close the killed jobs' runs: %s", error)
        return []


def _sweep_store(sweep_dir):
    """(client, parent run) of the sweep, or None without a parent run (imported here: the
    launching process imports MLflow only on this path)."""
    from mlplab.tracking.store import get_client
    from mlplab.tracking.sweep import read_parent_run

    parent = read_parent_run(sweep_dir)
    return None if parent is None else (get_client(parent["tracking_uri"]), parent)


def _close_runs_of(client, parent: dict, pids: list[int], reason: str) -> list[str]:
    """Close KILLED with `reason` the child runs of `parent` held by processes `pids` of
    this host."""
    from mlplab.tracking.stale import (
        HOST_TAG,
        PID_TAG,
        close_with_reason,
        left_by_a_dead_process,
    )

    wanted, host = {str(pid) for pid in pids}, socket.gethostname()
    runs = client.search_runs(
        [parent["experiment_id"]],
        filter_string=f"tags.mlflow.parentRunId = '{parent['run_id']}'", max_results=1000)
    closed = []
    for run in runs:
        tags = run.data.tags
        if (tags.get(HOST_TAG) == host and tags.get(PID_TAG) in wanted
                and left_by_a_dead_process(run)):
            close_with_reason(client, run, "KILLED", {"stop_reason": reason})
            closed.append(run.info.run_id)
    return closed


def _stop_and_wait(sweep_dir, name: str, timeout: float) -> list[int]:
    directory = Path(sweep_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / STOP_FILE).write_text(name)
    jobs = [(path, pid, here) for path, pid, here, _ in _markers(directory)
            if not here or alive(pid)]
    for _, pid, here, watches in _markers(directory):
        if here and not watches:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, FORWARDED_STOP)
    if jobs:
        log.warning("%s: stopping %d running job(s); their runs end KILLED", name, len(jobs))
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for path, pid, here in jobs if path.exists() and (not here or alive(pid))]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@contextlib.contextmanager
def _watching(sweep_dir):
    """While the block runs, a thread sends this process `FORWARDED_STOP` once `.stop`
    appears; it is joined before the block ends, so no stop arrives after the job."""
    done = threading.Event()

    def watch():
        while not done.wait(WATCH_INTERVAL_SECONDS):
            if stop_signal(sweep_dir) is not None:
                os.kill(os.getpid(), FORWARDED_STOP)
                return

    thread = threading.Thread(target=watch, name="mlplab-sweep-stop", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextlib.contextmanager
def sweep_job(sweep_dir, *, own_process: bool, pool_worker: bool, watch: bool = False):
    """Around one job of a sweep: yields False when the sweep is stopping (run nothing).

    `own_process`: the job runs outside the launching process; it then records its pid,
    and SIGINT, SIGTERM and a forwarded stop end it as described in `mlplab.signals`
    (`pool_worker`: the process waits for more jobs afterwards; `watch`: the job watches
    the stop file itself instead of waiting to be signalled)."""
    if sweep_dir is None or not own_process:
        yield stop_signal(sweep_dir) is None if sweep_dir is not None else True
        return
    marker = Path(sweep_dir) / JOBS_DIR / str(os.getpid())
    watching = _watching(sweep_dir) if watch else contextlib.nullcontext()
    with job_signals(lambda: stop_signal(sweep_dir), idle_after=pool_worker), watching:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(socket.gethostname() + (f" {WATCHES}" if watch else ""))
            go = stop_signal(sweep_dir) is None
        except KeyboardInterrupt:  # stopped this very moment: run nothing
            if stopping() is None:
                raise
            go = False
        try:
            yield go
        finally:
            marker.unlink(missing_ok=True)
