"""`hydra/launcher=ray` against a real local Ray head (started here, stopped after), logging
to the real PostgreSQL-backed MLflow server of `.ci/stores-up`.

Jobs join the head with `hydra.launcher.ray.init.address=127.0.0.1:PORT`, as they would a
cluster's; each runs as one Ray task in a fresh worker process and is a child run of the
sweep's parent run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from cluster_helpers import (
    FAST,
    SERVER,
    cli_env,
    client,
    experiment_name,
    parent_and_children,
    runs_of,
)

from polling import wait_for
from ray_head import start_head, stop_head, worker_pids

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

EPOCHS = 200_000
GRID = ["optimizer.lr=0.01,0.02,0.05,0.1", "seed=0,1"]


@pytest.fixture(scope="module")
def ray_address():
    address, process, temp_dir = start_head()
    yield address
    stop_head(process, temp_dir)


def ray_command(tmp, address: str, experiment: str, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "mlplab", "train", "-m", "hydra/launcher=ray",
            f"hydra.launcher.ray.init.address={address}", f"logger.tracking_uri={SERVER}",
            f"experiment_name={experiment}", f"hydra.sweep.dir={tmp / 'multirun'}",
            *overrides]


def _steps(run, key) -> list[int]:
    return sorted(m.step for m in client().get_metric_history(run.info.run_id, key))


def test_grid_sweep_on_a_ray_head_into_the_postgresql_backed_server(
        tmp_path, ray_address, mlflow_server):
    experiment = experiment_name("ray-grid")
    proc = subprocess.run(ray_command(tmp_path, ray_address, experiment, *FAST, *GRID),
                          cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent, children = parent_and_children(experiment)
    assert parent.info.status == "FINISHED"
    assert len(children) == 8 and all(c.info.status == "FINISHED" for c in children)
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    for child in children:
        for key in ("train_loss", "test_loss", "test_accuracy"):
            assert _steps(child, key) == [1, 2, 3, 4], (child.info.run_name, key)
        assert child.data.tags["blas_threads"] == "1"
    assert {(c.data.params["optimizer.lr"], c.data.params["seed"]) for c in children} == {
        (lr, seed) for lr in ("0.01", "0.02", "0.05", "0.1") for seed in ("0", "1")}
    # One task per job, each in a worker process of its own, each once.
    pids = [worker_pids(tmp_path / "multirun", job) for job in range(8)]
    assert all(len(p) == 1 for p in pids) and len({p[0] for p in pids}) == 8


def test_a_job_whose_worker_dies_runs_again_in_a_new_one(tmp_path, ray_address, mlflow_server):
    experiment = experiment_name("ray-retry")
    # Long enough to be caught mid-job: 200k epochs of this tiny network train for 10-40 s
    # (CPU-dependent), and the job counts as started once its run is RUNNING in the store,
    # which is within a second of the worker starting. Waiting for its first metrics instead
    # would wait for the run's 5 s flush, and a fast CPU finished 100k epochs about then.
    overrides = ["dataset.n_samples=200", f"trainer.epochs={EPOCHS}", "trainer.log_every=1000",
                 "logger.log_model=false", "logger.plots=false", "seed=0,1"]
    log = (tmp_path / "sweep.log").open("w")
    process = subprocess.Popen(ray_command(tmp_path, ray_address, experiment, *overrides),
                               cwd=tmp_path, env=cli_env(), stdout=log,
                               stderr=subprocess.STDOUT)
    sweep_dir = tmp_path / "multirun"

    def job_0_started():
        assert process.poll() is None, (tmp_path / "sweep.log").read_text()[-3000:]
        return worker_pids(sweep_dir, 0) and any(
            r.info.status == "RUNNING" and r.data.params.get("seed") == "0"
            for r in runs_of(experiment))

    try:
        wait_for(job_0_started, 600, "job 0 started", interval=0.2)
        [first] = worker_pids(sweep_dir, 0)
        os.kill(first, signal.SIGKILL)  # as the OOM killer or a lost node would
        status = process.wait(timeout=900)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert status == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    attempts = worker_pids(sweep_dir, 0)
    assert len(attempts) == 2 and attempts[0] == first != attempts[1]
    parent, children = parent_and_children(experiment)
    assert parent.info.status == "FINISHED"
    seed_0 = [c for c in children if c.data.params["seed"] == "0"]
    seed_1 = [c for c in children if c.data.params["seed"] == "1"]
    lost = [c for c in seed_0 if c.info.status == "KILLED"]
    retried = [c for c in seed_0 if c.info.status == "FINISHED"]
    assert len(lost) == 1 and len(retried) == 1 and len(seed_0) == 2 and len(seed_1) == 1
    assert "Ray worker died" in lost[0].data.tags["stop_reason"]
    # The retry logged the whole history, as the job no worker death touched did.
    steps = _steps(seed_1[0], "train_loss")
    assert steps[-1] == EPOCHS and _steps(retried[0], "train_loss") == steps
