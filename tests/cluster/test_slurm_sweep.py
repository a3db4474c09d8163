"""A grid sweep as one SLURM array on the real local SLURM, logged into the real MLflow
server whose store is PostgreSQL: one parent, one FINISHED child per job."""

from __future__ import annotations

import pytest
from cluster_helpers import (
    FAST,
    client,
    experiment_name,
    parent_and_children,
    postgres_runs,
    run_sweep,
    sacct_states,
)

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

GRID = ["optimizer.lr=0.01,0.02,0.05,0.1", "seed=0,1"]


def test_grid_sweep_runs_as_a_slurm_array_into_the_postgresql_backed_server(
        slurm, mlflow_server, tmp_path):
    experiment = experiment_name("grid")
    proc = run_sweep(tmp_path, experiment, *FAST, *GRID)
    assert proc.returncode == 0, proc.stderr[-3000:]

    parent, children = parent_and_children(experiment)
    assert parent.info.status == "FINISHED"
    assert len(children) == 8
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {(c.data.params["optimizer.lr"], c.data.params["seed"]) for c in children} == {
        (lr, seed) for lr in ("0.01", "0.02", "0.05", "0.1") for seed in ("0", "1")}
    mlflow = client()
    for child in children:
        for key in ("train_loss", "test_loss", "test_accuracy"):
            steps = [m.step for m in mlflow.get_metric_history(child.info.run_id, key)]
            assert sorted(steps) == [1, 2, 3, 4], (child.info.run_name, key)
        assert child.data.tags["blas_threads"] == "1"  # cpus_per_task=1
        assert child.data.tags["slurm_restarts"] == "0"
    best = min(children, key=lambda c: c.data.metrics["test_loss"])
    assert parent.data.tags["best_run_id"] == best.info.run_id

    # Every job is a task of one SLURM array, and SLURM's accounting says each completed.
    job_ids = sorted(c.data.tags["slurm_job_id"] for c in children)
    array = job_ids[0].split("_")[0]
    assert job_ids == sorted(f"{array}_{task}" for task in range(8))
    assert sacct_states(array) == dict.fromkeys(job_ids, "COMPLETED")
    # The server keeps the runs in PostgreSQL: the same runs, read with SQL.
    assert postgres_runs(parent.info.experiment_id) == {
        r.info.run_id: "FINISHED" for r in [parent, *children]}
    # One submitit log per task, under the sweep directory.
    for job_id in job_ids:
        assert (tmp_path / "multirun" / ".submitit" / job_id / f"{job_id}_0_log.err").is_file()
