"""Fixtures of the tutorial tests (helpers are in `tutorial_runs`)."""

import sys
from pathlib import Path

import pytest

# The oracles live in tests/oracles; make `import oracles` work whatever the rootdir.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """One private SQLite MLflow store for the session's runs."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
