"""Store resolution, experiments, retries, and many processes writing one SQLite file."""

import subprocess
import sys
from pathlib import Path

import pytest

from mlplab.tracking import ensure_experiment, get_client, resolve_tracking_uri
from mlplab.tracking.store import default_tracking_uri, project_root, retry

HERE = Path(__file__).parent


def test_tracking_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None) == default_tracking_uri()
    assert default_tracking_uri() == f"sqlite:///{project_root() / 'outputs' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(None) == "http://127.0.0.1:5000"
    assert resolve_tracking_uri("sqlite:////x/y.db") == "sqlite:////x/y.db"
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri("runs.db") == f"sqlite:///{tmp_path / 'runs.db'}"


def test_ensure_experiment_is_idempotent_and_restores_deleted(uri, tmp_path):
    client = get_client(uri)
    first = ensure_experiment(client, "study")
    assert ensure_experiment(client, "study") == first
    experiment = client.get_experiment(first)
    assert experiment.artifact_location == (tmp_path / "mlartifacts" / "study").as_uri()
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    client.delete_experiment(first)
    from mlplab.tracking import store

    store._experiment_ids.clear()  # as a new process would see it
    assert ensure_experiment(client, "study") == first
    assert client.get_experiment(first).lifecycle_stage == "active"


def test_retry_waits_out_lock_errors_and_passes_others():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "done"

    assert retry(flaky) == "done" and len(calls) == 3

    def broken():
        calls.append(1)
        raise ValueError("no such run")

    calls.clear()
    with pytest.raises(ValueError):
        retry(broken)
    assert len(calls) == 1


def test_concurrent_writers_lose_no_run_or_metric(uri):
    """Six processes log 30 evaluations each, one write per evaluation, at the same time."""
    client = get_client(uri)
    experiment_id = ensure_experiment(client, "jobs")  # as the sweep callback does first
    procs = [subprocess.Popen([sys.executable, str(HERE / "mlflow_job.py"), "writer", uri,
                               str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(6)]
    errors = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    runs = client.search_runs([experiment_id])
    assert sorted(r.info.run_name for r in runs) == [f"writer-{i}" for i in range(6)]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.params["index"] == run.info.run_name.split("-")[1]
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
            assert steps == list(range(1, 31)), (run.info.run_name, key)


@pytest.mark.slow
def test_processes_creating_one_new_store_together_all_succeed(tmp_path):
    """Without the creation lock, concurrent schema migrations break the file for good."""
    uri = f"sqlite:///{tmp_path}/new.db"
    procs = [subprocess.Popen([sys.executable, str(HERE / "mlflow_job.py"), "opener", uri,
                               str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(4)]
    errors = [p.communicate(timeout=600)[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    client = get_client(uri)
    runs = client.search_runs([client.get_experiment_by_name("jobs").experiment_id])
    assert sorted(r.info.run_name for r in runs) == [f"opener-{i}" for i in range(4)]


def test_a_new_sqlite_store_is_put_in_write_ahead_log_mode(tmp_path):
    import shutil
    import sqlite3

    from mlplab.tracking.store import use_write_ahead_log

    path = tmp_path / "fresh.db"
    get_client(f"sqlite:///{path}")  # created by this process: in WAL mode from the start
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # An existing store keeps its mode when a process opens it.
    existing = tmp_path / "existing.db"
    shutil.copy(path, existing)
    sqlite3.connect(existing).execute("PRAGMA journal_mode=DELETE").fetchone()
    get_client(f"sqlite:///{existing}")
    assert sqlite3.connect(existing).execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    # The switch: a store another connection is writing to keeps its mode and says so.
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    writer = sqlite3.connect(other, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        assert not use_write_ahead_log(other, timeout=0.1)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert sqlite3.connect(other).execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert use_write_ahead_log(other)
    assert sqlite3.connect(other).execute("PRAGMA journal_mode").fetchone()[0] == "wal"



def test_connections_to_a_write_ahead_log_store_commit_without_fsync(tmp_path):
    """Once a process has opened a SQLite store, each SQLAlchemy connection it makes (MLflow's
    engines are SQLAlchemy's) to a store in WAL mode has synchronous=NORMAL (1); one to a
    store in SQLite's default journal mode keeps FULL (2), which that mode needs."""
    import sqlite3

    from sqlalchemy import create_engine, text

    wal = tmp_path / "wal.db"
    get_client(f"sqlite:///{wal}")
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.commit()
    assert sqlite3.connect(plain).execute("PRAGMA synchronous").fetchone()[0] == 2

    def synchronous(path):
        engine = create_engine(f"sqlite:///{path}")
        try:
            with engine.connect() as connection:
                return connection.execute(text("PRAGMA synchronous")).scalar()
        finally:
            engine.dispose()

    assert synchronous(wal) == 1
    assert synchronous(plain) == 2
