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
  the sweep stops; Ctrl-C or a second SIGTERM stops at once (see `mlplab.search.sweeper`),
  and a Ctrl-C whose KeyboardInterrupt Python drops (raised in a `__del__` or a weakref
  callback) stops it after the running batch.
- A SLURM job warned of its time limit (SIGUSR2): `stop_as_on_sigterm` stops it as SIGTERM
  would, before submitit requeues it (see `mlplab.multirun.slurm_job`).

- A grid sweep whose jobs run in other processes (joblib, local_parallel, submitit_local):
  the launching process forwards the stop to every running job as `FORWARDED_STOP` and
  waits for them to close their runs KILLED before it stops (`mlplab.multirun.stopping`
  keeps the files that say which jobs run and that the sweep stops). A job that also got
  the signal itself (sent to the whole process group) takes the two as one stop
  (`FitSignals.forwarded`, `stopping`), so its fit still checkpoints.

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
# What a sweep's launching process sends its jobs to stop them as on the signal it got
# (named in the sweep's stop file): not SIGINT/SIGTERM themselves, so a job can tell a
# forwarded stop from a second signal (which would end a fit without its checkpoint).
FORWARDED_STOP = signal.SIGUSR1

# The signal this process is stopping on, once one arrived: process state, because a
# signal is (a later one, forwarded or sent to the group too, is the same stop).
_STOPPING: list[str] = []


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def note_stop(name: str) -> None:
    """Record that this process is stopping on signal `name` (the first one counts)."""
    if not _STOPPING:
        _STOPPING.append(name)


def clear_stop() -> None:
    """Forget a stop: a new job, run or fit in this process has not been stopped yet."""
    _STOPPING.clear()


def stopping() -> str | None:
    """The signal this process is stopping on, or None."""
    return _STOPPING[0] if _STOPPING else None


class FitSignals:
    """Context manager calling `on_signal(name)` on the first SIGINT/SIGTERM; restores the
    previous handlers on exit, so the trainer never changes how the rest of the program
    reacts to signals."""

    def __init__(self, on_signal):
        self.on_signal = on_signal
        self.received: str | None = None
        self._forwarded = False  # the stop came as FORWARDED_STOP: absorb one direct signal
        self._previous: dict = {}

    def __enter__(self) -> FitSignals:
        if _in_main_thread():
            clear_stop()
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self._forwarded:  # the same stop, sent to the process group as well
            self._forwarded = False
            return
        if self.received is not None:
            self._restore()
            raise KeyboardInterrupt(f"second signal ({name}) while stopping")
        self.received = name
        note_stop(name)
        self.on_signal(name)

    def forwarded(self, name: str) -> None:
        """A stop forwarded by a sweep's launching process: as a first signal `name`,
        unless one arrived already; a direct signal after it is taken as the same stop."""
        if self.received is None:
            self._forwarded = True
            self.received = name
            note_stop(name)
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
    """A signal handler that stops the grid sweep of `sweep_dir` with `SweepInterrupted`,
    after `on_stop(signal name)` (which stops the jobs running elsewhere and waits for
    them); a second signal while it waits stops at once."""

    def __init__(self, sweep_dir: str | None, on_stop=None):
        self.sweep_dir, self.on_stop = sweep_dir, on_stop
        self.received: str | None = None

    def __call__(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received is None:  # kept for `pending_sweep_stop` too
            self.received = name
            if self.on_stop is not None:
                self.on_stop(name)
        raise SweepInterrupted(self.received if self.on_stop is not None else name,
                               self.sweep_dir)


def _forwarded_stop(read_name):
    """The FORWARDED_STOP handler of a sweep's job in its own process: stop as on the
    signal `read_name()` names, unless this process is stopping already."""

    def handle(signum, frame):
        name = read_name() or "SIGTERM"
        handler = signal.getsignal(signal.Signals[name])
        owner = getattr(handler, "__self__", None)
        if isinstance(owner, FitSignals):
            owner.forwarded(name)
        elif stopping() is None:
            note_stop(name)
            raise SweepInterrupted(name)

    return handle


def _job_stop(signum, frame):
    """SIGINT/SIGTERM to a sweep's job outside its fit: stop the job (once)."""
    if stopping() is None:
        name = signal.Signals(signum).name
        note_stop(name)
        raise SweepInterrupted(name)


@contextlib.contextmanager
def job_signals(read_name, *, idle_after: bool):
    """Around a sweep's job in a process of its own (main thread only): SIGINT, SIGTERM
    and FORWARDED_STOP stop it once (the trainer's handlers take over while it fits;
    `read_name()` names the signal a forwarded stop stands for). A job that stopped so
    ends without raising. With `idle_after` (a pool's worker, which waits for its next
    job) SIGINT and SIGTERM are ignored after the job: an idle worker that dies of a
    Ctrl-C to the process group breaks the pool, and the pool then kills the workers
    still closing their runs."""
    if not _in_main_thread():
        yield
        return
    clear_stop()  # a pool's worker: what stopped its last job is not this job's
    previous = {signum: signal.signal(signum, _job_stop) for signum in SIGNALS}
    previous[FORWARDED_STOP] = signal.signal(FORWARDED_STOP, _forwarded_stop(read_name))
    try:
        yield
    except KeyboardInterrupt:
        if stopping() is None:
            raise
        log.warning("job stopped (%s)", stopping())
    finally:
        for signum, handler in previous.items():
            if idle_after and signum in SIGNALS:
                handler = signal.SIG_IGN
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def signal_of_killed_run(reason: str | None) -> str:
    """SIGINT or SIGTERM, from a KILLED run's reason ("interrupted by SIGINT after ...")."""
    return "SIGINT" if reason and "SIGINT" in reason else "SIGTERM"


class StopRequest:
    """Remembers the first SIGTERM (and a SIGINT) so a sweep can stop between batches."""

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
            with self._remembering_sigint():
                yield
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    @contextlib.contextmanager
    def _remembering_sigint(self):
        """Within the block, SIGINT raises KeyboardInterrupt as Python's own handler does,
        after setting the request. Python raises it in whatever code runs when the signal
        comes, and where that is a weakref callback or a `__del__` (the garbage collector
        runs them anywhere) it only prints "Exception ignored" and carries on: the sweep
        then still stops after the running batch (default handler only)."""
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield
            return

        def handle(signum, frame):
            self.request("SIGINT")
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)


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


