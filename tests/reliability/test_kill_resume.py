"""A run interrupted by SIGINT, SIGTERM or SIGKILL, then continued with `trainer.resume`.

The oracle is an uninterrupted run with the same overrides and seed: mini-batches are
reshuffled every epoch, so the resumed run matches it only if the weights, the optimizer
state, the sample order and the shuffling RNG all came back exactly. It must then log the
same metric values at the same steps, once each, and end with bit-identical final weights.
"""

from __future__ import annotations

import os
import signal
import subprocess

import numpy as np
import pytest
from reliability_helpers import (
    QUICK,
    artifact_dir,
    metric_steps,
    metric_values,
    run_cli,
    run_params,
    run_tags,
    start_cli,
    stop_group,
    store_runs,
    train_args,
)

from polling import wait_for

EPOCHS = 3000
LOG_EVERY = 20
CHECKPOINT_EVERY = 100  # a periodic checkpoint also writes the buffered metrics
# xor with an ordered split needs no scikit-learn import: the processes start faster.
RUN = (*QUICK, "dataset=xor", "dataset.split=ordered", "seed=3", "trainer.batch_size=32",
       f"trainer.epochs={EPOCHS}",
       f"trainer.log_every={LOG_EVERY}", f"trainer.checkpoint_every={CHECKPOINT_EVERY}")


def only_run(db) -> dict:
    runs = store_runs(db)
    assert len(runs) == 1, runs
    return runs[0]


def final_weights(db, run_id) -> dict[str, np.ndarray]:
    with np.load(artifact_dir(db, run_id) / "weights" / "final.npz", allow_pickle=False) as f:
        return {key: f[key] for key in f.files}


def all_metrics(db, run_id) -> dict[str, list[tuple[int, float]]]:
    return {key: metric_values(db, run_id, key) for key in metric_steps(db, run_id)}


@pytest.fixture(scope="module")
def reference(once_per_run, migrated_store):
    """(store, run id) of the uninterrupted run: one for the whole run (read, never
    written), whichever xdist workers the tests of this module land on."""

    def train(tmp):
        db = tmp / "mlflow.db"
        db.write_bytes(migrated_store.read_bytes())
        proc = run_cli(*train_args(tmp, db, *RUN), cwd=tmp, timeout=180)
        assert proc.returncode == 0, proc.stderr[-2000:]
        run = only_run(db)
        assert run["status"] == "FINISHED"
        return run["run_id"]

    tmp, run_id = once_per_run("kill-resume-reference", train)
    return tmp / "mlflow.db", run_id


def start_and_wait(tmp, store, *, logged_steps: int):
    """Start the run; return (process, run id) once `logged_steps` evaluations are stored."""
    process = start_cli(*train_args(tmp, store, *RUN), cwd=tmp, log=tmp / "killed.log")

    def progress():
        runs = store_runs(store)
        if not runs:
            return None
        steps = metric_steps(store, runs[0]["run_id"]).get("train_loss", [])
        return runs[0]["run_id"] if len(steps) >= logged_steps else None

    try:
        run_id = wait_for(progress, 150, f"{logged_steps} logged evaluations")
    except BaseException:
        stop_group(process)
        raise
    return process, run_id


