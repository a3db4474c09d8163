"""A fresh SQLite MLflow store per test, copied from one created per session.

Creating a store runs MLflow's schema migrations, which take seconds (more on a busy
machine); copying an already-migrated empty database file takes milliseconds.
"""

import shutil

import pytest


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    from mlplab.tracking import get_client

    get_client(f"sqlite:///{path}")
    return path


@pytest.fixture
def uri(tmp_path, empty_store):
    """The tracking URI of an empty store in this test's tmp_path."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path}/mlflow.db"
