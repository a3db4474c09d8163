"""Several sweeper processes driving one study: who holds which trial, and the budget.

Any number of `mlplab train -m hydra/sweeper=mlplab_optuna ...` processes given the same
`study_name` and `storage` (on one machine, or on many: a SLURM array of "agents") work
on one study. Each one is a *worker*, named `<host>:<pid>:<process start time>`:

- **Claims.** A worker asks for trials only while holding the study lock
  (`mlplab.search.locks`), and asks only while COMPLETE + PRUNED + RUNNING trials, all
  workers' together, stay below `n_trials`. Counting and asking are then one step for the
  whole study, so it never runs more than `n_trials` trials in total, however many workers
  race for the last one. Every claimed trial gets the user attr `mlplab_worker` and a first
  heartbeat before the lock is released.
- **Heartbeats.** While a worker holds trials (asked, not yet told), a thread records
  Optuna's RDB heartbeat for each of them every `heartbeat_interval` seconds. A worker that
  dies (SIGKILL, a lost node) stops beating.
- **Reaping.** Before claiming, a worker fails the trials of dead workers and queues
  their configurations again (`enqueue_trial`, user attr `retry_of`), so a killed
  worker's trial runs again instead of being orphaned. A trial is a dead worker's when its
  heartbeat is older than `grace_period` (Optuna's `fail_stale_trials`), or at once when
  its worker ran on this host and that process is gone, or when it has no worker at all
  (its worker died between asking and naming itself, or an older mlplab asked it). The
  state change to FAIL is the claim: only one reaper wins it, so a trial is queued once.
  The dead worker's MLflow runs of that trial (and its sweep's parent run) are closed
  KILLED, so no run stays RUNNING.

Optuna's own `study.optimize` would run a heartbeat thread per trial in the process that
evaluates it; the sweeper evaluates nothing itself (the launcher's jobs do, possibly on
other machines), so it beats for the trials it is waiting on.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, Trial, TrialState

from mlplab.processes import GONE, signal_zero, start_ticks, state
from mlplab.search.locks import StudyLock
from mlplab.signals import sigint_deferred

log = logging.getLogger(__name__)

WORKER_ATTR = "mlplab_worker"
RETRY_ATTR = "retry_of"
# What counts against n_trials while a sweep runs: finished trials and those some worker
# is evaluating. WAITING trials (queued retries) are not counted: the next claim pops them.
LIVE_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{start_ticks()}"


def worker_is_gone(worker: str) -> bool:
    """Whether `worker` (`host:pid:start`) ran on this host and that process no longer
    exists (a zombie counts as gone). Workers on other hosts are judged by heartbeats."""
    parts = worker.rsplit(":", 2)
    if len(parts) != 3:
        return False
    host, pid, started = parts
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if signal_zero(pid) == GONE:
        return True
    letter = state(pid)  # another user's live process is judged by its /proc entry too
    if letter is None:
        return False
    return letter == "Z" or (bool(started) and start_ticks(pid) != started)


class StudyWorker:
    """This process's share of a study: the trials it holds, their heartbeats, its claims.

    `on_requeue(frozen_trial, worker)` is called for each dead worker's trial this process
    reaped (after its retry was queued), e.g. to close that worker's MLflow runs.
    """

    def __init__(self, study: optuna.Study, storage: Any, url: str, keys: set[str],
                 heartbeat_interval: int,
                 on_requeue: Callable[[FrozenTrial, str | None], None] | None = None) -> None:
        self.study, self.storage, self.keys = study, storage, keys
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.worker = this_worker()
        self.lock = StudyLock(url, study.study_name, storage.engine)
        self.heartbeat_interval = heartbeat_interval
        self.on_requeue = on_requeue
        self.held: dict[int, int] = {}  # trial number -> trial id, asked and not yet told
        self._held_lock = threading.Lock()
        self._stop_beating = threading.Event()
        self._beater: threading.Thread | None = None
        self._reaped: list[int] = []
        # Optuna's `fail_stale_trials` calls this for each trial whose heartbeat it let lapse.
        storage.heartbeat_stale_trial_callback = self.requeue

    # -- trial ids without Optuna's private attributes ----------------------------------
    def trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    # -- claims ---------------------------------------------------------------------------
    def claim(self, n: int, distributions: dict, budget: int) -> list[Trial]:
        """Up to `n` new trials (queued retries first), never past `budget` live trials in
        the whole study; [] when the budget is held by trials running elsewhere."""
        with self.lock:
            self.reap()
            live = len(self.study.get_trials(deepcopy=False, states=LIVE_STATES))
            trials = []
            for _ in range(max(0, min(n, budget - live))):
                with sigint_deferred(), warnings.catch_warnings():
                    # "Heartbeat ... is supposed to be used with Study.optimize": this
                    # worker records the heartbeats itself (see the module docstring).
                    warnings.simplefilter("ignore")
                    trial = self.study.ask(distributions)
                    trial_id = self.trial_id(trial.number)
                    trial.set_user_attr(WORKER_ATTR, self.worker)
                    self.storage.record_heartbeat(trial_id)
                    with self._held_lock:
                        self.held[trial.number] = trial_id
                trials.append(trial)
        if trials:
            self._start_beating()
        return trials

    def release(self, number: int) -> None:
        """Trial `number` was told (or abandoned): stop beating for it."""
        with self._held_lock:
            self.held.pop(number, None)

    def live_elsewhere(self) -> int:
        """RUNNING trials of other workers (what an idle worker is waiting for)."""
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return sum(1 for t in running if t.user_attrs.get(WORKER_ATTR) != self.worker)

    # -- reaping dead workers' trials -----------------------------------------------------
    def reap(self) -> list[int]:
        """Fail and queue again the trials of dead workers; returns their numbers.

        Called with the study lock held, so a worker between `ask` and naming itself on its
        trial is never mistaken for a dead one, and a retry is queued before any claim
        could count the failed trial's place as free.
        """
        self._reaped = []
        reaped: list[FrozenTrial] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            # Heartbeat-stale trials: the storage's callback (`requeue`) queues each one.
            optuna.storages.fail_stale_trials(self.study)
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker = trial.user_attrs.get(WORKER_ATTR)
            if worker == self.worker:
                continue
            if worker is None and not self.lock.across_processes:
                continue  # without a real lock a claim in progress looks the same
            if worker is not None and not worker_is_gone(worker):
                continue
            trial_id = self.trial_id(trial.number)
            try:
                if not self.storage.set_trial_state_values(trial_id, TrialState.FAIL):
                    continue
            except UpdateFinishedTrialError:
                continue  # another worker reaped it first
            reaped.append(self.storage.get_trial(trial_id))
        for trial in reaped:
            self.requeue(self.study, trial)
        return sorted(self._reaped)

    def requeue(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Queue a dead worker's trial again (the storage's stale-trial callback too)."""
        self._reaped.append(trial.number)
        if set(trial.params) == self.keys:
            study.enqueue_trial(trial.params, user_attrs={RETRY_ATTR: trial.number})
        worker = trial.user_attrs.get(WORKER_ATTR)
        log.warning("Trial %d of worker %s, which is gone, marked FAIL%s", trial.number,
                    worker or "(unknown)",
                    " and queued again" if set(trial.params) == self.keys else "")
        if self.on_requeue is not None:
            try:
                self.on_requeue(trial, worker)
            except Exception:  # noqa: BLE001 -- closing foreign runs must not stop the sweep
                log.exception("could not close the MLflow runs of trial %d", trial.number)

    # -- heartbeats -----------------------------------------------------------------------
    def _start_beating(self) -> None:
        if self._beater is None or not self._beater.is_alive():
            self._stop_beating.clear()
            self._beater = threading.Thread(target=self._beat, name="mlplab-heartbeat",
                                            daemon=True)
            self._beater.start()

    def _beat(self) -> None:
        while not self._stop_beating.wait(self.heartbeat_interval):
            with self._held_lock:
                ids = list(self.held.values())
            for trial_id in ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001 -- a busy store: beat again next time
                    log.debug("heartbeat of trial id %d failed", trial_id, exc_info=True)

    def close(self) -> None:
        self._stop_beating.set()
        if self._beater is not None:
            self._beater.join(timeout=5)
