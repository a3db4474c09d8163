"""The study lock: one sweeper at a time counts a study's trials and asks for new ones.

Optuna's storages make each single write atomic, but "count the live trials, then ask one
if the budget allows" is two steps; without a lock, workers racing for the last trial of
a study would each ask one and the study would overshoot `n_trials`. The lock lives where
the study does, so it works wherever every worker can reach the storage:

- SQLite: an `flock` on `<database file>.lock` beside the database. SQLite is for the
  workers of one machine anyway: its WAL mode shares memory between the processes, and
  network file systems do not lock reliably.
- PostgreSQL: a session advisory lock (`pg_advisory_lock`) keyed by the study name, held
  on a connection of its own; MySQL: `GET_LOCK`. A worker that dies loses its
  connection, and with it the lock.
- Anything else (and in-memory SQLite, which one process alone can open): a lock within
  this process only; several processes may then overshoot `n_trials` by a batch.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy

log = logging.getLogger(__name__)


def _key(study_name: str) -> int:
    """A signed 64-bit key for the study (PostgreSQL's advisory locks take a bigint)."""
    digest = hashlib.sha1(study_name.encode()).digest()[:8]
    return int.from_bytes(digest, "big", signed=True)


def sqlite_path(url: str) -> str | None:
    """The database file of a `sqlite:///...` URL, None for other URLs and `:memory:`."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[-1] if ":///" in url else ""
    return path if path and path != ":memory:" else None


@contextlib.contextmanager
def file_lock(path: str | None) -> Iterator[None]:
    """An exclusive `flock` on `<path>.lock` while the block runs (nothing when None)."""
    if path is None:
        yield
        return
    with Path(f"{path}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class StudyLock:
    """A lock (not re-entrant) shared by every worker of one study (`with lock: ...`)."""

    def __init__(self, url: str, study_name: str, engine: Any) -> None:
        self.url, self.study_name, self.engine = url, study_name, engine
        self._local = threading.Lock()  # threads of this process, before the shared lock
        self._handle: Any = None
        self._connection: Any = None
        self.dialect = engine.dialect.name if engine is not None else ""
        path = sqlite_path(url)
        self.lock_file = Path(f"{path}.lock") if path else None
        self.across_processes = self.lock_file is not None or self.dialect in (
            "postgresql", "mysql")
        if not self.across_processes:
            log.debug("study %s: no lock shared between processes for %s", study_name, url)

    def __enter__(self) -> StudyLock:
        self._local.acquire()
        try:
            self._acquire_shared()
        except BaseException:
            self._local.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._release_shared()
        finally:
            self._local.release()

    def _acquire_shared(self) -> None:
        if self.lock_file is not None:
            self._handle = self.lock_file.open("a")
            fcntl.flock(self._handle, fcntl.LOCK_EX)
        elif self.dialect == "postgresql":
            self._connection = self.engine.connect()
            self._connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"),
                                     {"key": _key(self.study_name)})
        elif self.dialect == "mysql":
            self._connection = self.engine.connect()
            self._connection.execute(sqlalchemy.text("SELECT GET_LOCK(:name, -1)"),
                                     {"name": f"mlplab-{_key(self.study_name)}"})

    def _release_shared(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        elif self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                if self.dialect == "postgresql":
                    connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"),
                                       {"key": _key(self.study_name)})
                else:
                    connection.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:name)"),
                                       {"name": f"mlplab-{_key(self.study_name)}"})
            finally:
                connection.close()