def resume(tmp, store, run_id) -> subprocess.CompletedProcess:
    proc = run_cli(*train_args(tmp, store, *RUN, f"trainer.resume={run_id}"), cwd=tmp,
                   timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def assert_same_as_reference(store, run_id, reference) -> None:
    ref_db, ref_id = reference
    expected = all_metrics(ref_db, ref_id)
    resumed = all_metrics(store, run_id)
    assert sorted(resumed) == sorted(expected)
    for key, points in expected.items():
        steps = [step for step, _ in resumed[key]]
        assert len(steps) == len(set(steps)), f"{key}: duplicated steps"
        assert steps == [step for step, _ in points], f"{key}: missing or extra steps"
        assert resumed[key] == points, f"{key}: values differ from the uninterrupted run"
    ours, theirs = final_weights(store, run_id), final_weights(ref_db, ref_id)
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_marks_killed_keeps_a_checkpoint_and_resume_matches(tmp_path, store, reference,
                                                                  signum):
    process, run_id = start_and_wait(tmp_path, store, logged_steps=10)
    try:
        os.kill(process.pid, signum)
        assert process.wait(timeout=120) == 130, (tmp_path / "killed.log").read_text()[-3000:]
    finally:
        stop_group(process)
    log = (tmp_path / "killed.log").read_text()
    run = only_run(store)
    assert run["status"] == "KILLED"
    reason = run_tags(store, run_id)["stop_reason"]
    assert reason.startswith(f"interrupted by {signum.name} after epoch ")
    killed_at = int(reason.rsplit(" ", 1)[1])
    assert killed_at < EPOCHS, "the run ended before the signal arrived"
    assert f"mlplab: error: run {run_id} " in log and f"KILLED: {reason}" in log
    # The checkpoint of the epoch it stopped at is an artifact, readable without pickle.
    checkpoint = artifact_dir(store, run_id) / "checkpoints" / f"epoch_{killed_at:06d}.npz"
    with np.load(checkpoint, allow_pickle=False) as saved:
        assert "model/W1" in saved.files and "order" in saved.files
    # Every evaluation up to the kill is in the store.
    ref_db, ref_id = reference
    expected_steps = [s for s in metric_steps(ref_db, ref_id)["train_loss"] if s <= killed_at]
    assert metric_steps(store, run_id)["train_loss"] == expected_steps
    params_before = run_params(store, run_id)

    resume(tmp_path, store, run_id)
    run = only_run(store)  # the same run continued, no second one
    assert run["run_id"] == run_id and run["status"] == "FINISHED"
    assert run_params(store, run_id) == params_before
    assert "trainer.resume" in run_tags(store, run_id)["resume_changed_params"]
    assert_same_as_reference(store, run_id, reference)


@pytest.mark.timeout(400)
def test_sigkill_leaves_running_and_resume_continues_from_the_last_checkpoint(tmp_path, store,
                                                                             reference):
    """SIGKILL cannot be caught: the run stays RUNNING with the metrics flushed so far and
    the periodic checkpoints. `trainer.resume` continues from the newest checkpoint; the
    epochs between it and the kill are trained again, and their metrics, already stored,
    are not logged a second time."""
    process, run_id = start_and_wait(tmp_path, store, logged_steps=3 * CHECKPOINT_EVERY
                                     // LOG_EVERY)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert only_run(store)["status"] == "RUNNING"
    checkpoints = sorted((artifact_dir(store, run_id) / "checkpoints").glob("epoch_*.npz"))
    assert checkpoints, "no periodic checkpoint was logged"
    logged = metric_steps(store, run_id)["train_loss"]
    assert max(logged) < EPOCHS

    resume(tmp_path, store, run_id)
    assert only_run(store)["status"] == "FINISHED"
    assert_same_as_reference(store, run_id, reference)


def test_resume_logs_no_step_the_store_already_holds(store):
    """The mechanism behind the SIGKILL case, without timing: a run that stored metrics past
    its checkpoint (epochs 1-8, checkpoint at 5) is resumed and replays epochs 6-10."""
    from mlplab.tracking.run import MlflowRun

    uri = f"sqlite:///{store}"
    first = MlflowRun("resume", tracking_uri=uri, params={"lr": "0.1"}, flush_seconds=0)
    first.__enter__()
    for epoch in range(1, 9):
        first.on_epoch_end(epoch, {"train_loss": 1.0 / epoch})
    first.flush()  # ... and the process dies here: no __exit__, the run stays RUNNING
    first._restore_sigterm()  # (the signal handler a dead process would have taken along)
    assert only_run(store)["status"] == "RUNNING"
    with MlflowRun("resume", tracking_uri=uri, params={"lr": "0.1"},
                   resume_run_id=first.run_id, flush_seconds=0) as again:
        for epoch in range(6, 11):
            again.on_epoch_end(epoch, {"train_loss": 1.0 / epoch})
    assert only_run(store)["status"] == "FINISHED"
    assert metric_values(store, first.run_id, "train_loss") == [
        (epoch, 1.0 / epoch) for epoch in range(1, 11)]
