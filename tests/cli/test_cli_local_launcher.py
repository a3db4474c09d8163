"""`hydra/launcher=local_parallel` (mlplab.multirun.local_launcher): several jobs a task, each
run without Hydra's per-job copies of the config, must leave what Hydra's joblib launcher
leaves: each job's `.hydra/` files, its own log file, its run, and the results in order."""

from __future__ import annotations

import pytest
import yaml
from cli_helpers import FAST, all_runs, isolated, run_mlplab

from mlplab.multirun.local_launcher import MAX_BATCH, batch_size, split_batches

GRID = ["optimizer.lr=0.01,0.03,0.1", "seed=0,1"]  # six jobs
# Keys of hydra.yaml that name the launcher, the sweep directory or the command line, which
# differ between the two sweeps on purpose.
LAUNCHER_KEYS = (("launcher",), ("sweep", "dir"), ("runtime", "output_dir"),
                 ("overrides", "hydra"), ("runtime", "choices", "hydra/launcher"))


def _without(node: dict, paths) -> dict:
    for path in paths:
        parent = node["hydra"]
        for key in path[:-1]:
            parent = parent[key]
        parent.pop(path[-1], None)
    return node


def _sweep(store, name: str, *launcher: str):
    sweep_dir = store / name
    proc = run_mlplab("train", "-m", *launcher, "hydra.launcher.n_jobs=2", *FAST, *GRID,
                      *isolated(store)[:-1], f"hydra.sweep.dir={sweep_dir}", cwd=store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep_dir


def test_local_parallel_jobs_leave_what_the_joblib_launchers_leave(store):
    ours = _sweep(store, "ours", "hydra/launcher=local_parallel", "hydra.launcher.batch_size=3")
    theirs = _sweep(store, "theirs", "hydra/launcher=joblib")
    for num in range(6):
        job, reference = ours / str(num), theirs / str(num)
        for name in ("config.yaml", "overrides.yaml"):
            assert (job / ".hydra" / name).read_text() == \
                (reference / ".hydra" / name).read_text(), (num, name)
        hydra = yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())
        expected = yaml.safe_load((reference / ".hydra" / "hydra.yaml").read_text())
        assert hydra["hydra"]["job"]["num"] == num
        assert hydra["hydra"]["runtime"]["output_dir"] == str(job)
        assert _without(hydra, LAUNCHER_KEYS) == _without(expected, LAUNCHER_KEYS)
        # Its log file holds its own run's lines only, though its worker ran other jobs
        # before it and the file handler was pointed from one job's file to the next.
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        finished = [line for line in (job / "train.log").read_text().splitlines()
                    if "FINISHED" in line]
        name = ",".join(o for o in overrides if not o.startswith("logger."))
        assert len(finished) == 1 and name in finished[0], (num, finished)

    runs = all_runs(store)
    children = [r for r in runs if r.data.tags.get("mlplab.role") != "sweep"]
    assert len(children) == 12 and all(r.info.status == "FINISHED" for r in children)
    # The same jobs, the same results: the sweep's own summary read them in order.
    by_sweep = {}
    for parent in (r for r in runs if r.data.tags.get("mlplab.role") == "sweep"):
        kids = [r for r in children if r.data.tags["mlflow.parentRunId"] == parent.info.run_id]
        by_sweep[parent.info.run_id] = sorted(
            (r.data.params["optimizer.lr"], r.data.params["seed"], r.data.metrics["test_loss"])
            for r in kids)
    [first, second] = by_sweep.values()
    assert first == second


@pytest.mark.parametrize(("setting", "jobs", "workers", "expected"), [
    ("auto", 256, 2, MAX_BATCH),  # long sweeps: full tasks
    ("auto", 8, 2, 2),  # each worker still gets two tasks
    ("auto", 3, 2, 1),
    ("auto", 1, 4, 1),
    (5, 100, 2, 5),  # a number is taken as it is
    ("4", 100, 2, 4),
])
def test_batch_size_keeps_every_worker_busy(setting, jobs, workers, expected):
    assert batch_size(setting, jobs, workers) == expected


@pytest.mark.parametrize(("jobs", "size", "workers"), [(256, 8, 2), (64, 8, 2), (8, 2, 2),
                                                       (100, 8, 4), (3, 1, 2)])
def test_auto_batches_shrink_towards_the_end_and_keep_every_job_in_order(jobs, size, workers):
    batches = split_batches(list(range(jobs)), size, workers, guided=True)
    assert [job for batch in batches for job in batch] == list(range(jobs))
    sizes = [len(batch) for batch in batches]
    assert max(sizes) <= size and sizes == sorted(sizes, reverse=True)
    assert sizes[-workers:] == [1] * workers  # the workers' last tasks: one job each
    assert split_batches(list(range(jobs)), size, workers, guided=False) == [
        list(range(jobs))[i:i + size] for i in range(0, jobs, size)]
