"""What a user learns from a pruned Optuna sweep: its verdict on the console, its plots,
running the finished study again, and reproducing a pruned trial or the sweep's parent."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlflow import MlflowClient

from mlplab import cli

N_TRIALS, EPOCHS = 6, 30
STUDY = "verdict"


def sweep(tmp_path, tracking, n_trials=N_TRIALS):
    command = [
        sys.executable, "-m", "mlplab", "train", "-m", "sweep=moons_search",
        f"logger.tracking_uri={tracking}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
        f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}",
        f"hydra.sweeper.study_name={STUDY}", f"hydra.sweeper.n_trials={n_trials}",
        f"trainer.epochs={EPOCHS}", "dataset.n_samples=300", "logger.log_model=false",
        "hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.pruner.n_warmup_steps=5",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def runs_of(tracking):
    client = MlflowClient(tracking)
    return [r for e in client.search_experiments()
            for r in client.search_runs([e.experiment_id])]


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("verdict")
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = sweep(tmp_path, tracking)
    runs = runs_of(tracking)
    (parent,) = [r for r in runs if r.data.tags.get("mlplab.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    pruned = [c for c in children if c.data.tags.get("pruned") == "true"]
    assert pruned, "the scenario is meant to prune at least one trial"
    return tmp_path, tracking, proc.stdout, parent, children


def test_the_sweep_ends_with_its_verdict(finished_sweep):
    _, _, out, parent, children = finished_sweep
    completed = sorted((c for c in children if c.info.status == "FINISHED"
                        and c.data.tags.get("pruned") != "true"),
                       key=lambda c: float(c.data.tags["objective"]))
    best = completed[0]
    lines = out.splitlines()
    assert f"parent run {parent.info.run_id}" in lines
    assert f"best       {best.info.run_name} ({best.info.run_id})" in lines
    assert parent.data.tags["best_run_id"] == best.info.run_id  # pruned runs do not compete
    table = lines.index(next(line for line in lines if line.startswith("top ")))
    ranked = [line.split()[2] for line in lines[table + 1:table + 1 + min(5, len(completed))]]
    assert ranked == [c.info.run_id for c in completed[:5]]
    url = lines[lines.index("in the MLflow UI (start it with `mlplab ui`):") + 1].strip()
    assert url == (f"http://127.0.0.1:5000/#/experiments/{parent.info.experiment_id}/runs"
                   f"?workflowType=machine_learning&viewStateShareKey="
                   f"sweep-{parent.info.run_id[:12]}")
    tags = MlflowClient(finished_sweep[1]).get_experiment(parent.info.experiment_id).tags
    assert f"mlflow.sharedViewState.sweep-{parent.info.run_id[:12]}" in tags


def test_sweep_plots_cover_the_swept_keys_only(finished_sweep):
    _, tracking, _, parent, _ = finished_sweep
    names = {a.path for a in MlflowClient(tracking).list_artifacts(parent.info.run_id, "plots")}
    swept = {f"plots/test_loss_vs_{key}.png"
             for key in ("optimizer_name", "optimizer_lr", "architecture_hidden")}
    assert {"plots/parallel_coordinates.png", "plots/test_loss_vs_optimizer_lr.png"} <= names
    # Not the params that only differ because another optimizer lacks them (amsgrad, ...).
    assert names - {"plots/parallel_coordinates.png"} <= swept, names


def test_running_a_finished_study_again_says_so_and_leaves_no_parent(finished_sweep):
    tmp_path, tracking, _, parent, _ = finished_sweep
    before = {r.info.run_id for r in runs_of(tracking)}
    proc = sweep(tmp_path, tracking)
    log = proc.stdout + proc.stderr
    assert (f"Optuna study '{STUDY}' (sqlite:///{tmp_path / 'study.db'}) is complete: "
            f"{N_TRIALS} of {N_TRIALS} trials done; nothing to run. To extend it, run the "
            f"same command with hydra.sweeper.n_trials=") in log
    assert {r.info.run_id for r in runs_of(tracking)} == before  # the new parent is gone


def test_reproducing_a_pruned_trial_compares_at_the_epoch_it_stopped(finished_sweep, capsys):
    _, tracking, _, _, children = finished_sweep
    pruned = next(c for c in children if c.data.tags.get("pruned") == "true")
    stopped = max(m.step for m in MlflowClient(tracking).get_metric_history(
        pruned.info.run_id, "test_loss"))
    assert stopped < EPOCHS
    assert cli.main(["reproduce", pruned.info.run_id, "--tracking-uri", tracking]) == 0
    out = capsys.readouterr().out
    assert f"was pruned at epoch {stopped}: re-running it to that epoch" in out
    assert "all final metrics identical" in out


def test_reproducing_a_sweep_parent_names_its_best_child(finished_sweep, capsys):
    _, tracking, _, parent, _ = finished_sweep
    assert cli.main(["reproduce", parent.info.run_id, "--tracking-uri", tracking]) == 2
    err = capsys.readouterr().err.strip()
    best = parent.data.tags["best_run_id"]
    assert err.startswith(f"mlplab: error: RUN_ID: run {parent.info.run_id} is a sweep's "
                          "parent run")
    assert f"mlplab reproduce {best}" in err and len(err.splitlines()) == 1
