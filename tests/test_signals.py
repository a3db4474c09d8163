"""The signal mechanics of `mlplab.signals` with real signals sent to this process: a stop
forwarded by a sweep's launching process and the same signal from the process group are
one stop; a job of a sweep stops once and ends without raising."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mlplab.signals import FORWARDED_STOP, FitSignals, job_signals, sigint_deferred, stopping


def deliver(signum) -> None:
    """Send `signum` to this process and let Python run its handler."""
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # the handler runs at the next bytecode of the main thread


def test_a_forwarded_stop_and_the_groups_signal_are_one_stop():
    seen = []
    handler = job_signals(lambda: "SIGINT", idle_after=False)
    with handler, FitSignals(seen.append) as fit:
        deliver(FORWARDED_STOP)  # from the launching process, first
        deliver(signal.SIGINT)  # the same Ctrl-C, from the group: no KeyboardInterrupt
        assert seen == ["SIGINT"] and fit.received == "SIGINT"
        with pytest.raises(KeyboardInterrupt, match="second signal"):
            deliver(signal.SIGINT)  # a Ctrl-C more is a second signal, as without a sweep


def test_the_groups_signal_then_the_forwarded_stop_are_one_stop():
    seen = []
    with job_signals(lambda: "SIGTERM", idle_after=False), FitSignals(seen.append):
        deliver(signal.SIGTERM)
        deliver(FORWARDED_STOP)
        assert seen == ["SIGTERM"]
        assert stopping() == "SIGTERM"


def test_a_job_stopped_outside_its_fit_ends_without_raising_and_its_worker_idles():
    before = signal.getsignal(signal.SIGINT)
    reached_the_end = False
    try:
        with job_signals(lambda: "SIGTERM", idle_after=True):
            deliver(FORWARDED_STOP)  # raises SweepInterrupted here, the job stops
            reached_the_end = True
        assert not reached_the_end
        assert stopping() == "SIGTERM"
        # An idle pool worker outlives a Ctrl-C or SIGTERM to the group.
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        assert signal.getsignal(FORWARDED_STOP) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, before)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_a_signal_that_is_not_a_stop_still_raises_out_of_a_job():
    with pytest.raises(KeyboardInterrupt), job_signals(lambda: None, idle_after=False):
        raise KeyboardInterrupt  # not from a signal this job took: not swallowed


def test_sigint_deferred_holds_ctrl_c_until_the_block_ends():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_deferred():
            signal.raise_signal(signal.SIGINT)  # Ctrl-C in the middle of the step
            steps.append("finished the step")
        steps.append("after the block")  # never reached: the held SIGINT is taken first
    assert steps == ["finished the step"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
