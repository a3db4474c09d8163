"""Stopping a grid sweep (Hydra's basic sweeper) with Ctrl-C or `kill`.

Under the basic launcher the jobs run one after another in the launching process. The
trainer takes SIGINT/SIGTERM gracefully: it finishes the epoch, checkpoints, and ends the
run KILLED. Without more, the job would then return as any other and Hydra would start
the next one, so a sweep could only be stopped by signalling it once per job. Here:

- the task function raises `SweepInterrupted` after a job that ended KILLED in the
  launching process; it unwinds Hydra (it is a KeyboardInterrupt, which Hydra does not
  catch), and the CLI exits 130 (SIGINT) or 143 (SIGTERM) with one line;
- `StopOnSignal` (a Hydra callback) turns a SIGTERM that comes between jobs (or, under
  a parallel launcher, while the launching process waits) into the same exception, where
  Python's default would end the process on the spot and leave the sweep's parent run
  RUNNING.

Either way the CLI then closes the parent run, tagged `stop_reason`, before it exits. Other sweepers
(the Optuna one handles signals itself) and other launchers are left alone.
"""

from __future__ import annotations

import signal
import threading

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mlplab.search.interrupts import EXIT_STATUS

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


class SweepInterrupted(KeyboardInterrupt):
    """A grid sweep stopped by a signal; `signal_name` is SIGINT or SIGTERM."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS.get(self.signal_name, EXIT_STATUS["SIGINT"])


def grid_sweep(hydra: DictConfig) -> bool:
    """Whether the `hydra` node describes a sweep of Hydra's basic sweeper."""
    return OmegaConf.select(hydra, "sweeper._target_", default=None) == BASIC_SWEEPER


def stops_on_signal(hydra: DictConfig) -> bool:
    """Whether the `hydra` node describes a grid sweep whose jobs run in the launching
    process (the basic sweeper and launcher)."""
    return (grid_sweep(hydra)
            and OmegaConf.select(hydra, "launcher._target_", default=None) == BASIC_LAUNCHER)


def _raise_sweep_interrupted(signum, frame):
    raise SweepInterrupted(signal.Signals(signum).name)


class StopOnSignal(Callback):
    """Hydra callback, configured as
    `hydra.callbacks.stop_on_signal._target_: mlplab.sweep_signals.StopOnSignal`.

    Only while a grid sweep runs, and only if SIGTERM still has its default action: a
    handler someone else installed is theirs. Under a parallel launcher the exception
    stops the launcher's wait: joblib then ends its workers at once (runs they had open
    stay RUNNING), and the parent run is closed as stopped early.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if (grid_sweep(config.hydra) and threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL):
            signal.signal(signal.SIGTERM, _raise_sweep_interrupted)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) is _raise_sweep_interrupted):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
