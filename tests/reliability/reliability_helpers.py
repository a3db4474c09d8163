"""Helpers of the reliability tests: the real `mlplab` CLI in a subprocess, and the MLflow
store read back with plain `sqlite3`.

Reading the SQLite file directly is an independent check: a bug in mlplab's tracking layer
or in MLflow's client cannot hide what is actually stored.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PYTHON = sys.executable
TERMINAL = ("FINISHED", "FAILED", "KILLED")
# A run quick enough for a test: no pyfunc model, no figures, no MLflow import in plots.
QUICK = ("logger.log_model=false", "logger.plots=false")


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: no inherited tracking URI, one BLAS thread
    (the machine is shared), unbuffered output so a killed process leaves its log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONUNBUFFERED="1", HYDRA_FULL_ERROR="0")
    env.update(extra)
    return env


def mlplab_command(*args: str) -> list[str]:
    return [PYTHON, "-m", "mlplab", *args]


def train_args(tmp: Path, store: Path | str, *overrides: str, sweep: bool = False,
               name: str = "hydra") -> list[str]:
    """`train [-m]` arguments that keep every output of the run or sweep under `tmp`."""
    uri = store if isinstance(store, str) else f"sqlite:///{store}"
    return ["train", *(["-m"] if sweep else []), f"logger.tracking_uri={uri}",
            f"hydra.run.dir={tmp}/{name}-run", f"hydra.sweep.dir={tmp}/{name}-sweep",
            *overrides]


def run_cli(*args: str, cwd: Path, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(mlplab_command(*args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env or cli_env())


def start_cli(*args: str, cwd: Path, log: Path, env=None) -> subprocess.Popen:
    """Start the CLI in its own process group, stdout and stderr into `log`, with SIGINT
    as under a terminal even when the tests run in the background (a shell's `cmd &`
    leaves SIGINT ignored for its children)."""
    handle = log.open("w")
    return subprocess.Popen(mlplab_command(*args), cwd=cwd, stdout=handle,
                            stderr=subprocess.STDOUT, text=True, env=env or cli_env(),
                            start_new_session=True, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_group(process: subprocess.Popen) -> None:
    """Make sure a started process group is gone (tests that fail halfway)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------------------ the store

def rows(db: Path, query: str, *args) -> list[tuple]:
    """Rows of a read-only query; [] when the store file was never created."""
    if not Path(db).exists():
        return []
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return connection.execute(query, args).fetchall()
    finally:
        connection.close()


def store_runs(db: Path) -> list[dict]:
    """Every run in the store: id, status, name, experiment name, parent run id."""
    found = rows(db, "SELECT r.run_uuid, r.status, r.name, e.name, "
                     "(SELECT value FROM tags t WHERE t.run_uuid = r.run_uuid "
                     " AND t.key = 'mlflow.parentRunId') "
                     "FROM runs r JOIN experiments e ON r.experiment_id = e.experiment_id")
    return [dict(zip(("run_id", "status", "name", "experiment", "parent"), row, strict=True))
            for row in found]


def metric_steps(db: Path, run_id: str) -> dict[str, list[int]]:
    """{metric key: every logged step, sorted, duplicates kept}."""
    steps = defaultdict(list)
    for key, step in rows(db, "SELECT key, step FROM metrics WHERE run_uuid = ? "
                              "ORDER BY key, step", run_id):
        steps[key].append(step)
    return dict(steps)


def metric_values(db: Path, run_id: str, key: str) -> list[tuple[int, float]]:
    return rows(db, "SELECT step, value FROM metrics WHERE run_uuid = ? AND key = ? "
                    "ORDER BY step", run_id, key)


def run_params(db: Path, run_id: str) -> dict[str, str]:
    return dict(rows(db, "SELECT key, value FROM params WHERE run_uuid = ?", run_id))


def run_tags(db: Path, run_id: str) -> dict[str, str]:
    return dict(rows(db, "SELECT key, value FROM tags WHERE run_uuid = ?", run_id))


def artifact_dir(db: Path, run_id: str) -> Path:
    """Where a SQLite store's run keeps its artifacts (a local file: URI)."""
    (uri,) = rows(db, "SELECT artifact_uri FROM runs WHERE run_uuid = ?", run_id)[0]
    return Path(uri.removeprefix("file://"))
