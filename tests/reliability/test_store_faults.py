"""The tracking store failing under a run: a corrupt file, a read-only or full filesystem,
a process that died with its run RUNNING. Every fault is real (bytes overwritten, a tmpfs
mounted read-only or filled to the last byte, SIGKILL), never a mock; the store is read
back with plain `sqlite3` (reliability_helpers).

Mounting a tmpfs needs root; those tests are skipped elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest
from reliability_helpers import (
    PYTHON,
    QUICK,
    cli_env,
    metric_steps,
    mlplab_command,
    rows,
    run_cli,
    run_tags,
    start_cli,
    stop_group,
    store_runs,
    train_args,
)

from mlplab.tracking.stale import process_gone
from mlplab.tracking.store_errors import store_error_line
from polling import wait_for

XOR = ("dataset=xor", "dataset.split=ordered")
# A run long enough to be caught in the middle: metrics every 200 epochs, flushed at once.
LONG = (*XOR, "trainer.epochs=100000000", "trainer.log_every=200", "trainer.checkpoint_every=null")


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The last stderr line, after checking it is mlplab's one-line report."""
    assert "Traceback" not in proc.stderr, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("mlplab: error: "), proc.stderr
    return line.removeprefix("mlplab: error: ")


def corrupt(db: Path) -> None:
    """Overwrite every third page after the first (the header stays valid)."""
    size = db.stat().st_size
    with db.open("r+b") as handle:
        for offset in range(4096, size, 3 * 4096):
            handle.seek(offset)
            handle.write(b"\xde\xad" * 200)


@pytest.fixture
def corrupt_store(tmp_path, migrated_store) -> Path:
    db = tmp_path / "mlflow.db"
    shutil.copy(migrated_store, db)
    corrupt(db)
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):  # truly corrupt
        rows(db, "SELECT count(*) FROM runs")
    return db


@pytest.mark.parametrize("how", ["run", "sweep", "runs"])
def test_a_corrupt_store_is_one_line_naming_it(tmp_path, corrupt_store, how):
    if how == "runs":
        args = ["runs", "--tracking-uri", str(corrupt_store)]
    else:
        args = train_args(tmp_path, corrupt_store, *QUICK, *XOR, "trainer.epochs=2",
                          *(["seed=0,1"] if how == "sweep" else []), sweep=how == "sweep")
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert line.startswith(f"tracking store {corrupt_store} is corrupt "
                           "(database disk image is malformed)"), line
    assert "backup" in line
    if how != "runs":  # nothing ran: no sweep directory, no job's output
        assert not (tmp_path / "hydra-sweep").exists()


def test_store_error_line_names_real_sqlite_and_os_failures(tmp_path, corrupt_store):
    with pytest.raises(sqlite3.DatabaseError) as malformed:
        rows(corrupt_store, "SELECT count(*) FROM runs")
    assert "is corrupt (database disk image is malformed)" in store_error_line(
        malformed.value, f"sqlite:///{corrupt_store}")
    with pytest.raises(OSError) as full, open("/dev/full", "w") as device:  # always ENOSPC
        device.write("x")
        device.flush()
    assert full.value.errno == errno.ENOSPC
    wrapped = RuntimeError("while logging metrics")
    wrapped.__cause__ = full.value
    assert store_error_line(wrapped, "sqlite:///x.db") == (
        "tracking store x.db is on a full disk (No space left on device); valid choices: "
        "free space on that filesystem, or give a store elsewhere")
    assert store_error_line(ValueError("a bug, not a store failure")) is None


def test_process_gone_tells_a_dead_process_from_a_live_one():
    child = subprocess.Popen(["true"])
    child.wait()
    assert process_gone(child.pid, None)
    assert not process_gone(os.getpid(), None)
    # a live pid that started after the run did is a reused pid: the run's process is gone
    assert process_gone(os.getpid(), run_start_ms=1000)


