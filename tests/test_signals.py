"""The signal mechanics of `mlplab.signals` with real signals sent to this process: a stop
forwarded by a sweep's launching process and the same signal from the process group are
one stop; a job of a sweep stops once and ends without raising."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mlplab.signals import (
    FORWARDED_STOP,
    FitSignals,
    StopRequest,
    SweepInterrupted,
    clear_stop,
    install_sweep_handlers,
    job_signals,
    pending_sweep_stop,
    restore_sweep_handlers,
    sigint_deferred,
    stopping,
)


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


def test_a_job_that_watches_the_stop_file_stops_itself_once_it_appears(tmp_path):
    """Ray's jobs (maybe on another host) are not signalled: their own thread sees `.stop`
    and sends them the forwarded stop, which ends the job as the signal `.stop` names."""
    from mlplab.multirun import stopping as sweep_stopping

    reached_the_end = False
    with sweep_stopping.sweep_job(tmp_path, own_process=True, pool_worker=False,
                                  watch=True) as go:
        assert go
        marker = tmp_path / sweep_stopping.JOBS_DIR / str(os.getpid())
        assert marker.read_text().split()[1:] == [sweep_stopping.WATCHES]
        (tmp_path / sweep_stopping.STOP_FILE).write_text("SIGTERM")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the watcher interrupts this loop
            time.sleep(0.05)
        reached_the_end = True
    assert not reached_the_end, "the job did not stop when the stop file appeared"
    assert stopping() == "SIGTERM" and not marker.exists()
    clear_stop()  # what stopped this job is not the next test's


def test_stop_jobs_signals_only_the_jobs_of_this_host_that_do_not_watch(tmp_path):
    """A marker of another host names no process here, and a watching job stops itself:
    neither pid is sent the forwarded stop (SIGUSR1 would end these sleeps); this host's
    job is. This host's watching job, which did not stop in time, is then killed; the
    other host's pid is left alone."""
    import socket
    import subprocess

    from mlplab.multirun import stopping as sweep_stopping

    jobs = tmp_path / sweep_stopping.JOBS_DIR
    jobs.mkdir()
    sleeps = [subprocess.Popen(["sleep", "300"]) for _ in range(3)]
    try:
        here, watching, elsewhere = sleeps
        (jobs / str(here.pid)).write_text(socket.gethostname())
        (jobs / str(watching.pid)).write_text(f"{socket.gethostname()} watch")
        (jobs / str(elsewhere.pid)).write_text("another-host")
        left = sweep_stopping.stop_jobs(tmp_path, "SIGINT", timeout=1)
        assert here.wait(timeout=30) == -FORWARDED_STOP
        assert watching.wait(timeout=30) == -signal.SIGKILL  # not stopped in time
        assert elsewhere.poll() is None
        # waited for: their markers are there and their processes alive
        assert sorted(left) == sorted([watching.pid, elsewhere.pid])
        assert (tmp_path / sweep_stopping.STOP_FILE).read_text() == "SIGINT"
    finally:
        for process in sleeps:
            process.kill()
            process.wait()


class _SignalledWhileCollected:
    """An object whose `__del__` receives a SIGINT: Python raises the KeyboardInterrupt in
    `__del__`, prints "Exception ignored" and carries on, as it does in weakref callbacks."""

    def __del__(self):
        deliver(signal.SIGINT)


def test_a_ctrl_c_that_python_swallows_still_stops_an_optuna_sweep():
    stop = StopRequest()
    with stop.handling_sigterm():
        _SignalledWhileCollected()  # collected at once: the interrupt is lost in __del__
        assert stop.signal_name == "SIGINT"  # so the sweep stops after its running batch
        with pytest.raises(KeyboardInterrupt):  # and elsewhere Ctrl-C stops at once
            deliver(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_that_python_swallows_still_stops_a_grid_sweep_before_its_next_job():
    from mlplab.multirun.callbacks import StopSweepOnSignal

    install_sweep_handlers("/some/sweep")
    try:
        assert pending_sweep_stop() is None
        StopSweepOnSignal().on_job_start(config=None)  # no signal yet: the job starts
        _SignalledWhileCollected()  # the SweepInterrupted is lost in __del__
        stop = pending_sweep_stop()
        assert isinstance(stop, SweepInterrupted)
        assert (stop.signal_name, stop.sweep_dir) == ("SIGINT", "/some/sweep")
        with pytest.raises(SweepInterrupted, match="SIGINT"):
            StopSweepOnSignal().on_job_start(config=None)
    finally:
        restore_sweep_handlers()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert pending_sweep_stop() is None


def test_a_signal_python_swallows_while_jobs_run_elsewhere_ends_the_sweep_as_stopped(tmp_path):
    """Under a launcher whose jobs run in other processes, the launching process waits in
    the launcher's code when the signal comes; if Python drops the exception there, the
    jobs are stopped all the same (the handler's on_stop) and the sweep's end reports the
    stop instead of a verdict, so the CLI closes the parent as stopped and exits non-zero."""
    from omegaconf import OmegaConf

    from mlplab.multirun.callbacks import MlflowSweepCallback, StopSweepOnSignal
    from mlplab.tracking.sweep import read_parent_run, write_parent_file

    stopped = []
    write_parent_file(tmp_path, {"run_id": "r", "experiment_id": "1", "tracking_uri": "x",
                                 "summary": {}, "closed": False})
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    install_sweep_handlers(str(tmp_path), stopped.append)
    try:
        _SignalledWhileCollected()  # the SweepInterrupted is lost in __del__
        assert stopped == ["SIGINT"]  # the running jobs were told to stop
        # Hydra calls the sweep's end callbacks last-first: the verdict's, then the signal's.
        MlflowSweepCallback().on_multirun_end(config=config)
        assert read_parent_run(tmp_path)["closed"] is False  # left for the CLI to close
        with pytest.raises(SweepInterrupted, match="SIGINT") as raised:
            StopSweepOnSignal().on_multirun_end(config=config)
        assert raised.value.sweep_dir == str(tmp_path)
    finally:
        restore_sweep_handlers()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    StopSweepOnSignal().on_multirun_end(config=config)  # no signal: the sweep just ends
