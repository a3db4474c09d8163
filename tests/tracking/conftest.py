"""A fresh SQLite MLflow store per test, copied from the run's migrated template.

Creating a store runs MLflow's schema migrations, which take seconds (more on a busy
machine); copying an already-migrated empty database file takes milliseconds. The
template (`migrated_store`) is made once per run, in tests/conftest.py.
"""

import shutil

import pytest


@pytest.fixture
def uri(tmp_path, migrated_store):
    """The tracking URI of an empty store in this test's tmp_path."""
    shutil.copy(migrated_store, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path}/mlflow.db"
