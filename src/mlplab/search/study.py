"""Persistent Optuna studies: where they live, how a sweep resumes one.

A study is stored in SQLite by default, one file per study, so that re-running the same
sweep command (same study name) picks up where an interrupted sweep stopped. SQLite is
shared by the sweeper and by every job that reports intermediate values, possibly from
several processes, hence the generous lock timeout.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from mlplab.errors import ConfigError
from mlplab.private_api import trial_id

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


def open_storage(url: str) -> RDBStorage:
    """An RDB storage, one per process and URL (the basic launcher runs every job in the
    sweeper's process, and a loky worker runs many: setting one up is not free).

    SQLite connections wait for locks instead of failing at once.

    SQLite also gets write-ahead logging with `synchronous=NORMAL`: every job commits one
    intermediate value per epoch, and a full fsync per commit would cost more than a toy
    epoch; WAL also lets the sweeper read while jobs write. Both survive a killed process.
    """
    key = (os.getpid(), url)  # a forked worker must not share its parent's connections
    if key not in _storages:
        _storages[key] = _new_storage(url)
    return _storages[key]


def _new_storage(url: str) -> RDBStorage:
    if not url.startswith("sqlite"):
        return RDBStorage(url)
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    storage = RDBStorage(
        url, engine_kwargs={"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    )
    sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
    storage.engine.dispose()  # connections opened during set-up lack the pragmas
    return storage


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def recover_interrupted(study: optuna.Study, storage: RDBStorage, keys: set[str]) -> list[int]:
    """Mark trials a killed sweep left RUNNING as FAIL and queue their params again.

    Only one sweeper may drive a study at a time: a RUNNING trial at start-up can only
    belong to a sweep that died, so its job result is lost and the configuration must be
    evaluated again. A trial killed while its params were being sampled (some of `keys`
    missing) never ran and is not queued. Returns the numbers of the trials marked FAIL.
    """
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(trial_id(trial), "interrupted", True)
        storage.set_trial_state_values(trial_id(trial), TrialState.FAIL)
        if set(trial.params) == keys:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        failed.append(trial.number)
    if failed:
        log.warning(
            "Study %s: trials %s were left RUNNING by an interrupted sweep; marked FAIL and "
            "queued again", study.study_name, failed,
        )
    return failed


def count_done(study: optuna.Study) -> int:
    """Trials that count toward `n_trials`: COMPLETE and PRUNED (not FAIL, not WAITING)."""
    return len(study.get_trials(deepcopy=False, states=DONE_STATES))


def open_study(
    name: str, url: str, direction: str, pruner: Any
) -> tuple[optuna.Study, RDBStorage]:
    """Create the study or load it when it exists (resume). The caller sets
    `study.sampler`, which may depend on how many trials the study already has."""
    storage = open_storage(url)
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
