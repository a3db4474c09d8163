"""The joblib launcher's workers start early, run the jobs, and do the parent run's MLflow
work, so the launching process never imports MLflow or matplotlib (mlplab.multirun.worker_pool)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cli_helpers import FAST, all_runs, client, isolated
from omegaconf import OmegaConf

# Runs `mlplab train` in-process and reports what the launching process saw.
DRIVER = """
import json, sys
from mlplab.multirun import worker_pool
from mlplab.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "warmed": sorted(worker_pool.WARMED_PIDS),
                  "imported": sorted(m for m in ("mlflow", "matplotlib") if m in sys.modules),
                  "pid": __import__("os").getpid()}))
"""
PID_LOG_FORMAT = "hydra.job_logging.formatters.simple.format='%(process)d %(message)s'"


def drive(store, *overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run([sys.executable, "-c", DRIVER, "train", "-m", *overrides,
                           *isolated(store)], capture_output=True, text=True, cwd=store,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def job_pids(store) -> set[int]:
    pids = set()
    for log in (store / "multirun").glob("*/train.log"):
        for line in log.read_text().splitlines():
            if "FINISHED" in line:
                pids.add(int(line.split()[0]))
    return pids


def test_joblib_jobs_run_in_the_warmed_workers_and_the_launcher_stays_light(store):
    fast = [o for o in FAST if not o.startswith("logger.")]  # plots and model on
    seen = drive(store, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1,2,3",
                 *fast, PID_LOG_FORMAT)
    assert seen["code"] == 0
    warmed, jobs = set(seen["warmed"]), job_pids(store)
    assert warmed and seen["pid"] not in warmed | jobs
    # The launcher's own Parallel reused the warmed executor: had it started a new one,
    # its two fresh workers would have run the jobs (four processes in all).
    assert warmed & jobs and len(warmed | jobs) == 2
    assert seen["imported"] == []
    runs = all_runs(store)
    [parent] = [r for r in runs if r.data.tags.get("mlplab.role") == "sweep"]
    children = [r for r in runs if r is not parent]
    assert parent.info.status == "FINISHED" and len(children) == 4
    assert all(c.info.status == "FINISHED" for c in children)
    assert parent.data.tags["best_run_id"] in {c.info.run_id for c in children}
    artifacts = {a.path for a in client(store).list_artifacts(parent.info.run_id)}
    assert "children.csv" in artifacts and "plots" in artifacts
    children_artifacts = {a.path for a in client(store).list_artifacts(children[0].info.run_id)}
    assert {"config.yaml", "weights", "model"} <= children_artifacts
    assert "plots" not in children_artifacts  # logger.plots null: none for a sweep's child


def test_basic_launcher_starts_no_pool_and_does_the_work_itself(store):
    seen = drive(store, "seed=0,1", *FAST, PID_LOG_FORMAT)
    assert seen["code"] == 0 and seen["warmed"] == []
    assert job_pids(store) == {seen["pid"]}
    assert "mlflow" in seen["imported"]  # it opened the runs itself
    runs = all_runs(store)
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)


def test_joblib_arguments_are_the_launchers():
    from mlplab.multirun.sweeps import JOBLIB_LAUNCHER
    from mlplab.multirun.worker_pool import call_in_pool, joblib_arguments

    config = OmegaConf.create({"hydra": {"launcher": {
        "_target_": JOBLIB_LAUNCHER, "n_jobs": 3, "backend": None, "prefer": "processes",
        "require": None, "verbose": 0, "timeout": None, "pre_dispatch": "2*n_jobs",
        "batch_size": "auto", "temp_folder": None, "max_nbytes": "1024", "mmap_mode": "r"}}})
    arguments = joblib_arguments(config)
    # As hydra_joblib_launcher's launch() builds them: backend forced to loky, sizes as ints.
    assert arguments == {"n_jobs": 3, "backend": "loky", "prefer": "processes",
                         "require": None, "verbose": 0, "timeout": None,
                         "pre_dispatch": "2*n_jobs", "batch_size": "auto",
                         "temp_folder": None, "max_nbytes": 1024, "mmap_mode": "r"}
    basic = OmegaConf.create({"hydra": {"launcher": {
        "_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}}})
    assert joblib_arguments(basic) is None
    assert call_in_pool(basic, os.getpid) == os.getpid()


def test_grid_size_counts_the_basic_sweepers_jobs():
    from hydra import initialize_config_dir

    from mlplab.config import conf_dir
    from mlplab.multirun.worker_pool import grid_size

    def config(task, params=None, sweeper="hydra._internal.core_plugins.basic_sweeper."
                                           "BasicSweeper"):
        return OmegaConf.create({"hydra": {"sweeper": {"_target_": sweeper, "params": params},
                                           "overrides": {"task": task}}})

    with initialize_config_dir(str(conf_dir()), version_base="1.3"):  # as in a Hydra run
        assert grid_size(config(["seed=0,1,2", "trainer.epochs=2"])) == 3
        assert grid_size(config(["seed=range(0,4)", "optimizer.lr=0.1,0.2"])) == 8
        # The command line wins over hydra.sweeper.params on the same key, as in the sweeper.
        assert grid_size(config(["optimizer.lr=0.3", "seed=0,1"],
                                params={"optimizer.lr": "0.1,0.2,0.5"})) == 2
        assert grid_size(config(["seed=0"], params={"optimizer.lr": "0.1,0.2,0.5"})) == 3
        assert grid_size(config(["seed=0,1"], sweeper="mlplab.search.Sweeper")) is None


# Runs `mlplab train` in-process, then names the parent process of each pool worker.
PARENTS_DRIVER = DRIVER.replace("print(json.dumps({", """
def parent_of(pid):
    ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    return ppid, open(f"/proc/{ppid}/cmdline").read().replace("\\0", " ")
print(json.dumps({"parents": [parent_of(p) for p in worker_pool.WARMED_PIDS],""")


def test_pool_workers_are_forked_from_a_server_that_imported_mlflow(store):
    """The CLI starts the forkserver first thing for a local_parallel sweep; the pool's
    workers are its children (not the launching process's), and MLflow was imported
    there once, not in each worker. MLPLAB_FORKSERVER=0 keeps loky's own start."""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    for forkserver in ("1", "0"):
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env["MLPLAB_FORKSERVER"] = forkserver
        done = subprocess.run([sys.executable, "-c", PARENTS_DRIVER, "train", "-m",
                               "hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2",
                               "seed=0,1,2,3", *FAST, *isolated(store)],
                              capture_output=True, text=True, cwd=store, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        assert seen["code"] == 0 and len(seen["parents"]) == 2 and seen["imported"] == []
        for ppid, cmdline in seen["parents"]:
            if forkserver == "1":
                assert ppid != seen["pid"] and "multiprocessing.forkserver" in cmdline
                assert "'mlflow'" in cmdline  # what it imported before forking them
            else:
                assert ppid == seen["pid"]
