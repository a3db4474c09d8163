"""Fixtures of the reliability tests (helpers live in reliability_helpers.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from reliability_helpers import PYTHON, cli_env, free_port


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory) -> Path:
    """An empty SQLite store whose tables exist: creating them takes seconds, copying the
    file takes milliseconds."""
    path = tmp_path_factory.mktemp("reliability-store") / "mlflow.db"
    subprocess.run([PYTHON, "-c", "import sys; from mlflow import MlflowClient; "
                    "MlflowClient(tracking_uri=sys.argv[1]).search_experiments()",
                    f"sqlite:///{path}"], check=True, capture_output=True, env=cli_env(),
                   timeout=300)
    return path


@pytest.fixture
def store(tmp_path, migrated_store) -> Path:
    """A fresh, already migrated store file in this test's tmp_path."""
    path = tmp_path / "mlflow.db"
    shutil.copy(migrated_store, path)
    return path


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound once, then released)."""
    return free_port()
