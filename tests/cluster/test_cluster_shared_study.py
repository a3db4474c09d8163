"""Three `mlplab train -m hydra/sweeper=mlplab_optuna` workers on one Optuna study, one of
them killed mid-trial, all logging into the PostgreSQL-backed MLflow server.

The study lives in a SQLite file (the workers of one machine) or in the PostgreSQL
database of `.ci/stores-up` (what the workers of a cluster would share). Checked: exactly
`n_trials` finished trials, each run once; the killed worker's trial failed, queued again
and run by another worker; its runs closed; pruning that needed the other workers' trials.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import optuna
import pytest
from cluster_helpers import SERVER, cli_env, experiment_name, runs_of
from optuna.trial import TrialState

from polling import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

OPTUNA_DATABASE = "postgresql://mlplab:mlplab@127.0.0.1:5432/optuna"  # .ci/stores-up
N_TRIALS = 24
N_WORKERS = 3
# With one worker alone, none of its first 8 trials could be pruned (the median pruner counts
# COMPLETE trials only). The random sampler keeps proposing poor points, so about half the
# trials after the pruner's start-up are pruned; TPE converges and can prune only late ones.
PRUNER_STARTUP = 8
SEARCH = ["hydra/sweeper=mlplab_optuna", "hydra.sweeper.sampler.name=random",
          "optimizer.lr=tag(log, interval(0.001, 0.5))",
          "architecture.hidden=choice([8],[16],[16,16])",
          f"hydra.sweeper.n_trials={N_TRIALS}", "hydra.sweeper.pruner.name=median",
          f"hydra.sweeper.pruner.n_startup_trials={PRUNER_STARTUP}",
          "hydra.sweeper.pruner.n_warmup_steps=3", "hydra.sweeper.heartbeat_interval=1",
          "hydra.sweeper.grace_period=10"]
# A trial takes a second or two here, so the kill can find one mid-training.
JOB = ["dataset.n_samples=1000", "trainer.epochs=30", "trainer.log_every=1",
       "trainer.batch_size=32", "logger.log_model=false", "logger.plots=false"]


def _command(tmp, k: int, experiment: str, storage: str, study: str) -> list[str]:
    return [sys.executable, "-m", "mlplab", "train", "-m",
            *SEARCH, *JOB,
            f"hydra.sweeper.storage={storage}", f"hydra.sweeper.study_name={study}",
            f"logger.tracking_uri={SERVER}", f"experiment_name={experiment}",
            f"hydra.sweep.dir={tmp / f'worker{k}'}"]


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
def test_three_workers_share_one_study_and_a_killed_ones_trial_runs_again(
        tmp_path, mlflow_server, where):
    experiment = experiment_name(f"shared-study-{where}")
    study_name = experiment  # fresh in the server's database too
    storage_url = (f"sqlite:///{tmp_path / 'study.db'}" if where == "sqlite"
                   else OPTUNA_DATABASE)
    logs = [(tmp_path / f"worker{k}.log").open("w") for k in range(N_WORKERS)]
    workers = [subprocess.Popen(_command(tmp_path, k, experiment, storage_url, study_name),
                                cwd=tmp_path, env=cli_env(), stdout=logs[k],
                                stderr=subprocess.STDOUT, start_new_session=True)
               for k in range(N_WORKERS)]
    victim = workers[0]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(storage_url) if where == "postgresql" else None

    def victims_trial_mid_training():
        assert victim.poll() is None, (tmp_path / "worker0.log").read_text()[-3000:]
        try:
            study = optuna.load_study(study_name=study_name, storage=storage or storage_url)
        except Exception:  # noqa: BLE001 -- not created yet (the file, its tables, the study)
            return None
        return next((t for t in study.get_trials(states=(TrialState.RUNNING,))
                     if t.user_attrs.get("mlplab_worker", "::").split(":")[-2] == str(victim.pid)
                     and len(t.intermediate_values) >= 2), None)

    try:
        killed = wait_for(victims_trial_mid_training, 600, "worker 0 mid-trial", interval=0.1)
        os.killpg(victim.pid, signal.SIGKILL)  # no chance to tell the study anything
        victim.wait(timeout=60)
        statuses = [w.wait(timeout=1200) for w in workers[1:]]
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        for log in logs:
            log.close()
    assert statuses == [0, 0], [(tmp_path / f"worker{k}.log").read_text()[-2000:]
                                for k in (1, 2)]

    study = optuna.load_study(study_name=study_name, storage=storage or storage_url)
    trials = study.trials
    states = Counter(t.state for t in trials)
    assert states[TrialState.COMPLETE] + states[TrialState.PRUNED] == N_TRIALS
    assert states[TrialState.RUNNING] == states[TrialState.WAITING] == 0
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))

    # The killed worker's trial failed and its configuration ran again, once, elsewhere.
    lost = study.trials[killed.number]
    assert lost.state == TrialState.FAIL
    [retry] = [t for t in trials if t.user_attrs.get("retry_of") == killed.number]
    assert retry.params == killed.params
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert str(victim.pid) not in retry.user_attrs["mlplab_worker"]

    # Each finished trial ran one job, which finished; nothing is left RUNNING.
    runs = runs_of(experiment)
    children = [r for r in runs if r.data.tags.get("mlplab.role") != "sweep"]
    per_trial = Counter(r.data.params["trial.number"] for r in children
                        if r.info.status == "FINISHED")
    finished = {str(t.number) for t in trials if t.state.name in ("COMPLETE", "PRUNED")}
    assert set(per_trial) == finished and set(per_trial.values()) == {1}
    assert not [r for r in runs if r.info.status == "RUNNING"]
    [lost_run] = [r for r in children if r.data.params["trial.number"] == str(killed.number)]
    assert lost_run.info.status == "KILLED" and "queued again" in lost_run.data.tags["stop_reason"]
    parents = [r for r in runs if r.data.tags.get("mlplab.role") == "sweep"]
    assert sorted(p.info.status for p in parents) == ["FINISHED", "FINISHED", "KILLED"]

    # Pruning saw every worker's reports: some trial was pruned while its own worker had
    # completed fewer trials than the pruner needs before it prunes anything (counted up to
    # the pruned trial's end, when the decision had been made).
    def own_finished_before(trial):
        worker = trial.user_attrs["mlplab_worker"]
        return sum(1 for t in trials if t.user_attrs.get("mlplab_worker") == worker
                   and t.state == TrialState.COMPLETE
                   and t.datetime_complete < trial.datetime_complete)

    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and min(own_finished_before(t) for t in pruned) < PRUNER_STARTUP
