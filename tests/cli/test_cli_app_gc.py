"""A process that runs several jobs (a sweep worker) freezes its long-lived objects once."""

from __future__ import annotations

import gc

from mlplab.config import compose_train
from mlplab.job import run as job_run
from mlplab.job.run import run_job

QUICK = ["logger=none", "dataset.n_samples=100", "trainer.epochs=1"]


def test_the_second_job_of_a_process_freezes_what_survives_a_collection(monkeypatch):
    calls = []
    monkeypatch.setattr(job_run, "_JOBS_STARTED", 0)  # as in a fresh worker
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append("collect") or 0)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    run_job(compose_train(*QUICK))
    assert calls == []  # a single run (or a one-job process) pays nothing
    run_job(compose_train(*QUICK))
    assert calls == ["collect", "freeze"]  # the first job's garbage is not frozen
    run_job(compose_train(*QUICK))
    assert calls == ["collect", "freeze"]  # once per process
