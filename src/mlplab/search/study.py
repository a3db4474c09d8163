"""Persistent Optuna studies: where they live, how a sweep resumes one.

A study is stored in SQLite by default, one file per study, so that re-running the same
sweep command (same study name) picks up where an interrupted sweep stopped. SQLite is
shared by the sweepers of a study and by every job that reports intermediate values, from
several processes, hence the generous lock timeout and transactions that take the write
lock when they begin (see `_sqlite_begin`). Any SQLAlchemy URL works instead, e.g. a
PostgreSQL server that the workers of a cluster all reach. Several sweepers on one study:
`mlplab.search.workers`.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from mlplab.errors import ConfigError
from mlplab.search.locks import file_lock, sqlite_path
from mlplab.tracking.postgresql import check_postgresql

log = logging.getLogger(__name__)

SQLITE_LOCK_TIMEOUT_S = 60
DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def default_storage_url(study_name: str) -> str:
    """`sqlite:///<project root>/outputs/optuna/<study_name>.db`, next to the MLflow store."""
    from mlplab.tracking.store import outputs_dir

    directory = outputs_dir() / "optuna"
    directory.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", study_name)
    return f"sqlite:///{(directory / safe).resolve()}.db"


_storages: dict[tuple[int, str], RDBStorage] = {}

# How long a PostgreSQL storage may take to accept a TCP connection before the sweep
# says it cannot reach it (SQLAlchemy would otherwise wait on the driver's own timeout).
POSTGRESQL_PING_S = 5

def open_storage(url: str) -> RDBStorage:
    """An RDB storage, one per process and URL (the basic launcher runs every job in the
    sweeper's process, and a loky worker runs many: setting one up is not free).

    SQLite connections wait for locks instead of failing at once, and get write-ahead
    logging with `synchronous=NORMAL`: every job commits one intermediate value per epoch,
    and a full fsync per commit would cost more than a toy epoch; WAL also lets readers
    read while jobs write. Both survive a killed process.
    """
    key = (os.getpid(), url)  # a forked worker must not share its parent's connections
    if key not in _storages:
        _storages[key] = new_storage(url)
    return _storages[key]


def new_storage(url: str, **heartbeat: Any) -> RDBStorage:
    """A storage of its own; `heartbeat` are RDBStorage's `heartbeat_interval`,
    `grace_period` and `heartbeat_stale_trial_callback` (the sweeper's, not the jobs')."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeat_interval
        if url.split(":", 1)[0].split("+", 1)[0] == "postgresql":
            # Its driver is an optional extra: one line naming it, not Optuna's traceback.
            check_postgresql(url, "hydra.sweeper.storage", POSTGRESQL_PING_S)
        if not url.startswith("sqlite"):
            try:
                return RDBStorage(url, **heartbeat)
            except ImportError as error:  # Optuna's, from the driver's ModuleNotFoundError
                module = getattr(error.__cause__, "name", None) or "its database driver"
                raise ConfigError(f"hydra.sweeper.storage: {url.split(':', 1)[0]}:// needs "
                                  f"the Python module {module!r}, which is not installed"
                                  ) from None
        path = sqlite_path(url)
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Workers starting together would race to create the tables of a new file.
        with file_lock(path):
            storage = RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}},
                **heartbeat)
    sqlalchemy.event.listen(storage.engine, "connect", _sqlite_connect)
    sqlalchemy.event.listen(storage.engine, "begin", _sqlite_begin)
    storage.engine.dispose()  # connections opened during set-up lack the settings
    return storage


def _sqlite_connect(connection: Any, _record: Any) -> None:
    # Python's sqlite3 opens a transaction only before the first write, so a read that a
    # write depends on (is the trial still WAITING? still RUNNING?) ran outside it, and two
    # processes could both pop the same queued trial. With the driver's own transaction
    # handling off, `_sqlite_begin` starts every transaction itself.
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # The write lock from the first statement on: Optuna's read-check-write steps (popping
    # a queued trial, failing a stale one) are then atomic between processes, as its
    # SELECT ... FOR UPDATE makes them on PostgreSQL. Waits, never fails, for the lock.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def count_done(study: optuna.Study) -> int:
    """Trials that count toward `n_trials`: COMPLETE and PRUNED (not FAIL, not WAITING)."""
    return len(study.get_trials(deepcopy=False, states=DONE_STATES))


def open_study(
    name: str, url: str, direction: str, pruner: Any, storage: RDBStorage | None = None
) -> tuple[optuna.Study, RDBStorage]:
    """Create the study or load it when it exists (resume, or another worker made it) in
    `storage` (default: this process's storage for `url`). The caller sets
    `study.sampler`, which may depend on how many trials the study already has."""
    storage = storage or open_storage(url)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction=direction,
        sampler=optuna.samplers.RandomSampler(),
        pruner=pruner,
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"hydra.sweeper.direction: study {name!r} in {url} was created with direction "
            f"{study.direction.name.lower()}; use that or choose another hydra.sweeper.study_name"
        )
    return study, storage
