"""Helpers of the cluster tests: the real `mlplab` CLI, SLURM's own commands, and the
MLflow server's store read back both through MLflow and straight from PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER = "http://127.0.0.1:5055"  # .ci/stores-up
MLFLOW_DATABASE = "postgresql://mlplab:mlplab@127.0.0.1:5432/mlflow"
# Small jobs whose cost is the process start-up, not training.
FAST = ["dataset.n_samples=200", "trainer.epochs=4", "trainer.log_every=1",
        "logger.log_model=false", "logger.plots=false"]
# Jobs that train for a while (about 10 ms an epoch here), so that a signal finds them
# in the middle of their epochs.
LONG = ["dataset.n_samples=2000", "trainer.batch_size=16", "architecture.hidden=[32,32]",
        "trainer.log_every=5", "trainer.blas_threads=1", "logger.log_model=false",
        "logger.plots=false"]
SLURM_LAUNCHER = ["hydra/launcher=submitit_slurm", "hydra.launcher.cpus_per_task=1"]


def experiment_name(test: str) -> str:
    """A fresh experiment for each test: the server's store outlives test sessions."""
    return f"cluster-{test}-{uuid.uuid4().hex[:8]}"


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(PYTHONUNBUFFERED="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MLFLOW_DISABLE_TELEMETRY="true")  # it would only try the network
    return env


def train_command(tmp: Path, experiment: str, *overrides: str, store: str = SERVER) -> list:
    return [sys.executable, "-m", "mlplab", "train", "-m", *SLURM_LAUNCHER,
            f"logger.tracking_uri={store}", f"experiment_name={experiment}",
            f"hydra.sweep.dir={tmp / 'multirun'}", *overrides]


def run_sweep(tmp: Path, experiment: str, *overrides: str,
              timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(train_command(tmp, experiment, *overrides), cwd=tmp, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def start_sweep(tmp: Path, experiment: str, *overrides: str) -> subprocess.Popen:
    log = (tmp / "sweep.log").open("w")
    return subprocess.Popen(train_command(tmp, experiment, *overrides), cwd=tmp,
                            env=cli_env(), stdout=log, stderr=subprocess.STDOUT, text=True)


def client(uri: str = SERVER):
    from mlflow import MlflowClient

    return MlflowClient(uri)


def runs_of(experiment: str, uri: str = SERVER) -> list:
    mlflow = client(uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        return []
    return list(mlflow.search_runs([found.experiment_id], max_results=1000))


def parent_and_children(experiment: str, uri: str = SERVER):
    runs = runs_of(experiment, uri)
    parents = [r for r in runs if r.data.tags.get("mlplab.role") == "sweep"]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    children = [r for r in runs if r is not parents[0]]
    return parents[0], children


def training_children(experiment: str, count: int, uri: str = SERVER) -> list:
    """The RUNNING child runs that have logged metrics already, once there are `count`."""
    mlflow = client(uri)
    running = [r for r in runs_of(experiment, uri) if r.info.status == "RUNNING"
               and r.data.tags.get("mlplab.role") != "sweep"
               and mlflow.get_metric_history(r.info.run_id, "train_loss")]
    return running if len(running) >= count else []


def sacct_states(array_or_job: str) -> dict[str, str]:
    """{job id: state} of SLURM's accounting, one line per job (no steps)."""
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", array_or_job],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return dict(line.split("|", 1) for line in out.splitlines() if line.strip())


def postgres_runs(experiment_id: str) -> dict[str, str]:
    """{run id: status} for an experiment, read straight from the server's PostgreSQL."""
    import psycopg

    with psycopg.connect(MLFLOW_DATABASE) as connection:
        rows = connection.execute("SELECT run_uuid, status FROM runs WHERE experiment_id = %s",
                                  (int(experiment_id),)).fetchall()
    return dict(rows)
