"""`trainer.resume` refuses what it cannot honour, and the run it names stays as it was.

A run is killed (SIGINT) mid-training; resuming it with another dataset, architecture,
loss, optimizer, dtype or seed must exit 2 with one line naming that key, touch nothing
in the store, and leave the run KILLED, so that resuming it as it was trained still works.
"""

from __future__ import annotations

import os
import re
import signal

import pytest
from reliability_helpers import (
    QUICK,
    metric_steps,
    rows,
    run_cli,
    start_cli,
    stop_group,
    store_runs,
    train_args,
)

from mlplab.tracking.run import MlflowRun
from polling import wait_for

# A checkpoint every 100 epochs writes the metrics so far to the store too, so the killing
# test sees 5 evaluations early in the run; without one they reach the store only every 5 s,
# and on a quiet machine the whole run can end first.
RUN = (*QUICK, "dataset=xor", "dataset.split=ordered", "seed=3", "trainer.batch_size=32",
       "trainer.epochs=3000", "trainer.log_every=20", "trainer.checkpoint_every=100")

# (overrides added to RUN, what the one stderr line must say)
REFUSED = {
    "dataset": (["dataset.n_samples=500"],
                r"^dataset\.n_samples: run (\w+) was trained with 1000, not 500; trainer\.resume "
                r"cannot change it \(the data would not be those the run trained on\); valid "
                r"choices: dataset\.n_samples=1000, or a new run without trainer\.resume$"),
    "architecture": (["architecture.hidden=[8]"],
                     r"^architecture\.hidden: run \w+ was trained with \[16, 16\], not \[8\]; "
                     r".*the model would not be the one in the checkpoint"),
    "loss": (["architecture.loss=mse"],
             r"^architecture\.loss: run \w+ was trained with binary_cross_entropy, not mse;"),
    "optimizer": (["optimizer=adam"], r"^optimizer\.name: run \w+ was trained with sgd, "
                                      r"not adam; .*\(\d+ more keys differ\)"),
    "dtype": (["trainer.dtype=float32"], r"^trainer\.dtype: .*with float64, not float32"),
    "seed": (["seed=4"], r"^seed: run \w+ was trained with 3, not 4; .*the data"),
}


def killed_run(tmp_path, store) -> str:
    """The id of a run of RUN stopped by SIGINT after a few evaluations (status KILLED)."""
    process = start_cli(*train_args(tmp_path, store, *RUN), cwd=tmp_path,
                        log=tmp_path / "killed.log")
    try:
        run_id = wait_for(lambda: next((r["run_id"] for r in store_runs(store)
                                        if len(metric_steps(store, r["run_id"]).get(
                                            "train_loss", [])) >= 5), None),
                          150, "5 logged evaluations")
        os.kill(process.pid, signal.SIGINT)
        assert process.wait(timeout=120) == 130, (tmp_path / "killed.log").read_text()[-2000:]
    finally:
        stop_group(process)
    assert [r["status"] for r in store_runs(store)] == ["KILLED"]
    return run_id


def store_state(store):
    """Everything a refused resume must leave as it was."""
    return (store_runs(store), rows(store, "SELECT * FROM metrics ORDER BY key, step"),
            rows(store, "SELECT * FROM params ORDER BY key"),
            rows(store, "SELECT key, value FROM tags ORDER BY key, value"))


def one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert lines[0].startswith("mlplab: error: ")
    return lines[0].removeprefix("mlplab: error: ")


@pytest.mark.slow  # a killed run and eight more commands: about two minutes here
@pytest.mark.timeout(600)
def test_resume_refuses_changes_it_cannot_honour_and_the_run_stays_killed(tmp_path, store):
    run_id = killed_run(tmp_path, store)
    before = store_state(store)
    for what, (overrides, expected) in REFUSED.items():
        proc = run_cli(*train_args(tmp_path, store, *RUN, *overrides,
                                   f"trainer.resume={run_id}"), cwd=tmp_path)
        line = one_error_line(proc)
        assert re.search(expected, line), (what, line)
        assert run_id in line, line
        assert store_state(store) == before, f"{what}: the refused resume changed the store"
    # A sweep would have every job continue this one run: refused before anything runs.
    proc = run_cli(*train_args(tmp_path, store, *RUN, f"trainer.resume={run_id}", "seed=3,4",
                               sweep=True), cwd=tmp_path)
    assert one_error_line(proc).startswith(f"trainer.resume: {run_id} is one run and a sweep "
                                           "(-m) runs many jobs; valid choices: resume it "
                                           "without -m")
    assert store_state(store) == before
    assert not (tmp_path / "hydra-sweep").exists()
    # Still resumable as it was trained (raising trainer.epochs is honoured).
    proc = run_cli(*train_args(tmp_path, store, *RUN, "trainer.epochs=3100",
                               f"trainer.resume={run_id}"), cwd=tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["status"] for r in store_runs(store)] == ["FINISHED"]
    assert max(metric_steps(store, run_id)["train_loss"]) == 3100


def test_a_run_stopped_before_its_first_checkpoint_says_there_is_nothing_to_resume(tmp_path,
                                                                                    store):
    # A job interrupted between opening its run and its first epoch (data loading, a
    # sweep's Ctrl-C): KILLED, with no checkpoint.
    uri = f"sqlite:///{store}"
    with pytest.raises(KeyboardInterrupt), MlflowRun("resume", tracking_uri=uri) as run:
        raise KeyboardInterrupt("terminated by signal SIGTERM")
    [stored] = store_runs(store)
    assert stored["status"] == "KILLED"
    (reason,) = rows(store, "SELECT value FROM tags WHERE run_uuid = ? AND key = 'stop_reason'",
                     run.run_id)[0]
    assert reason == "interrupted by SIGTERM before its first checkpoint: nothing to resume from"
    proc = run_cli(*train_args(tmp_path, store, *RUN, f"trainer.resume={run.run_id}"),
                   cwd=tmp_path)
    assert one_error_line(proc) == (
        f"trainer.resume: run {run.run_id} has nothing to resume from ({reason}); valid "
        "choices: a new run without trainer.resume")
    assert store_runs(store)[0]["status"] == "KILLED"
