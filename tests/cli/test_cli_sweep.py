"""`mlplab train -m`: one parent run, one child per job, under parallel launchers."""

from __future__ import annotations

import importlib.util

import pytest
from cli_helpers import FAST, all_runs, client, isolated, run_mlplab

# Nine regression jobs; lr = 1e6 diverges within three epochs, the others train.
DIVERGING_GRID = ["dataset=sum_diff",
                  "optimizer.lr=0.001,0.002,0.003,0.004,0.005,0.006,0.007,0.008,1e6"]
GRID = ["optimizer.lr=0.01,0.02,0.05,0.1", "seed=0,1"]


def _parent_and_children(tmp_path):
    runs = all_runs(tmp_path)
    [parent] = [r for r in runs if r.data.tags.get("mlplab.role") == "sweep"]
    children = [r for r in runs if r is not parent]
    assert all(c.data.tags.get("mlflow.parentRunId") == parent.info.run_id for c in children)
    return parent, children


def _assert_complete_metrics(tmp_path, run, keys=("train_loss", "test_loss")):
    mlflow = client(tmp_path)
    for key in keys:
        steps = [m.step for m in mlflow.get_metric_history(run.info.run_id, key)]
        assert sorted(steps) == [1, 2, 3, 4], (run.info.run_name, key)


def test_joblib_sweep_goes_on_past_a_diverged_job(store):
    proc = run_mlplab("train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                      *FAST, *DIVERGING_GRID, *isolated(store), cwd=store, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent, children = _parent_and_children(store)
    assert parent.info.status == "FINISHED"
    assert len(children) == 9
    failed = [c for c in children if c.info.status == "FAILED"]
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert [c.data.params["optimizer.lr"] for c in failed] == ["1000000.0"]
    assert "epoch" in failed[0].data.tags["failure_reason"]
    assert len(finished) == 8
    for child in finished:
        _assert_complete_metrics(store, child)
        assert child.data.tags["blas_threads"] == "1"  # one BLAS thread per parallel job
    best = min(finished, key=lambda c: c.data.metrics["test_loss"])
    assert parent.data.tags["best_run_id"] == best.info.run_id


@pytest.mark.slow
def test_submitit_local_sweep(store):
    proc = run_mlplab("train", "-m", "hydra/launcher=submitit_local", *FAST, *GRID,
                      *isolated(store), cwd=store, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent, children = _parent_and_children(store)
    assert parent.info.status == "FINISHED"
    assert len(children) == 8 and all(c.info.status == "FINISHED" for c in children)
    for child in children:
        _assert_complete_metrics(store, child, ("train_loss", "test_loss", "test_accuracy"))
    assert {(c.data.params["optimizer.lr"], c.data.params["seed"]) for c in children} == {
        (lr, seed) for lr in ("0.01", "0.02", "0.05", "0.1") for seed in ("0", "1")}


# Starts a Ray instance inside the command (tests/cluster joins a separate Ray head).
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="Ray is not installed (optional extra: pip install -e '.[ray]')")
def test_ray_sweep(store):
    proc = run_mlplab("train", "-m", "hydra/launcher=ray", *FAST, "seed=0,1",
                      *isolated(store), cwd=store, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent, children = _parent_and_children(store)
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
