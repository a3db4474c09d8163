"""Fixtures of the reliability tests (helpers live in reliability_helpers.py; the migrated
store they copy, `migrated_store`, in tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from reliability_helpers import free_port


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
