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
returns at once, without a run. The order of the writes makes this race-free: a job writes
its marker before it looks for `.stop`, the launching process writes `.stop` before it
lists the markers, so a job is either stopped or sees the stop itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
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
# checkpoint and a few store writes, on a loaded machine.
STOP_WAIT_SECONDS = 120.0
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


def stop_jobs(sweep_dir, name: str, timeout: float = STOP_WAIT_SECONDS) -> list[int]:
    """In the launching process: stop the sweep's running jobs as on signal `name` and
    wait (up to `timeout` s) until they have ended; returns the pids of those still
    running."""
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
