"""The workers of a sweep's loky pool forked from one process that has imported what a
job needs, instead of each starting a fresh interpreter.

A job's imports (MLflow with SQLAlchemy and pandas, Hydra, mlplab) cost about 3 s of CPU in
every new interpreter, and loky's own start method (fork+exec) starts each worker from
scratch: on two cores, two workers importing at once are most of a short sweep's wall
time, more than the basic launcher spends importing once (`benchmarks/bench_sweep_throughput.py`,
the 8-run comparison). With Python's "forkserver" start method, one server process
imports the modules of `PRELOAD` once, and each worker is a fork of it, with those
modules loaded. The server imports while the launching process composes and checks the
sweep (the CLI starts it first thing when the command line names a pool launcher), and
it holds no thread, connection or store: each worker opens its own, as before.

`MLPLAB_FORKSERVER=0` keeps loky's own start method.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
from collections.abc import Sequence

log = logging.getLogger(__name__)

# What a job of a sweep imports before it trains and logs (the summary's matplotlib is
# left out: one worker draws it, once, at the end).
PRELOAD = (
    "numpy",
    "mlplab.multirun.worker_pool",
    "mlplab.multirun.local_launcher",
    "hydra_plugins.mlplab_local_launcher.local_launcher",
    "mlplab.cli.train",
    "mlplab.job.run",
    "mlplab.tracking.run",
    "mlplab.tracking.pyfunc",
    "mlplab.tracking.datasets",
    "mlplab.tracking.sweep",
    "mlflow",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.pyfunc",  # a run's model
    "mlplab.multirun.preloaded",  # last: freezes what the imports made
)

# `hydra/launcher=joblib` or `=local_parallel` on a command line (any `+`/`++` prefix).
_POOL_LAUNCHER = re.compile(r"^\+{0,2}hydra/launcher=(joblib|local_parallel)$")

_STARTED: list[bool] = []  # whether this process has started it (process state)


def enabled() -> bool:
    return (os.environ.get("MLPLAB_FORKSERVER", "1").strip().lower() not in ("0", "false", "no")
            and "forkserver" in multiprocessing.get_all_start_methods())


def names_pool_launcher(overrides: Sequence[str]) -> bool:
    """Whether a command line's overrides pick the joblib or the local_parallel launcher."""
    return any(_POOL_LAUNCHER.match(str(line).strip()) for line in overrides)


def start() -> bool:
    """Start the server the pool's workers will be forked from (importing `PRELOAD` in the
    background from now on); whether it runs. Once per process; standard library only,
    so the CLI can call it before its own imports. `use_for_pool` makes loky use it."""
    if not _STARTED:
        running = enabled()
        if running:
            try:
                multiprocessing.set_forkserver_preload(list(PRELOAD))
                from multiprocessing import forkserver

                forkserver.ensure_running()
            except Exception:  # noqa: BLE001 -- loky's own start method still works
                log.debug("no forkserver for the worker pool", exc_info=True)
                running = False
        _STARTED.append(running)
    return _STARTED[0]


def use_for_pool() -> bool:
    """Have the loky pools of this process fork their workers from that server (started
    now if it is not yet); whether they will. A start method someone else chose for loky
    is kept."""
    from mlplab.private_api import loky_start_method

    if loky_start_method() not in (None, "forkserver") or not start():
        return False
    loky_start_method("forkserver")
    return True