def _wait_for_metrics(store: Path, count: int = 2) -> str:
    def logged():
        runs = store_runs(store) if store.exists() else []
        if runs and sum(len(v) for v in metric_steps(store, runs[0]["run_id"]).values()) >= count:
            return runs[0]["run_id"]
        return None

    return wait_for(logged, 240, "the run's first metrics")


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_killed_run_is_closed_by_the_next_command_and_listed_as_stale(tmp_path, store):
    process = start_cli(*train_args(tmp_path, store, *QUICK, *LONG), cwd=tmp_path,
                        log=tmp_path / "run.log")
    try:
        run_id = _wait_for_metrics(store)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        stop_group(process)
    assert store_runs(store)[0]["status"] == "RUNNING"
    tags = run_tags(store, run_id)
    assert tags["mlplab.pid"] == str(process.pid) and tags["mlplab.host"]
    logged = metric_steps(store, run_id)

    proc = run_cli("runs", "--stale", "--format", "csv", "--tracking-uri", str(store),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert run_id[:8] in proc.stdout and "KILLED" in proc.stdout
    # it left no word of how it ended: it vanished, as a SIGKILLed or OOM-killed run does
    assert store_runs(store)[0]["status"] == "KILLED"
    tags = run_tags(store, run_id)
    assert tags["mlplab.stale"] == "true"
    assert tags["stop_reason"].startswith(f"process {process.pid} on "), tags
    assert " is gone without closing this run" in tags["stop_reason"]
    assert metric_steps(store, run_id) == logged  # what was written before is kept
    # A run that ended by itself is not stale.
    finished = run_cli(*train_args(tmp_path, store, *QUICK, *XOR, "trainer.epochs=2",
                                   name="again"), cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    listed = run_cli("runs", "--stale", "--format", "csv", "--tracking-uri", str(store),
                     cwd=tmp_path)
    assert len(listed.stdout.strip().splitlines()) == 2  # the header and the killed run


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_killed_sweep_has_its_parent_and_child_closed_by_the_next_command(tmp_path, store):
    """The parent run records the launching process, as a child records its job's: when
    that process is SIGKILLed mid-job, `mlplab runs` closes both, not the child alone."""
    process = start_cli(*train_args(tmp_path, store, *QUICK, *LONG, "seed=0,1", sweep=True),
                        cwd=tmp_path, log=tmp_path / "sweep.log")
    try:
        wait_for(lambda: store.exists() and rows(store, "SELECT COUNT(*) FROM metrics")[0][0]
                 >= 2, 240, "the first job's metrics")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        stop_group(process)
    runs = store_runs(store)
    [parent] = [r for r in runs if r["parent"] is None]
    [child] = [r for r in runs if r["parent"] == parent["run_id"]]
    assert parent["status"] == child["status"] == "RUNNING"
    assert run_tags(store, parent["run_id"])["mlplab.pid"] == str(process.pid)

    proc = run_cli("runs", "--tracking-uri", str(store), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for run in (parent, child):
        [(status,)] = rows(store, "SELECT status FROM runs WHERE run_uuid = ?", run["run_id"])
        assert status == "KILLED", run
        tags = run_tags(store, run["run_id"])
        assert tags["mlplab.stale"] == "true"
        assert tags["stop_reason"].startswith(f"process {process.pid} on "), tags


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *options: str):
    """A tmpfs of `size` mounted at `path` (root only: skip the test otherwise)."""
    path.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]),
                            "tmpfs", str(path)], capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_read_only_store_is_refused_before_a_run(tmp_path, migrated_store):
    with tmpfs(tmp_path / "fs", "4M") as fs:
        shutil.copy(migrated_store, fs / "mlflow.db")
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
        proc = run_cli(*train_args(tmp_path, fs / "mlflow.db", *QUICK, *XOR, "trainer.epochs=2"),
                       cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        line = one_error_line(proc)
        assert line == (f"logger.tracking_uri: {fs / 'mlflow.db'} is read-only; valid choices: "
                        "make the file and its directory writable, or give another store")
        assert store_runs(fs / "mlflow.db") == []


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_full_disk_mid_run_is_one_line_and_the_next_command_closes_the_run(tmp_path,
                                                                            migrated_store):
    # Room for the store to grow until the filler takes the rest (once, in the whole slow
    # suite, 8 MiB were already full when the filler was opened).
    with tmpfs(tmp_path / "fs", "64M") as fs:
        db = fs / "mlflow.db"
        shutil.copy(migrated_store, db)
        process = start_cli(*train_args(tmp_path, db, *QUICK, *LONG), cwd=tmp_path,
                            log=tmp_path / "run.log")
        try:
            run_id = _wait_for_metrics(db, count=8)
            with (fs / "filler").open("wb") as filler:  # to the last byte
                with contextlib.suppress(OSError):
                    while True:
                        filler.write(b"\0" * 65536)
                        filler.flush()
            status = process.wait(timeout=120)
        finally:
            stop_group(process)
        log = (tmp_path / "run.log").read_text()
        assert status == 2, log
        assert "Traceback" not in log
        assert log.strip().splitlines()[-1] == (
            f"mlplab: error: tracking store {db} is on a full disk (database or disk is full); "
            "valid choices: free space on that filesystem, or give a store elsewhere")
        before = metric_steps(db, run_id)
        assert before["train_loss"], "the metrics written before the fault are kept"
        # The run could not be closed on a full disk; freed, the next command closes it.
        assert store_runs(db)[0]["status"] in ("RUNNING", "FAILED")
        (fs / "filler").unlink()
        proc = run_cli("runs", "--format", "csv", "--tracking-uri", str(db), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        # FAILED with the reason it knew, written by itself or by that command
        assert store_runs(db)[0]["status"] == "FAILED"
        tags = run_tags(db, run_id)
        assert "is on a full disk" in tags["failure_reason"], tags
        assert metric_steps(db, run_id) == before


@contextlib.contextmanager
def unprivileged_dir():
    """A directory owned by `nobody`, reachable by it (pytest's tmp_path is root's own),
    and the command prefix that runs a process as `nobody` (root only: skip otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the training as another user whose store can "
                    "be made read-only (root writes through any permission)")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    import pwd
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")
    prefix = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
              "--clear-groups"]
    reach = subprocess.run([*prefix, PYTHON, "-c", "import mlplab, mlflow, hydra"],
                           capture_output=True, text=True)
    if reach.returncode != 0:
        pytest.skip(f"user nobody cannot run mlplab from this checkout: "
                    f"{reach.stderr.strip().splitlines()[-1:]}")
    directory = Path(tempfile.mkdtemp(prefix="mlplab-ro-", dir="/tmp"))
    try:
        os.chown(directory, nobody.pw_uid, nobody.pw_gid)
        yield directory, prefix, (nobody.pw_uid, nobody.pw_gid)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_store_made_read_only_mid_run_is_one_line_and_the_next_command_closes_the_run(
        migrated_store):
    """The training runs as `nobody` on a store it owns; mid-run the store's directory and
    file become read-only (SQLite then cannot create its journal nor open the file for
    writing). Its metrics so far stay; the command ends with status 2 and one line naming
    the store; once writable again, the next command closes the run and lists it stale."""
    with unprivileged_dir() as (tmp, as_nobody, (uid, gid)):
        db = tmp / "mlflow.db"
        shutil.copy(migrated_store, db)
        state = tmp / "state"  # where the run leaves the close it could not write
        state.mkdir()
        for path in (db, state):
            os.chown(path, uid, gid)
        env = cli_env(HOME=str(tmp), MLPLAB_STATE_DIR=str(state))
        handle = (tmp / "run.log").open("w")
        process = subprocess.Popen(
            [*as_nobody, *mlplab_command(*train_args(tmp, db, *QUICK, *LONG))], cwd=tmp,
            stdout=handle, stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True)
        try:
            run_id = _wait_for_metrics(db, count=8)
            db.chmod(0o444)
            tmp.chmod(0o555)
            status = process.wait(timeout=120)
        finally:
            stop_group(process)
            handle.close()
        log = (tmp / "run.log").read_text()
        assert status == 2, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        assert log.strip().splitlines()[-1] == (
            f"mlplab: error: tracking store {db} is read-only (attempt to write a readonly "
            "database); valid choices: make the file and its directory writable, or give "
            "another store"), log[-3000:]
        before = metric_steps(db, run_id)
        assert before["train_loss"], "the metrics written before the fault are kept"
        assert store_runs(db)[0]["status"] == "RUNNING"  # it could not be closed

        tmp.chmod(0o755)
        db.chmod(0o644)
        proc = run_cli("runs", "--stale", "--format", "csv", "--tracking-uri", str(db),
                       cwd=tmp, env=env)
        assert proc.returncode == 0, proc.stderr
        assert run_id[:8] in proc.stdout
        # closed with what the run knew: FAILED, the store's reason
        assert store_runs(db)[0]["status"] == "FAILED"
        tags = run_tags(db, run_id)
        assert tags["mlplab.stale"] == "true", tags
        assert f"tracking store {db} is read-only" in tags["failure_reason"], tags
        assert tags["stop_reason"].startswith(tags["failure_reason"]), tags
        assert "could not write this to the store" in tags["stop_reason"], tags
        assert not list(state.glob("unclosed/*.json")), "the left close is used once"
        assert metric_steps(db, run_id) == before
