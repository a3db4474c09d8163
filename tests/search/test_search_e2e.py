"""`mlplab train -m sweep=moons_search` end to end: Optuna study, MLflow parent and children.

Checks what a user sees after a pruned sweep: pruned children are finished runs tagged
`pruned` whose metrics stop at the epoch the pruner chose, no child is left RUNNING, and
the parent run records the study's best trial and params.
"""

from __future__ import annotations

import json
import subprocess
import sys

import optuna
from optuna.trial import TrialState

N_TRIALS, EPOCHS = 5, 30


def test_pruned_sweep_lands_in_mlflow(tmp_path):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [
        sys.executable, "-m", "mlplab", "train", "-m", "sweep=moons_search",
        f"logger.tracking_uri={tracking}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
        f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}",
        "hydra.sweeper.study_name=e2e", f"hydra.sweeper.n_trials={N_TRIALS}",
        f"trainer.epochs={EPOCHS}", "dataset.n_samples=300",
        "logger.plots=false", "logger.log_model=false",  # not under test here, and slow
        "hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.pruner.n_warmup_steps=5",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    study = optuna.load_study(study_name="e2e", storage=f"sqlite:///{tmp_path / 'study.db'}")
    pruned = {t.number: t.user_attrs["pruned_at"]
              for t in study.get_trials(states=(TrialState.PRUNED,))}
    assert pruned, "the scenario is meant to prune at least one trial"
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == N_TRIALS

    from mlflow import MlflowClient

    client = MlflowClient(tracking)
    runs = [r for e in client.search_experiments()
            for r in client.search_runs([e.experiment_id])]
    parents = [r for r in runs if r.data.tags.get("mlplab.role") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == N_TRIALS
    parent = parents[0]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}

    for child in children:
        assert child.info.status == "FINISHED"
        number = int(child.data.params["trial.number"])
        history = client.get_metric_history(child.info.run_id, "test_loss")
        last_epoch = max(m.step for m in history)
        if number in pruned:
            assert child.data.tags.get("pruned") == "true"
            assert last_epoch == pruned[number] < EPOCHS
        else:
            assert child.data.tags.get("pruned") != "true"
            assert last_epoch == EPOCHS

    best = study.best_trial
    assert parent.data.tags["optuna.best_trial"] == str(best.number)
    assert parent.data.metrics["optuna.best_value"] == best.value
    assert parent.data.metrics["optuna.n_pruned"] == len(pruned)
    assert {k: parent.data.params[f"optuna.best.{k}"] for k in best.params} == {
        k: str(v) for k, v in best.params.items()}
    summary = json.loads((tmp_path / "sweep" / "optuna_summary.json").read_text())
    assert summary["best_trial"]["number"] == best.number
