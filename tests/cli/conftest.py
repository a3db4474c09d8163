"""A fresh, migrated MLflow store per test, copied from the run's template (tests/conftest.py)."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture
def store(tmp_path, migrated_store):
    """tmp_path holding an empty, migrated `mlflow.db`."""
    shutil.copy(migrated_store, tmp_path / "mlflow.db")
    return tmp_path
