"""Faults on the real local SLURM: a requeued job continues its run to the weights of an
uninterrupted one; `scancel` ends the runs KILLED and the sweep with a stop reason; a job
whose process dies is reported with its SLURM job id and log, and its run closed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from cluster_helpers import (
    LONG,
    cli_env,
    client,
    experiment_name,
    parent_and_children,
    runs_of,
    sacct_states,
    start_sweep,
    training_children,
)

from polling import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def _weights(run_id: str, uri: str) -> dict[str, np.ndarray]:
    path = client(uri).download_artifacts(run_id, "weights/final.npz")
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _finish(proc: subprocess.Popen, tmp_path, timeout: float = 600) -> str:
    proc.wait(timeout=timeout)
    return (tmp_path / "sweep.log").read_text()


REQUEUE_CONFIG = [*LONG, "trainer.epochs=3000"]


@pytest.fixture(scope="module")
def uninterrupted_weights(tmp_path_factory) -> dict[str, np.ndarray]:
    """The final weights of the seed=3 job run once, start to end, with the basic launcher."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    store = f"sqlite:///{tmp / 'mlflow.db'}"
    single = subprocess.run(
        [sys.executable, "-m", "mlplab", "train", *REQUEUE_CONFIG, "seed=3",
         f"logger.tracking_uri={store}", "experiment_name=uninterrupted",
         f"hydra.run.dir={tmp / 'run'}"],
        cwd=tmp, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    [run] = runs_of("uninterrupted", store)
    return _weights(run.info.run_id, store)


# Two ways a running job is requeued: SLURM's warning before a time limit (SIGUSR2, also
# what submitit's own tests send for a preemption), after which submitit requeues the job
# itself; and SLURM requeueing it (preemption in REQUEUE mode, an administrator), which
# stops the job with SIGTERM and starts it again.
REQUEUES = {"time_limit_warning": ["scancel", "--signal=USR2"],
            "scontrol_requeue": ["scontrol", "requeue"]}


@pytest.mark.parametrize("requeue", REQUEUES)
def test_requeued_job_continues_its_run_to_the_weights_of_an_uninterrupted_run(
        slurm, mlflow_server, tmp_path, uninterrupted_weights, requeue):
    experiment = experiment_name(f"requeue-{requeue}")
    proc = start_sweep(tmp_path, experiment, *REQUEUE_CONFIG, "seed=3,4")
    [child] = wait_for(lambda: [r for r in training_children(experiment, 1)
                                if r.data.params["seed"] == "3"],
                       300, "the seed=3 job to log its first metrics", interval=1.0)
    job_id = child.data.tags["slurm_job_id"]
    subprocess.run([*REQUEUES[requeue], job_id], check=True, timeout=60)
    log = _finish(proc, tmp_path)
    assert proc.returncode == 0, log[-3000:]

    parent, children = parent_and_children(experiment)
    assert parent.info.status == "FINISHED" and len(children) == 2  # no run for the restart
    [resumed] = [c for c in children if c.info.run_id == child.info.run_id]
    assert resumed.info.status == "FINISHED"
    assert resumed.data.tags["slurm_restarts"] == "1"
    assert resumed.data.tags["resume_changed_params"] == f"trainer.resume={resumed.info.run_id}"
    job_log = tmp_path / "multirun" / ".submitit" / job_id / f"{job_id}_0_log.err"
    assert (f"SLURM job {job_id} restarted (1): continuing run {resumed.info.run_id} from "
            "its last checkpoint") in job_log.read_text()
    mlflow = client()
    [checkpoint] = [a.path for a in mlflow.list_artifacts(resumed.info.run_id, "checkpoints")]
    stopped_at = int(re.search(r"epoch_(\d+)", checkpoint).group(1))
    assert 0 < stopped_at < 3000  # stopped in the middle, then continued
    steps = [m.step for m in mlflow.get_metric_history(resumed.info.run_id, "train_loss")]
    assert steps == [1, *range(5, 3001, 5)]  # every evaluation once, none lost or doubled
    accounting = subprocess.run(["sacct", "-n", "-P", "-D", "-X", "-o", "State", "-j", job_id],
                                capture_output=True, text=True, check=True).stdout.split()
    assert accounting[0] == "REQUEUED" and accounting[-1] == "COMPLETED"

    got = _weights(resumed.info.run_id, mlflow_server)
    assert uninterrupted_weights.keys() == got.keys()
    assert all(np.array_equal(uninterrupted_weights[key], got[key]) for key in got)


def test_scancel_ends_the_runs_killed_and_the_sweep_with_a_stop_reason(
        slurm, mlflow_server, tmp_path):
    experiment = experiment_name("scancel")
    proc = start_sweep(tmp_path, experiment, *LONG, "trainer.epochs=100000", "seed=0,1,2,3")
    started = wait_for(lambda: training_children(experiment, 2), 300,
                       "two jobs to log their first metrics", interval=1.0)
    array = started[0].data.tags["slurm_job_id"].split("_")[0]
    subprocess.run(["scancel", array], check=True, timeout=60)
    log = _finish(proc, tmp_path, timeout=300)

    assert proc.returncode == 143, log[-3000:]  # SIGTERM's status, as for a stopped sweep
    assert log.rstrip().splitlines()[-1].startswith("mlplab: error: sweep stopped")
    assert re.search(rf"SLURM cancelled 4 of the sweep's jobs \({array}_0", log)
    parent, children = parent_and_children(experiment)
    assert parent.info.status != "RUNNING"
    assert "stop_reason" in parent.data.tags
    # The two that were training stopped at an epoch's end with a checkpoint; the two
    # still pending never started a run.
    assert sorted(c.info.run_id for c in children) == sorted(r.info.run_id for r in started)
    mlflow = client()
    for run in children:
        assert run.info.status == "KILLED"
        assert run.data.tags["stop_reason"].startswith("interrupted by SIGTERM after epoch")
        assert mlflow.list_artifacts(run.info.run_id, "checkpoints")
    assert set(sacct_states(array).values()) == {"CANCELLED by 0"}


def _job_pid(job_id: str) -> int:
    """The pid of the Python process of a running SLURM job's step (not the batch shell)."""
    raw = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%A"], capture_output=True,
                         text=True, check=True).stdout.split()[0]
    listing = subprocess.run(["scontrol", "listpids", raw], capture_output=True, text=True,
                             check=True).stdout.splitlines()[1:]
    for line in listing:
        pid, _, step = line.split()[:3]
        if step != "batch" and "submitit" in open(f"/proc/{pid}/cmdline").read():
            return int(pid)
    raise AssertionError(f"no job step process for SLURM job {job_id}: {listing}")


