"""Signals, in one place: how SIGINT and SIGTERM stop a fit, a grid sweep and an Optuna
sweep, and the exit statuses they end with.

- A fit (`FitSignals`, installed by the trainer only while `fit` runs): the first
  SIGINT/SIGTERM finishes the epoch, checkpoints and ends the run KILLED; a second one
  raises KeyboardInterrupt at once, for a user who really wants out.
- A grid sweep under the basic launcher: the job a signal ended KILLED makes the task
  function raise `SweepInterrupted` (a KeyboardInterrupt, which Hydra does not catch);
  the Hydra callback `mlplab.multirun.callbacks.StopSweepOnSignal` turns a SIGTERM between
  jobs into the same exception.
- An Optuna sweep (`StopRequest`): the first SIGTERM lets the running batch finish, then
  the sweep stops; Ctrl-C or a second SIGTERM stops at once (see `mlplab.search.sweeper`).
- A SLURM job warned of its time limit (SIGUSR2): `stop_as_on_sigterm` stops it as SIGTERM
  would, before submitit requeues it (see `mlplab.multirun.slurm_job`).

Every stop exits with `EXIT_STATUS[signal name]`. Signal handlers can only be set from the
main thread; elsewhere (a thread-based launcher) nothing is installed. A handler someone
else installed is left alone wherever this module says "default handler only".
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The shell's convention, 128 + signal number.
EXIT_STATUS = {"SIGINT": 130, "SIGTERM": 143}


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class FitSignals:
    """Context manager calling `on_signal(name)` on the first SIGINT/SIGTERM; restores the
    previous handlers on exit, so the trainer never changes how the rest of the program
    reacts to signals."""

    def __init__(self, on_signal):
        self.on_signal = on_signal
        self.received: str | None = None
        self._previous: dict = {}

    def __enter__(self) -> FitSignals:
        if _in_main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            self._restore()
            raise KeyboardInterrupt(f"second signal ({name}) while stopping")
        self.received = name
        self.on_signal(name)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def __exit__(self, *exc) -> bool:
        self._restore()
        return False


def stop_as_on_sigterm(signum: int, frame) -> None:
    """Handle signal `signum` as this process handles SIGTERM right now: a fit finishes its
    epoch, checkpoints and ends KILLED (the reason names `signum`), an open MLflow run
    closes KILLED, a job outside both stops. Used for a cluster's "you will be stopped"
    signal (SLURM's SIGUSR2 before a time limit). Does nothing when a fit is already
    stopping (its second signal would end it without a checkpoint) or when SIGTERM's
    handler is not a Python function."""
    handler = signal.getsignal(signal.SIGTERM)
    owner = getattr(handler, "__self__", None)
    if isinstance(owner, FitSignals) and owner.received is not None:
        return
    if callable(handler):
        handler(signum, frame)


class SweepInterrupted(KeyboardInterrupt):
    """A grid sweep stopped by a signal; `signal_name` is SIGINT or SIGTERM, `sweep_dir` the
    sweep's directory (where its parent run is named), so that whoever catches it can close
    that parent run."""

    def __init__(self, signal_name: str, sweep_dir: str | None = None):
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.sweep_dir = sweep_dir

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS.get(self.signal_name, EXIT_STATUS["SIGINT"])


class _RaiseSweepInterrupted:
    """A signal handler that stops the grid sweep of `sweep_dir` with `SweepInterrupted`."""

    def __init__(self, sweep_dir: str | None):
        self.sweep_dir = sweep_dir

    def __call__(self, signum, frame):
        raise SweepInterrupted(signal.Signals(signum).name, self.sweep_dir)


def signal_of_killed_run(reason: str | None) -> str:
    """SIGINT or SIGTERM, from a KILLED run's reason ("interrupted by SIGINT after ...")."""
    return "SIGINT" if reason and "SIGINT" in reason else "SIGTERM"


class StopRequest:
    """Remembers the first SIGTERM so a sweep can stop between batches."""

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
        handler only)."""
        if not _in_main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
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


@contextlib.contextmanager
def sigterm_ignored():
    """Let clean-up finish even if SIGTERM is sent again."""
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# Python's own handlers, which the sweep's may replace: a handler someone else installed
# is theirs.
_DEFAULT_HANDLERS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


def install_sweep_handlers(sweep_dir: str | None) -> None:
    """From here on SIGINT and SIGTERM raise `SweepInterrupted` naming `sweep_dir` (main
    thread, Python's default handlers only): for SIGTERM, where the default would end the
    process on the spot; for SIGINT, a KeyboardInterrupt that says which sweep it stops.
    The trainer's own handlers take over while a job trains in this process."""
    if not _in_main_thread():
        return
    handler = _RaiseSweepInterrupted(sweep_dir)
    for signum, default in _DEFAULT_HANDLERS.items():
        if signal.getsignal(signum) is default:
            signal.signal(signum, handler)


def restore_sweep_handlers() -> None:
    """Undo `install_sweep_handlers` (only where its handler is still the one in place)."""
    if not _in_main_thread():
        return
    for signum, default in _DEFAULT_HANDLERS.items():
        if isinstance(signal.getsignal(signum), _RaiseSweepInterrupted):
            signal.signal(signum, default)
