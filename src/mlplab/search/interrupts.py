"""Stopping a sweep part-way: signals, and reading what each job came back with.

- SIGTERM (first): the running batch finishes, its trials are told, the summary written,
  then the sweep exits with status 143. Jobs that got the signal too (a process-group kill)
  end their runs KILLED at the end of an epoch; their trials are marked FAIL and queued
  again. A second SIGTERM stops at once, like Ctrl-C.
- Ctrl-C / SIGINT, second SIGTERM: KeyboardInterrupt now; the sweeper marks the trials it
  left RUNNING as FAIL and queues their configurations again.
- A job killed while training in the sweeper's own process (basic launcher): the trainer
  takes the signal, ends the run KILLED, and the job's PruningCallback marks the trial
  `killed`, which stops the sweep after the batch with the signal's exit status.

Either way, running the same command again resumes the study.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import signal
import threading
from typing import Any

from hydra.core.utils import JobReturn

log = logging.getLogger(__name__)

EXIT_STATUS = {"SIGINT": 130, "SIGTERM": 143}


class StopRequest:
    """Remembers the first SIGTERM so the sweep can stop between batches."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def request(self, name: str) -> None:
        self.signal_name = self.signal_name or name

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS.get(self.signal_name or "", 1)

    @contextlib.contextmanager
    def handling_sigterm(self):
        """Within the block, the first SIGTERM only sets the request (main thread, default
        handler only: a handler someone else installed is left alone)."""
        if (threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
            yield
            return

        def handle(signum, frame):
            if self.signal_name is not None:
                raise KeyboardInterrupt("second SIGTERM")
            self.request("SIGTERM")
            log.warning("SIGTERM: the running batch finishes, then the sweep stops "
                        "(send it again to stop at once)")

        signal.signal(signal.SIGTERM, handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def signal_of_killed_run(reason: str | None) -> str:
    """SIGINT or SIGTERM, from a KILLED run's reason ("interrupted by SIGINT after ...")."""
    return "SIGINT" if reason and "SIGINT" in reason else "SIGTERM"


@contextlib.contextmanager
def sigterm_ignored():
    """Let clean-up finish even if SIGTERM is sent again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def job_outcome(result: JobReturn) -> Any:
    """A job's return value, or the exception it raised."""
    try:
        return result.return_value
    except Exception as error:  # the job failed; Hydra re-raises its exception here
        return error


def describe_outcome(outcome: Any) -> str:
    if isinstance(outcome, BaseException):
        return f"{type(outcome).__name__}: {outcome}"
    return f"objective {outcome!r}"


def is_objective(value: Any) -> bool:
    """A usable objective: a finite real number (NumPy scalars included), not a bool."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))