@contextlib.contextmanager
def sigint_deferred():
    """Hold a SIGINT that arrives inside the block until it ends, then let the handler that
    was in place take it: for steps that must not be cut in two (a trial asked of the
    study but not yet recorded as this worker's would be left RUNNING by nobody)."""
    if not _in_main_thread():
        yield
        return
    arrived = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: arrived.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if arrived:
            signal.raise_signal(signal.SIGINT)


# Python's own handlers, which the sweep's may replace: a handler someone else installed
# is theirs.
_DEFAULT_HANDLERS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


def install_sweep_handlers(sweep_dir: str | None, on_stop=None) -> None:
    """From here on SIGINT and SIGTERM raise `SweepInterrupted` naming `sweep_dir` (main
    thread, Python's default handlers only): for SIGTERM, where the default would end the
    process on the spot; for SIGINT, a KeyboardInterrupt that says which sweep it stops.
    `on_stop(signal name)` runs first (jobs in other processes). The trainer's own handlers
    take over while a job trains in this process."""
    if not _in_main_thread():
        return
    handler = _RaiseSweepInterrupted(sweep_dir, on_stop)
    for signum, default in _DEFAULT_HANDLERS.items():
        if signal.getsignal(signum) is default:
            signal.signal(signum, handler)


def pending_sweep_stop() -> SweepInterrupted | None:
    """The stop of a grid sweep whose handler (`install_sweep_handlers`) took a signal, or
    None. Python raises the handler's exception in whatever code runs when the signal comes,
    and drops it where that is a `__del__` or a weakref callback (the garbage collector
    runs them anywhere): the sweep asks this before each job so that the signal still
    stops it."""
    for signum in SIGNALS:
        handler = signal.getsignal(signum) if _in_main_thread() else None
        if isinstance(handler, _RaiseSweepInterrupted) and handler.received is not None:
            return SweepInterrupted(handler.received, handler.sweep_dir)
    return None


def as_sweep_interrupted(error: KeyboardInterrupt) -> KeyboardInterrupt:
    """`error`, or the `SweepInterrupted` the sweep's handler raised when code in between
    replaced it by a plain KeyboardInterrupt (Ray's `ray.get`, which sees the exception
    raised while it waits and raises one of its own)."""
    if isinstance(error, SweepInterrupted):
        return error
    return pending_sweep_stop() or error


def restore_sweep_handlers() -> None:
    """Undo `install_sweep_handlers` (only where its handler is still the one in place)."""
    if not _in_main_thread():
        return
    for signum, default in _DEFAULT_HANDLERS.items():
        if isinstance(signal.getsignal(signum), _RaiseSweepInterrupted):
            signal.signal(signum, default)
