"""The sweep callback: one parent run per sweep, every job a child of it."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mlplab.multirun.callbacks import MlflowSweepCallback
from mlplab.tracking import get_client
from mlplab.tracking.sweep import PARENT_RUN_FILE

HERE = Path(__file__).parent


def _sweep(uri, sweep_dir, *overrides, launcher="basic"):
    command = [sys.executable, str(HERE / "sweep_app.py"), "-m", f"logger.tracking_uri={uri}",
               f"hydra.sweep.dir={sweep_dir}", f"hydra/launcher={launcher}", *overrides]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def _runs(uri):
    client = get_client(uri)
    experiment = client.get_experiment_by_name("sweep_test")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def _check_sweep(uri, sweep_dir, tmp_path, xs):
    runs = _runs(uri)
    (parent,) = [r for r in runs if r.data.tags.get("mlplab.role") == "sweep"]
    children = [r for r in runs if r is not parent]
    assert json.loads((sweep_dir / PARENT_RUN_FILE).read_text())["run_id"] == parent.info.run_id
    assert sorted(c.info.run_name for c in children) == [f"x={x}" for x in xs]
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert all(c.info.status == "FINISHED" for c in children)
    assert parent.info.status == "FINISHED"
    best = min(children, key=lambda c: c.data.metrics["test_loss"])
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_test_loss"] == best.data.metrics["test_loss"]
    client = get_client(uri)
    path = client.download_artifacts(parent.info.run_id, "children.csv", str(tmp_path))
    rows = list(csv.DictReader(open(path)))
    assert sorted(r["run_id"] for r in rows) == sorted(c.info.run_id for c in children)
    return parent, children


def test_a_sweep_is_one_parent_with_a_child_per_job(uri, tmp_path):
    sweep_dir = tmp_path / "sweep"
    done = _sweep(uri, sweep_dir, "x=1,2,3,5")
    assert done.returncode == 0, done.stderr
    _check_sweep(uri, sweep_dir, tmp_path, [1, 2, 3, 5])


@pytest.mark.slow
def test_jobs_in_worker_processes_join_the_same_parent(uri, tmp_path):
    sweep_dir = tmp_path / "sweep"
    done = _sweep(uri, sweep_dir, "x=1,2,3,4", "hydra.launcher.n_jobs=2", launcher="joblib")
    assert done.returncode == 0, done.stderr
    _check_sweep(uri, sweep_dir, tmp_path, [1, 2, 3, 4])


def test_a_failing_job_still_closes_the_parent(uri, tmp_path):
    done = _sweep(uri, tmp_path / "sweep", "x=1,2", "fail=true")
    assert done.returncode != 0  # Hydra re-raises the job's error after the batch
    runs = _runs(uri)
    (parent,) = [r for r in runs if r.data.tags.get("mlplab.role") == "sweep"]
    children = [r for r in runs if r is not parent]
    assert len(children) == 2 and all(c.info.status == "FAILED" for c in children)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["failure_reason"] == "every child run failed"


def test_logger_none_makes_the_callback_do_nothing(uri, tmp_path):
    callback = MlflowSweepCallback()
    config = OmegaConf.create({"experiment_name": "sweep_test",
                               "logger": {"name": "none", "tracking_uri": uri},
                               "hydra": {"sweep": {"dir": str(tmp_path / "sweep")},
                                         "overrides": {"task": []}}})
    callback.on_multirun_start(config)
    callback.on_multirun_end(config)
    assert not (tmp_path / "sweep").exists()
    assert _runs(uri) == []


def test_the_best_child_is_judged_by_its_objective(uri, tmp_path):
    from mlplab.tracking import MlflowRun
    from mlplab.tracking.sweep import read_parent_run

    sweep_dir = tmp_path / "sweep"
    config = OmegaConf.create({"experiment_name": "sweep_test", "trainer": {"mode": "min"},
                               "logger": {"name": "mlflow", "tracking_uri": uri, "plots": False},
                               "hydra": {"sweep": {"dir": str(sweep_dir)},
                                         "overrides": {"task": ["x=1,2"]}}})
    callback = MlflowSweepCallback(monitor="test_loss")
    callback.on_multirun_start(config)
    parent = read_parent_run(sweep_dir)
    ids = {}
    # a: ends at 0.5 but its restored best weights scored 0.1; b: ends at 0.3
    for name, last, objective in (("a", 0.5, 0.1), ("b", 0.3, None)):
        with MlflowRun("sweep_test", tracking_uri=parent["tracking_uri"], run_name=name,
                       parent_run_id=parent["run_id"]) as run:
            run.log_metrics({"test_loss": last}, step=1)
            if objective is not None:
                run.set_tags({"objective": repr(objective), "objective_metric": "test_loss"})
        ids[name] = run.run_id
    callback.on_multirun_end(config)
    summary = get_client(uri).get_run(parent["run_id"])
    assert summary.info.status == "FINISHED"
    assert summary.data.tags["best_run_id"] == ids["a"]
    assert summary.data.tags["best_test_loss"] == "0.1"
    assert summary.data.tags["n_children"] == "2"
