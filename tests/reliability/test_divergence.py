"""A learning rate large enough to overflow: the run ends FAILED with its reason and the
metrics logged before the overflow; in a sweep the other jobs finish, and the Optuna
sweeper records the trial as FAIL (the task returned NaN).

The regression task (sum and difference, standardized targets, mean squared error) with
plain full-batch SGD grows its loss geometrically once lr is past the stable range, so it
overflows after a handful of finite epochs.
"""

from __future__ import annotations

import math
import re

import optuna
import pytest
from reliability_helpers import (
    QUICK,
    artifact_dir,
    metric_values,
    run_cli,
    run_params,
    run_tags,
    store_runs,
    train_args,
)

DIVERGING = ("dataset=sum_diff", "dataset.n_samples=200", "trainer.epochs=60",
             "trainer.log_every=1")
BAD_LR, GOOD_LRS = 3.0, (0.1, 0.2)


def test_diverging_run_fails_with_reason_and_keeps_its_metrics(tmp_path, store):
    proc = run_cli(*train_args(tmp_path, store, *QUICK, *DIVERGING, f"optimizer.lr={BAD_LR}"),
                   cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    (run,) = store_runs(store)
    assert run["status"] == "FAILED"
    reason = run_tags(store, run["run_id"])["failure_reason"]
    assert reason.startswith(("train_loss is", "test_loss is")), reason
    failed_at = int(reason.rsplit(" ", 1)[1])
    assert proc.stderr.strip().splitlines()[-1].endswith(f"FAILED: {reason}")
    points = metric_values(store, run["run_id"], "train_loss")
    # Every epoch up to the failure is kept; the ones before it are finite and growing.
    assert [step for step, _ in points] == list(range(1, failed_at + 1))
    before = [value for _, value in points[:-1]]
    assert failed_at >= 3 and all(math.isfinite(v) for v in before)
    assert before[-1] > 1e3 * before[0]
    # The weights it ended with are kept too, for a post-mortem.
    assert (artifact_dir(store, run["run_id"]) / "weights" / "final.npz").is_file()
    # It has no checkpoint: resuming it is refused in one line and leaves it FAILED.
    again = run_cli(*train_args(tmp_path, store, *QUICK, *DIVERGING, f"optimizer.lr={BAD_LR}",
                                f"trainer.resume={run['run_id']}"), cwd=tmp_path)
    assert again.returncode == 2, again.stderr[-2000:]
    (line,) = again.stderr.strip().splitlines()
    assert re.match(rf"mlplab: error: trainer\.resume: run {run['run_id']} has no "
                    r"checkpoints/\*\.npz .*; valid choices: .*trainer\.checkpoint_every", line)
    assert store_runs(store) == [run]


@pytest.mark.timeout(300)
def test_diverging_trial_fails_alone_in_a_parallel_optuna_sweep(tmp_path, store):
    lrs = ",".join(str(lr) for lr in (GOOD_LRS[0], BAD_LR, GOOD_LRS[1]))
    study_db = tmp_path / "study.db"
    proc = run_cli(*train_args(
        tmp_path, store, *QUICK, *DIVERGING, f"optimizer.lr=choice({lrs})",
        "hydra/sweeper=mlplab_optuna", "hydra.sweeper.sampler.name=grid",
        "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=2", "hydra.sweeper.study_name=div",
        f"hydra.sweeper.storage=sqlite:///{study_db}", "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2", sweep=True), cwd=tmp_path, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = store_runs(store)
    (parent,) = [r for r in runs if r["parent"] is None]
    children = {run_params(store, r["run_id"])["optimizer.lr"]: r for r in runs
                if r["parent"] == parent["run_id"]}
    assert sorted(children) == sorted(str(lr) for lr in (BAD_LR, *GOOD_LRS))
    assert children[str(BAD_LR)]["status"] == "FAILED"
    assert "failure_reason" in run_tags(store, children[str(BAD_LR)]["run_id"])
    for lr in GOOD_LRS:
        assert children[str(lr)]["status"] == "FINISHED"
    assert parent["status"] == "FINISHED"
    # The sweeper saw NaN from the diverged job and told the study FAIL; the others
    # returned their test loss.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="div", storage=f"sqlite:///{study_db}")
    states = {trial.params["optimizer.lr"]: trial for trial in study.trials}
    assert sorted(states) == sorted((BAD_LR, *GOOD_LRS))
    assert states[BAD_LR].state == optuna.trial.TrialState.FAIL
    for lr in GOOD_LRS:
        trial, child = states[lr], children[str(lr)]
        assert trial.state == optuna.trial.TrialState.COMPLETE
        (last_test_loss,) = metric_values(store, child["run_id"], "test_loss")[-1:]
        assert trial.value == pytest.approx(last_test_loss[1], rel=1e-12)