def test_a_job_whose_process_dies_is_reported_with_its_slurm_id_and_log(
        slurm, mlflow_server, tmp_path):
    experiment = experiment_name("dies")
    proc = start_sweep(tmp_path, experiment, *LONG, "trainer.epochs=2000", "seed=0,1")
    [victim] = wait_for(lambda: [r for r in training_children(experiment, 1)
                                 if r.data.params["seed"] == "0"],
                        300, "the seed=0 job to log its first metrics", interval=1.0)
    job_id = victim.data.tags["slurm_job_id"]
    os.kill(_job_pid(job_id), signal.SIGKILL)  # as the kernel's OOM killer would
    log = _finish(proc, tmp_path)

    assert proc.returncode == 0, log[-3000:]  # the sweep goes on, as past a diverged run
    [line] = [line for line in log.splitlines() if f"(SLURM job {job_id}) ended" in line]
    log_path = line.rsplit("log: ", 1)[1].strip()
    assert re.search(rf"job #0 \(SLURM job {job_id}\) ended FAILED: ", line)
    assert os.path.isfile(log_path) and job_id in log_path
    parent, children = parent_and_children(experiment)
    status = {c.data.params["seed"]: c for c in children}
    assert status["0"].info.status == "FAILED"  # closed by the launcher: it cannot close itself
    assert status["0"].data.tags["failure_reason"] == line.split("] ", 1)[1].strip()
    assert status["1"].info.status == "FINISHED"
    assert parent.info.status == "FINISHED"
    assert sacct_states(job_id) == {job_id: "FAILED"}


def test_sigterm_to_the_launching_command_cancels_the_array(slurm, mlflow_server, tmp_path):
    experiment = experiment_name("sigterm")
    proc = start_sweep(tmp_path, experiment, *LONG, "trainer.epochs=100000", "seed=0,1,2")
    started = wait_for(lambda: training_children(experiment, 2), 300,
                         "two jobs to log their first metrics")
    array = started[0].data.tags["slurm_job_id"].split("_")[0]
    proc.send_signal(signal.SIGTERM)
    log = _finish(proc, tmp_path, timeout=300)

    assert proc.returncode == 143, log[-3000:]
    assert f"cancelling SLURM array {array}" in log
    assert log.rstrip().splitlines()[-1].startswith("mlplab: error: sweep stopped")
    wait_for(lambda: all(r.info.status == "KILLED" for r in runs_of(experiment)
                           if r.data.tags.get("mlplab.role") != "sweep"),
               120, "the cancelled jobs to close their runs")
    parent, children = parent_and_children(experiment)
    assert "stop_reason" in parent.data.tags and len(children) == 2
    for run in children:
        assert client().list_artifacts(run.info.run_id, "checkpoints")  # resumable
    assert set(sacct_states(array).values()) == {"CANCELLED by 0"}
