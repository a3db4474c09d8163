"""Several sweeper processes on one SQLite study: claims, queued trials, dead workers.

Each test starts real processes on a real study file; what they may only do together
(overshoot the budget, pop one queued trial twice) is what is checked.
"""

from __future__ import annotations

import multiprocessing
import socket
import sys
import time

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from mlplab.search.study import new_storage, open_study
from mlplab.search.workers import RETRY_ATTR, WORKER_ATTR, StudyWorker, this_worker, worker_is_gone

SPACE = {"x": FloatDistribution(0.0, 1.0)}
N_PROCESSES = 4


def _url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def _worker(url: str, **heartbeat) -> StudyWorker:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = new_storage(url, heartbeat_interval=heartbeat.get("interval", 1),
                          grace_period=heartbeat.get("grace", 60))
    study, storage = open_study("shared", url, "minimize", optuna.pruners.NopPruner(), storage)
    return StudyWorker(study, storage, url, set(SPACE), heartbeat.get("interval", 1))


def _claim_all(url: str, budget: int, start, results) -> None:
    """Claim trials one at a time until the budget says no, never telling any."""
    worker = _worker(url)
    start.wait()
    numbers = []
    while trials := worker.claim(1, SPACE, budget):
        numbers += [t.number for t in trials]
    results.put(numbers)
    worker.close()


def _pop_queued(url: str, n: int, start, results) -> None:
    """Ask `n` trials straight from Optuna (no study lock): queued trials come first."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study, _ = open_study("shared", url, "minimize", optuna.pruners.NopPruner())
    start.wait()
    results.put([study.ask().number for _ in range(n)])


def _run_together(target, *args) -> list[list[int]]:
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [context.Process(target=target, args=(*args, start, results))
                 for _ in range(N_PROCESSES)]
    for process in processes:
        process.start()
    start.set()
    got = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    return got


def test_racing_workers_never_claim_past_the_budget(tmp_path):
    url = _url(tmp_path)
    _worker(url).close()  # the study exists before the race, as after a first worker
    claimed = _run_together(_claim_all, url, 10)
    numbers = [n for per_worker in claimed for n in per_worker]
    assert sorted(numbers) == list(range(10))  # ten trials in all, each claimed once
    study = optuna.load_study(study_name="shared", storage=url)
    assert len(study.trials) == 10
    assert all(t.state == TrialState.RUNNING and t.user_attrs[WORKER_ATTR] for t in study.trials)


def test_a_queued_trial_is_popped_by_one_process_only(tmp_path):
    url = _url(tmp_path)
    study, _ = open_study("shared", url, "minimize", optuna.pruners.NopPruner())
    for x in range(40):
        study.enqueue_trial({"x": x / 40})
    popped = _run_together(_pop_queued, url, 15)
    numbers = [n for per_process in popped for n in per_process]
    assert len(numbers) == len(set(numbers)) == 60
    assert set(range(40)) <= set(numbers)  # every queued trial went to somebody


def _dead_process_worker() -> str:
    process = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    process.start()
    process.join()
    return f"{socket.gethostname()}:{process.pid}:0"


def test_a_dead_local_workers_trial_is_queued_again_at_once(tmp_path):
    worker = _worker(_url(tmp_path))
    [trial] = worker.claim(1, SPACE, budget=3)
    dead = _dead_process_worker()
    assert worker_is_gone(dead) and not worker_is_gone(this_worker())
    trial.set_user_attr(WORKER_ATTR, dead)  # as if that process had asked it
    worker.release(trial.number)

    assert worker.reap() == [trial.number]
    frozen = worker.study.trials[trial.number]
    assert frozen.state == TrialState.FAIL
    [retry] = worker.claim(1, SPACE, budget=3)  # the queued retry comes first
    assert retry.params == frozen.params
    assert worker.study.trials[retry.number].user_attrs[RETRY_ATTR] == trial.number
    worker.close()


def test_another_hosts_trial_is_reaped_only_once_its_heartbeat_is_stale(tmp_path):
    worker = _worker(_url(tmp_path), interval=1, grace=2)
    silent, beating = worker.claim(2, SPACE, budget=5)
    for trial in (silent, beating):
        trial.set_user_attr(WORKER_ATTR, "elsewhere.example:4242:1")
    worker.release(silent.number)  # only `beating` keeps its heartbeat
    assert worker.reap() == []  # both beat less than the grace period ago
    time.sleep(4)
    assert worker.reap() == [silent.number]
    states = {t.number: t.state for t in worker.study.trials}
    assert states[silent.number] == TrialState.FAIL
    assert states[beating.number] == TrialState.RUNNING
    waiting = worker.study.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs[RETRY_ATTR] for t in waiting] == [silent.number]
    worker.close()


def test_a_postgresql_storage_without_its_driver_names_the_extra(monkeypatch):
    from mlplab.errors import ConfigError

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as where the extra is not installed
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.storage: .*\.\[cluster\]"):
        new_storage("postgresql://user@127.0.0.1:1/db")
