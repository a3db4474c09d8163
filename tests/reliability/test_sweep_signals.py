"""Ctrl-C or `kill` on a grid sweep stops the sweep, not just the job that was running,
whichever launcher runs its jobs, whether the signal reaches the launching process alone
(`kill PID`) or its whole process group (Ctrl-C at a terminal).

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
    artifact_dir,
    cli_env,
    rows,
    run_tags,
    start_cli,
    stop_group,
    store_runs,
    train_args,
)

from mlplab.signals import EXIT_STATUS
from polling import wait_for
from ray_head import start_head, stop_head

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
@pytest.mark.parametrize("signum, status, target", [
    pytest.param(signal.SIGINT, 130, "process", id="SIGINT"),
    pytest.param(signal.SIGTERM, 143, "process", id="SIGTERM"),
    pytest.param(signal.SIGINT, 130, "group", id="SIGINT-group", marks=pytest.mark.slow),
])
def test_a_signal_stops_a_basic_grid_sweep_after_the_running_job(tmp_path, store, signum,
                                                                  status, target):
    process = start_sweep(tmp_path, store)
    try:
        wait_for(lambda: metrics_logged(store), 120, "the first job to log metrics")
        send(process, signum, target)
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


def send(process: subprocess.Popen, signum, target: str) -> None:
    """`kill PID` (the launching process only) or a Ctrl-C at a terminal (its group)."""
    if target == "group":
        os.killpg(process.pid, signum)
    else:
        os.kill(process.pid, signum)


def children_training(store, count: int) -> bool:
    try:
        return rows(store, "SELECT COUNT(DISTINCT run_uuid) FROM metrics")[0][0] >= count
    except Exception:  # noqa: BLE001 -- tables busy or not there yet
        return False


SLOW = pytest.mark.slow  # a minute or two each here; the default run keeps two of them


# (launcher overrides, how many jobs run at once)
LAUNCHERS = {"joblib": (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], 2),
             "local_parallel": (["hydra/launcher=local_parallel"],
                                min(2, len(os.sched_getaffinity(0)))),
             "submitit_local": (["hydra/launcher=submitit_local"], 3)}


@pytest.mark.timeout(400)
@pytest.mark.parametrize("launcher, signum, target", [
    pytest.param("joblib", signal.SIGINT, "group", id="joblib-SIGINT-group"),
    pytest.param("joblib", signal.SIGTERM, "process", id="joblib-SIGTERM-process"),
    pytest.param("joblib", signal.SIGINT, "process", id="joblib-SIGINT-process", marks=SLOW),
    pytest.param("joblib", signal.SIGTERM, "group", id="joblib-SIGTERM-group", marks=SLOW),
    pytest.param("local_parallel", signal.SIGINT, "process", id="local_parallel-SIGINT-process",
                 marks=SLOW),
    pytest.param("local_parallel", signal.SIGTERM, "group", id="local_parallel-SIGTERM-group",
                 marks=SLOW),
    pytest.param("submitit_local", signal.SIGINT, "process", id="submitit_local-SIGINT-process",
                 marks=SLOW),
    pytest.param("submitit_local", signal.SIGTERM, "group", id="submitit_local-SIGTERM-group",
                 marks=SLOW),
    pytest.param("submitit_local", signal.SIGINT, "group", id="submitit_local-SIGINT-group",
                 marks=SLOW),
])
def test_a_signal_to_a_parallel_sweep_ends_every_running_child_killed(tmp_path, store,
                                                                      launcher, signum, target):
    """The launching process stops the running jobs (or they got the signal themselves,
    from the group) and waits for them: each closes its run KILLED with a stop_reason and
    the checkpoint of the epoch it stopped at; no job starts after the signal; the parent
    is closed with the signal in its stop_reason."""
    overrides, at_once = LAUNCHERS[launcher]
    stop_a_sweep_and_check_it(tmp_path, store, overrides, at_once, signum, target)


@pytest.fixture(scope="module")
def ray_address():
    """A real Ray head on 127.0.0.1 with 2 CPUs: two of the three jobs run at once."""
    address, process, temp_dir = start_head(num_cpus=2)
    yield address
    stop_head(process, temp_dir)


@pytest.mark.slow
@pytest.mark.timeout(400)
@pytest.mark.parametrize("signum, target", [
    pytest.param(signal.SIGINT, "process", id="SIGINT-process"),
    pytest.param(signal.SIGTERM, "process", id="SIGTERM-process"),
    pytest.param(signal.SIGINT, "group", id="SIGINT-group"),
    pytest.param(signal.SIGTERM, "group", id="SIGTERM-group"),
])
def test_a_signal_to_a_ray_sweep_ends_every_running_child_killed(tmp_path, store, ray_address,
                                                                 signum, target):
    """The same under `hydra/launcher=ray`, joining a head of its own: each running job
    (a Ray worker, in the head's process group, not the launching process's) sees the
    sweep's stop file and ends KILLED with its checkpoint; the queued third job never
    starts a run."""
    overrides = ["hydra/launcher=ray", f"hydra.launcher.ray.init.address={ray_address}"]
    stop_a_sweep_and_check_it(tmp_path, store, overrides, 2, signum, target)


def stop_a_sweep_and_check_it(tmp_path, store, overrides, at_once, signum, target) -> None:
    """Start the long sweep, signal it once `at_once` jobs train, and check what it left."""
    process = start_sweep(tmp_path, store, *overrides)
    try:
        wait_for(lambda: children_training(store, at_once), 240, f"{at_once} jobs to train")
        send(process, signum, target)
        status = process.wait(timeout=200)
    finally:
        stop_group(process)
    log = (tmp_path / "sweep.log").read_text()
    assert status == EXIT_STATUS[signum.name], log[-3000:]
    parent, children = parent_and_children(store)
    assert len(children) == at_once, "a job started after the signal"
    for child in children:
        assert child["status"] == "KILLED", (child, log[-3000:])
        reason = run_tags(store, child["run_id"])["stop_reason"]
        if reason.endswith("nothing to resume from"):  # stopped before training
            assert reason.startswith(f"interrupted by {signum.name} before its first")
            continue
        assert reason.startswith(f"interrupted by {signum.name} after epoch "), reason
        epoch = int(reason.rsplit(" ", 1)[1])
        checkpoint = artifact_dir(store, child["run_id"]) / "checkpoints" / \
            f"epoch_{epoch:06d}.npz"
        assert checkpoint.is_file(), f"{child['run_id']}: no checkpoint to resume from"
    assert parent["status"] == "FINISHED"
    assert run_tags(store, parent["run_id"])["stop_reason"] == (
        f"the sweep stopped early (interrupted by {signum.name})")
    last = log.strip().splitlines()[-1]
    assert last == ("mlplab: error: sweep stopped; the runs it finished are kept and its "
                    f"parent run is closed with a stop_reason tag ({signum.name})")


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_job_that_does_not_stop_is_killed_and_its_run_closed_by_the_launching_process(
        tmp_path, store):
    """A job that cannot take the stop (here: SIGSTOPped, as a job hung in I/O would be)
    is killed once the launching process has waited `MLPLAB_STOP_WAIT_SECONDS` for it,
    and its run closed KILLED saying so, not left RUNNING for a later stale-run check."""
    sweep_dir = tmp_path / "hydra-sweep"
    process = start_cli(*train_args(tmp_path, store, *LONG_JOBS, "hydra/launcher=joblib",
                                    "hydra.launcher.n_jobs=2", sweep=True),
                        cwd=tmp_path, log=tmp_path / "sweep.log",
                        env=cli_env(MLPLAB_STOP_WAIT_SECONDS="5"))
    try:
        wait_for(lambda: children_training(store, 2), 240, "2 jobs to train")
        pids = {path.name for path in (sweep_dir / ".jobs").glob("*")}
        held = {run_tags(store, child["run_id"])["mlplab.pid"]: child["run_id"]
                for child in parent_and_children(store)[1]}
        [hung] = sorted(pids & set(held))[:1]
        os.kill(int(hung), signal.SIGSTOP)
        send(process, signal.SIGTERM, "process")
        status = process.wait(timeout=200)
    finally:
        stop_group(process)
    log = (tmp_path / "sweep.log").read_text()
    assert status == 143, log[-3000:]
    parent, children = parent_and_children(store)
    assert len(children) == 2 and all(c["status"] == "KILLED" for c in children), children
    for child in children:
        reason = run_tags(store, child["run_id"])["stop_reason"]
        if child["run_id"] == held[hung]:
            assert reason == ("killed by the sweep's launching process: it did not stop "
                              "within 5 s of SIGTERM")
        else:
            assert reason.startswith("interrupted by SIGTERM"), reason
    assert run_tags(store, parent["run_id"])["stop_reason"] == (
        "the sweep stopped early (interrupted by SIGTERM)")
    assert log.strip().splitlines()[-1].startswith("mlplab: error: sweep stopped")
