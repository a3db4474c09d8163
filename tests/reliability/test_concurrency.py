"""Two sweeps started at the same moment against one store: one with 8 parallel jobs
(joblib), one with 3 jobs in sequence. Every run must end FINISHED with every metric step
and checkpoint present, and no log may mention "database is locked".

Against a SQLite file that does not exist yet (both sweeps race to create its tables), and
against an `mlflow server` started by the test (http:// tracking URI).
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from reliability_helpers import (
    PYTHON,
    QUICK,
    cli_env,
    free_port,
    metric_steps,
    rows,
    start_cli,
    stop_group,
    store_runs,
    train_args,
)

from polling import wait_for

EPOCHS, CHECKPOINT_EVERY = 40, 10
# xor with an ordered split: no scikit-learn import, so ten worker processes start faster.
JOB = (*QUICK, "dataset=xor", "dataset.split=ordered", "dataset.n_samples=200",
       f"trainer.epochs={EPOCHS}", "trainer.log_every=1",
       f"trainer.checkpoint_every={CHECKPOINT_EVERY}")
SWEEPS = {
    "wide": ("seed=range(0,8)", "hydra/launcher=joblib", "hydra.launcher.n_jobs=8"),
    "second": ("seed=range(0,3)",),  # Hydra's basic launcher: jobs one after another
}
METRICS = ("test_accuracy", "test_loss", "train_accuracy", "train_loss")
LOCKED = "database is locked"


def run_both_sweeps(tmp: Path, uri: str) -> None:
    """Start both sweeps at once and wait for them; each must exit 0."""
    started = {name: start_cli(*train_args(tmp, uri, *JOB, *args, f"experiment_name={name}",
                                           sweep=True, name=name),
                               cwd=tmp, log=tmp / f"{name}.log")
               for name, args in SWEEPS.items()}
    try:
        for name, process in started.items():
            status = process.wait(timeout=600)
            assert status == 0, (tmp / f"{name}.log").read_text()[-3000:]
    finally:
        for process in started.values():
            stop_group(process)


def check_store(db: Path, tmp: Path, checkpoints_of) -> None:
    runs = store_runs(db)
    parents = [r for r in runs if r["parent"] is None]
    assert sorted(p["experiment"] for p in parents) == sorted(SWEEPS)
    assert {r["status"] for r in runs} == {"FINISHED"}, runs
    expected_children = {"wide": 8, "second": 3}
    for parent in parents:
        children = [r for r in runs if r["parent"] == parent["run_id"]]
        assert len(children) == expected_children[parent["experiment"]]
        for child in children:
            assert child["experiment"] == parent["experiment"]
            steps = metric_steps(db, child["run_id"])
            for key in METRICS:
                assert steps.get(key) == list(range(1, EPOCHS + 1)), (child, key)
            assert checkpoints_of(child["run_id"]) == [
                f"epoch_{e:06d}.npz" for e in range(CHECKPOINT_EVERY, EPOCHS + 1,
                                                    CHECKPOINT_EVERY)]
    logs = [p for p in tmp.rglob("*.log")]
    assert len(logs) >= 2 + 11  # both sweeps' output and every job's own log
    for log in logs:
        assert LOCKED not in log.read_text(errors="replace").lower(), log


# Both cases are slow (eleven job processes each): CI runs them with `-m slow`. The
# default run keeps six processes writing one store (tests/tracking/test_mlflow_store.py)
# and parallel sweeps into one store (test_divergence.py, tests/cli/test_cli_sweep.py).
@pytest.mark.slow
@pytest.mark.timeout(700)
def test_two_sweeps_share_a_new_sqlite_store(tmp_path):
    db = tmp_path / "shared" / "mlflow.db"  # neither sweep finds it: both race to create it
    run_both_sweeps(tmp_path, f"sqlite:///{db}")

    def checkpoints_of(run_id):
        (uri,) = rows(db, "SELECT artifact_uri FROM runs WHERE run_uuid = ?", run_id)[0]
        directory = Path(uri.removeprefix("file://")) / "checkpoints"
        return sorted(p.name for p in directory.glob("*.npz"))

    check_store(db, tmp_path, checkpoints_of)


@pytest.fixture
def mlflow_server(tmp_path, migrated_store):
    """`mlflow server` on 127.0.0.1 over a SQLite file, artifacts proxied into tmp_path."""
    db = tmp_path / "server.db"
    db.write_bytes(migrated_store.read_bytes())
    artifacts = tmp_path / "server-artifacts"
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [PYTHON, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}",
         "--artifacts-destination", str(artifacts), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=cli_env(),
        start_new_session=True)

    def healthy():
        if server.poll() is not None:
            raise AssertionError((tmp_path / "server.log").read_text()[-2000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 180, "the MLflow server to answer", interval=0.5)
        yield f"http://127.0.0.1:{port}", db, artifacts
    finally:
        stop_group(server)  # SIGKILL: the test has read what it needs (a graceful stop is slow)
        log.close()


@pytest.mark.slow
@pytest.mark.timeout(800)
def test_two_sweeps_share_an_mlflow_server(tmp_path, mlflow_server):
    uri, db, artifacts = mlflow_server
    started = time.monotonic()
    run_both_sweeps(tmp_path, uri)
    assert time.monotonic() - started < 600

    def checkpoints_of(run_id):
        (uri,) = rows(db, "SELECT artifact_uri FROM runs WHERE run_uuid = ?", run_id)[0]
        # mlflow-artifacts:/<experiment>/<run>/artifacts, stored under --artifacts-destination
        directory = artifacts / uri.removeprefix("mlflow-artifacts:/") / "checkpoints"
        return sorted(p.name for p in directory.glob("*.npz"))

    check_store(db, tmp_path, checkpoints_of)
