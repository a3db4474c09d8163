"""Stopping a grid sweep whose jobs run in other processes (joblib, local_parallel,
submitit_local), through two kinds of file in the sweep directory:

- `.jobs/<pid>`: a job running in process <pid> (written by the job when it starts,
  removed when it ends);
- `.stop`: the sweep is stopping, and on which signal (written by the launching process).

On SIGINT or SIGTERM the launching process writes `.stop`, sends `FORWARDED_STOP` to every
running job and waits until each has ended (its fit finishes the epoch, checkpoints and
closes its run KILLED with a stop_reason), then stops the launcher. A job that starts
after `.stop` exists returns at once, without a run. The order of the writes makes this
race-free: a job writes its pid before it looks for `.stop`, the launching process writes
`.stop` before it lists the pids, so a job is either signalled or sees the stop itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
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


def running_jobs(sweep_dir) -> list[int]:
    """The pids of the jobs running in processes other than this one."""
    own = os.getpid()
    pids = []
    for path in (Path(sweep_dir) / JOBS_DIR).glob("*"):
        with contextlib.suppress(ValueError):
            pid = int(path.name)
            if pid != own and alive(pid):
                pids.append(pid)
    return pids


def stop_jobs(sweep_dir, name: str, timeout: float = STOP_WAIT_SECONDS) -> list[int]:
    """In the launching process: stop the sweep's running jobs as on signal `name` and
    wait (up to `timeout` s) until they have ended; returns those still running."""
    directory = Path(sweep_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / STOP_FILE).write_text(name)
    pids = running_jobs(directory)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, FORWARDED_STOP)
    if pids:
        log.warning("%s: stopping %d running job(s); their runs end KILLED", name, len(pids))
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if (directory / JOBS_DIR / str(p)).exists() and alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@contextlib.contextmanager
def sweep_job(sweep_dir, *, own_process: bool, pool_worker: bool):
    """Around one job of a sweep: yields False when the sweep is stopping (run nothing).

    `own_process`: the job runs outside the launching process; it then records its pid,
    and SIGINT, SIGTERM and a forwarded stop end it as described in `mlplab.signals`
    (`pool_worker`: the process waits for more jobs afterwards)."""
    if sweep_dir is None or not own_process:
        yield stop_signal(sweep_dir) is None if sweep_dir is not None else True
        return
    marker = Path(sweep_dir) / JOBS_DIR / str(os.getpid())
    with job_signals(lambda: stop_signal(sweep_dir), idle_after=pool_worker):
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("")
            go = stop_signal(sweep_dir) is None
        except KeyboardInterrupt:  # stopped this very moment: run nothing
            if stopping() is None:
                raise
            go = False
        try:
            yield go
        finally:
            marker.unlink(missing_ok=True)
