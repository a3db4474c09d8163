"""Run the real `mlplab` command in a subprocess against a temporary MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Tiny jobs: a sweep's cost is then process start-up and MLflow, not training.
FAST = ["dataset.n_samples=200", "trainer.epochs=4", "trainer.log_every=1",
        "logger.log_model=false", "logger.plots=false"]


def mlplab_command() -> list[str]:
    script = Path(sys.executable).with_name("mlplab")  # the installed console script
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlplab"]


def store_uri(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'mlflow.db'}"


def isolated(tmp: Path) -> list[str]:
    """Overrides that keep a run's store and Hydra directories inside `tmp`."""
    return [f"logger.tracking_uri={store_uri(tmp)}", f"hydra.run.dir={tmp / 'run'}",
            f"hydra.sweep.dir={tmp / 'multirun'}"]


def run_mlplab(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([*mlplab_command(), *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def client(tmp: Path):
    from mlflow import MlflowClient

    return MlflowClient(store_uri(tmp))


def all_runs(tmp: Path) -> list:
    mlflow = client(tmp)
    ids = [e.experiment_id for e in mlflow.search_experiments()]
    return list(mlflow.search_runs(ids, max_results=1000))
