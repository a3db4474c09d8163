"""Run the toy Hydra app (toy_app.py) as a sweep in a subprocess and read what it left.

Sweeps run in a subprocess, as users run them: Hydra's global state, signal handlers and
the joblib launcher's worker processes all stay out of the pytest process.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna

TOY_APP = Path(__file__).with_name("toy_app.py")
LAUNCHERS = {
    "basic": [],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"],
}


def sweep_command(tmp: Path, launcher: str, *args: str, study: str = "toy") -> list[str]:
    """The full command line of a toy sweep storing its study in `tmp/study.db`."""
    return [
        sys.executable, str(TOY_APP), "-m",
        "hydra/sweeper=mlplab_optuna",
        *LAUNCHERS[launcher],
        f"hydra.sweep.dir={tmp / 'sweep'}",
        f"hydra.sweeper.storage=sqlite:///{tmp / 'study.db'}",
        f"hydra.sweeper.study_name={study}",
        f"log_file={tmp / 'log.jsonl'}",
        *args,
    ]


def toy_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "HYDRA_FULL_ERROR": "1"}


def run_sweep(tmp: Path, launcher: str, *args: str, study: str = "toy", timeout: float = 120):
    command = sweep_command(tmp, launcher, *args, study=study)
    proc = subprocess.run(command, capture_output=True, text=True, env=toy_env(),
                          timeout=timeout, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def read_log(tmp: Path) -> list[dict]:
    path = tmp / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_study(tmp: Path, study: str = "toy") -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=study, storage=f"sqlite:///{tmp / 'study.db'}")


def summary(tmp: Path) -> dict:
    return json.loads((tmp / "sweep" / "optuna_summary.json").read_text())


def complete_trials_so_far(tmp: Path) -> int:
    """COMPLETE trials in a study a running sweep is writing, read without Optuna.

    Opening the store with Optuna from here could race the sweeper creating its tables
    (both would try); a plain read-only query cannot.
    """
    path = tmp / "study.db"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2) as db:
            (count,) = db.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()
        return count
    except sqlite3.OperationalError:  # tables not created yet, or busy
        return 0
