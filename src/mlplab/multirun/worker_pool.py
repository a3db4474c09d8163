"""The joblib launcher's worker processes, started early and shared with the launching
process.

A worker of the joblib launcher is a fresh interpreter (loky). Before its first job can
train, it imports Hydra, MLflow with SQLAlchemy and pandas, and matplotlib, opens the
tracking store, and fills MLflow's table of installed packages the first time it saves a
model: seconds of CPU per worker. Left to the launcher, that starts only once the launching
process has created the sweep's parent run, for which it imports MLflow
itself, and the summary at the end costs it matplotlib too. On two cores these are most of
a short sweep's time.

So, with the joblib launcher:
- `start_warm_up` (run by the `WarmWorkers` callback, listed first under `hydra.callbacks`,
  see `mlplab.multirun.callbacks`) starts the workers at
  `on_multirun_start` and gives each a warm-up task that does what a job's first steps
  do, without logging anything: import the modules, open the store, draw a small
  learning-curve figure and save a tiny pyfunc model into a temporary directory.
- `call_in_pool` runs a function of the launching process in one of those workers and
  returns its result. The sweep callback creates the parent run and writes the summary
  this way, so the launching process never imports MLflow or matplotlib.

The launcher's own `joblib.Parallel` is given the same arguments, so joblib reuses the
executor and the jobs find the workers ready. With any other launcher nothing starts and
`call_in_pool` calls the function in place. A warm-up that fails only costs its time: the
job that follows does the same work and reports any error itself.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mlplab.config.preflight import expand_jobs
from mlplab.multirun import forkserver
from mlplab.multirun.sweeps import JOBLIB_POOL_LAUNCHERS, logger_enabled
from mlplab.private_api import joblib_parallel_arguments

log = logging.getLogger(__name__)

WARMED_PIDS: list[int] = []  # the workers that ran a warm-up task, in this process


def joblib_arguments(config: DictConfig) -> dict | None:
    """The keyword arguments the joblib launcher gives `joblib.Parallel` for this sweep
    (built as its `launch` builds them), or None when another launcher is configured or
    the launcher config cannot be read."""
    launcher = OmegaConf.select(config, "hydra.launcher")
    if launcher is None or OmegaConf.select(launcher, "_target_") not in JOBLIB_POOL_LAUNCHERS:
        return None
    try:
        arguments = OmegaConf.to_container(launcher, resolve=True)
        arguments.pop("_target_")
        arguments = joblib_parallel_arguments(arguments)
    except Exception:  # noqa: BLE001 -- a broken launcher config is the launcher's to report
        log.debug("no worker pool: could not read the launcher config", exc_info=True)
        return None
    return arguments


def warm_up_options(config: DictConfig) -> dict:
    """What the jobs of this sweep will use: the store (if any) and which artifacts."""
    from mlplab.tracking.store import resolve_tracking_uri

    logger = OmegaConf.select(config, "logger", default=None)
    if logger is None or not logger_enabled(config):
        return {"use_store": False, "tracking_uri": None, "plots": False, "model": False}
    return {"use_store": True,
            "tracking_uri": resolve_tracking_uri(OmegaConf.select(logger, "tracking_uri")),
            # null draws no figure in a sweep's jobs; the summary imports matplotlib once
            "plots": OmegaConf.select(logger, "plots") is True,
            "model": bool(OmegaConf.select(logger, "log_model", default=True))}


def grid_jobs(config: DictConfig) -> list[list[str]] | None:
    """The override lists of the jobs Hydra's basic sweeper makes of this command line and
    the config's `hydra.sweeper.params` (preflight's expansion; past its MAX_COMBINATIONS,
    the ones it checks); None for other sweepers or when they cannot be told."""
    target = str(OmegaConf.select(config, "hydra.sweeper._target_", default="") or "")
    if not target.endswith(".BasicSweeper"):
        return None
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None)
    try:
        return expand_jobs(list(OmegaConf.select(config, "hydra.overrides.task", default=[])),
                           OmegaConf.to_container(params) if params is not None else None)
    except Exception:  # noqa: BLE001 -- the launcher will report what it cannot expand
        return None


def grid_size(config: DictConfig) -> int | None:
    """How many jobs `grid_jobs` finds (past MAX_COMBINATIONS, a lower bound), or None."""
    jobs = grid_jobs(config)
    return None if jobs is None else len(jobs)


def compose_ahead(loader, config: DictConfig) -> None:
    """Have `loader` (a `ComposeOnceConfigLoader`) compose the configs of this grid's jobs
    in this process (see `mlplab.multirun.local_launcher`, which sends them to the
    workers); nothing for other sweepers, or when the jobs cannot be told."""
    jobs = grid_jobs(config) if hasattr(loader, "compose_ahead") else None
    if jobs is None:
        return
    try:
        loader.compose_ahead(config, jobs)
    except Exception:  # noqa: BLE001 -- the workers compose what is missing themselves
        log.debug("could not compose the sweep's jobs ahead", exc_info=True)


def start_warm_up(config: DictConfig) -> threading.Thread | None:
    """Start the joblib workers of this sweep with a warm-up task on each, from a daemon
    thread (the call returns at once); None when the launcher is not joblib."""
    arguments = joblib_arguments(config)
    if arguments is None:
        return None
    from joblib import effective_n_jobs

    try:
        workers = max(1, effective_n_jobs(arguments.get("n_jobs")))
    except Exception:  # noqa: BLE001
        log.debug("no worker warm-up: n_jobs unreadable", exc_info=True)
        return None
    forkserver.use_for_pool()  # before the pool's first worker
    jobs = grid_size(config)  # a worker that gets no job needs no warm-up
    workers = min(workers, jobs) if jobs else workers
    thread = threading.Thread(target=_run_warm_ups,
                              args=(arguments, workers, warm_up_options(config)),
                              name="mlplab-warm-workers", daemon=True)
    thread.start()
    return thread


def _run_warm_ups(arguments: dict, workers: int, options: dict) -> None:
    from joblib import Parallel, delayed

    try:
        WARMED_PIDS[:] = Parallel(**arguments)(delayed(warm_up)(options)
                                               for _ in range(workers))
    except Exception:  # noqa: BLE001 -- see the module docstring
        log.debug("worker warm-up failed", exc_info=True)


def call_in_pool(config: DictConfig, function, *args):
    """`function(*args)` in a worker of this sweep's joblib pool, or here when the sweep
    has none. Its exceptions reach the caller. `function` must be importable by name and
    its arguments and result picklable."""
    arguments = joblib_arguments(config)
    if arguments is None:
        return function(*args)
    from joblib import Parallel, delayed

    return Parallel(**arguments)([delayed(function)(*args)])[0]


def warm_up(options: dict) -> int:
    """In a worker: do a job's one-time work ahead of it; returns the worker's pid."""
    import hydra.core.utils  # noqa: F401 -- the launcher's run_job

    import mlplab.data  # noqa: F401
    import mlplab.job  # noqa: F401
    import mlplab.training  # noqa: F401
    from mlplab.nn import MLP

    with tempfile.TemporaryDirectory(prefix="mlplab-warm-up-") as scratch:
        if options.get("use_store"):
            from mlplab.tracking.run import MlflowRun  # noqa: F401
            from mlplab.tracking.store import get_client

            get_client(options["tracking_uri"])  # cached for the jobs of this process
        if options.get("plots"):
            from mlplab.tracking.plots import learning_curves

            history = {"train_loss": [(1, 1.0), (2, 0.5)], "test_loss": [(1, 1.1), (2, 0.6)]}
            learning_curves(history, Path(scratch) / "learning_curves.png")
        if options.get("model"):
            from mlplab.tracking.pyfunc import save_pyfunc_model

            model = MLP([2, 2, 1], ["relu", "sigmoid"], "binary_cross_entropy")
            save_pyfunc_model(Path(scratch) / "model", model, task="binary")
    return os.getpid()
