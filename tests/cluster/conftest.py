"""Fixtures of the cluster tests: the real one-node SLURM (`.ci/slurm-up`) and the real
MLflow server backed by PostgreSQL (`.ci/stores-up`), started by the scripts CI uses.

`.ci/run` starts both before the slow tests; a test that finds one down starts it through
the same script (idempotent, quick when it is up). A script that exits 3 cannot run on
this machine (not root, no apt-get): the test skips with the script's reason. Any other
failure fails the test, so that CI cannot pass by skipping.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cluster_helpers import ROOT, SERVER


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "cluster: needs the local SLURM and stores of .ci/slurm-up, .ci/stores-up")


def _bring_up(script: str, *args: str) -> None:
    proc = subprocess.run([str(ROOT / ".ci" / script), *args], capture_output=True,
                          text=True, timeout=1200)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if proc.returncode == 3:
        pytest.skip(lines[-1] if lines else f"{script}: cannot run here")
    if proc.returncode != 0:
        pytest.fail(f".ci/{script} failed (status {proc.returncode}):\n"
                    + "\n".join(lines[-20:]))


@pytest.fixture(scope="session")
def slurm() -> None:
    """A one-node SLURM whose `srun` runs jobs."""
    _bring_up("slurm-up")


@pytest.fixture(scope="session")
def mlflow_server() -> str:
    """The address of an MLflow server whose store is PostgreSQL, run from this venv."""
    _bring_up("stores-up", str(Path(sys.executable).parent.parent))
    return SERVER
