"""A ready MLflow store to copy: creating one runs every schema migration (seconds)."""

from __future__ import annotations

import shutil

import pytest
from cli_helpers import store_uri


@pytest.fixture(scope="session")
def store_template(tmp_path_factory):
    from mlflow import MlflowClient

    directory = tmp_path_factory.mktemp("store-template")
    MlflowClient(store_uri(directory)).search_experiments()  # creates the tables
    return directory / "mlflow.db"


@pytest.fixture
def store(tmp_path, store_template):
    """tmp_path holding an empty, migrated `mlflow.db`."""
    shutil.copy(store_template, tmp_path / "mlflow.db")
    return tmp_path
