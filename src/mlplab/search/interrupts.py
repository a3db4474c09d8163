"""Stopping a sweep part-way: signals, and reading what each job came back with.

Ctrl-C and SIGTERM both stop a sweep as a KeyboardInterrupt in the sweeper; the sweeper
then marks the trials it left RUNNING as FAIL and queues their configurations again, so
the same command resumes. (While a job trains in the sweeper's own process, the trainer's
handler takes the signal instead, ends the run KILLED, and the job's PruningCallback marks
the trial `killed`, which stops the sweep the same way.)
"""

from __future__ import annotations

import contextlib
import math
import numbers
import signal
import threading
from typing import Any

from hydra.core.utils import JobReturn


@contextlib.contextmanager
def sigterm_as_keyboard_interrupt():
    """Within the block, SIGTERM raises KeyboardInterrupt (main thread, default handler
    only: a handler someone else installed is left alone)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


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
