"""Ctrl-C or `kill` on a grid sweep stops the sweep, not just the job that was running.

The jobs are long (200,000 epochs, ~1 min each): a sweep that went on to its next job
after the signal would not exit within the test's wait.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from reliability_helpers import (
    QUICK,
    rows,
    run_tags,
    start_cli,
    stop_group,
    store_runs,
    train_args,
)

from polling import wait_for

LONG_JOBS = (*QUICK, "dataset=xor", "dataset.split=ordered", "trainer.epochs=200000",
             "trainer.log_every=50", "seed=0,1,2")


def start_sweep(tmp_path, store, *overrides) -> subprocess.Popen:
    return start_cli(*train_args(tmp_path, store, *LONG_JOBS, *overrides, sweep=True),
                     cwd=tmp_path, log=tmp_path / "sweep.log")


def metrics_logged(store) -> bool:
    try:
        return rows(store, "SELECT COUNT(*) FROM metrics")[0][0] > 0
    except Exception:  # noqa: BLE001 -- tables busy or not there yet
        return False


def parent_and_children(store):
    runs = store_runs(store)
    [parent] = [r for r in runs if r["parent"] is None]
    return parent, [r for r in runs if r["parent"] == parent["run_id"]]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_basic_grid_sweep_after_the_running_job(tmp_path, store, signum,
                                                                  status):
    process = start_sweep(tmp_path, store)
    try:
        wait_for(lambda: metrics_logged(store), 120, "the first job to log metrics")
        os.kill(process.pid, signum)  # the launching process only, as `kill PID` does
        assert process.wait(timeout=120) == status, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        stop_group(process)
    parent, children = parent_and_children(store)
    assert len(children) == 1, "a job started after the signal"
    assert children[0]["status"] == "KILLED"
    assert run_tags(store, children[0]["run_id"])["stop_reason"].startswith(
        f"interrupted by {signum.name} after epoch ")
    assert parent["status"] == "FINISHED"
    assert "stopped early" in run_tags(store, parent["run_id"])["stop_reason"]
    last = (tmp_path / "sweep.log").read_text().strip().splitlines()[-1]
    assert last.startswith("mlplab: error: sweep stopped") and last.endswith(f"({signum.name})")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_a_joblib_sweep_closes_its_parent_run(tmp_path, store, signum, status):
    # The interrupt names the sweep it stops, so the CLI closes that sweep's parent run
    # before it exits (the launching process of a joblib sweep has not imported MLflow).
    process = start_sweep(tmp_path, store, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    try:
        wait_for(lambda: metrics_logged(store), 120, "the first jobs to log metrics")
        os.kill(process.pid, signum)
        assert process.wait(timeout=120) == status, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        stop_group(process)
    parent, children = parent_and_children(store)
    # joblib ends its workers at once: their runs may stay RUNNING; the parent is closed.
    assert parent["status"] == "FINISHED"
    assert "stopped early" in run_tags(store, parent["run_id"])["stop_reason"]
    assert 1 <= len(children) <= 2
    last = (tmp_path / "sweep.log").read_text().strip().splitlines()[-1]
    assert last == ("mlplab: error: sweep stopped; the runs it finished are kept and its "
                    f"parent run is closed with a stop_reason tag ({signum.name})")
