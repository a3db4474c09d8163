"""Fixtures and hooks shared by every test directory.

The default run is spread over pytest-xdist workers (see `addopts` in pyproject.toml),
test by test. A worker is a separate process with its own session- and module-scoped
fixtures; what costs seconds to make and is the same for all of them (an empty migrated
MLflow store, the reliability tests' uninterrupted reference run) is made once per run,
by whichever worker needs it first, through `once_per_run`.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

# A suite started in the background of a non-interactive shell (`cmd &`) inherits SIGINT
# ignored, and Python then keeps it ignored; the signal tests need Python's own handler.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _run_wide_dir(tmp_path_factory) -> Path:
    """A directory shared by every worker of this run (the session's own basetemp without
    xdist: the parent of that one holds other sessions' directories too)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def once_per_run(tmp_path_factory):
    """`once_per_run(name, make)` -> (directory, result): `make(directory)` is called once
    in the whole run, by the first worker to ask, with an empty directory of its own; its
    result (JSON) is kept, and every later caller, from any worker, gets the same pair.

    Callers wait for a `make` in progress. One that raised counts as not done: the next
    caller starts again in an emptied directory (and fails the same way, in its own test)."""

    def run(name: str, make):
        root = _run_wide_dir(tmp_path_factory)
        directory, done = root / f"once-{name}", root / f"once-{name}.json"
        with open(root / f"once-{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not done.exists():
                if directory.exists():
                    shutil.rmtree(directory)  # what a `make` that raised left
                directory.mkdir()
                done.write_text(json.dumps(make(directory)))
            return directory, json.loads(done.read_text())

    return run


@pytest.fixture(scope="session")
def migrated_store(once_per_run) -> Path:
    """An empty SQLite MLflow store whose tables exist, to be copied, never written.

    Creating one runs every schema migration (seconds, more on a busy machine); copying
    the file takes milliseconds, so the run creates it once for all its workers."""

    def create(directory: Path) -> str:
        from mlflow import MlflowClient  # imported here: only tests with a store pay it

        MlflowClient(tracking_uri=f"sqlite:///{directory / 'mlflow.db'}").search_experiments()
        return "mlflow.db"

    directory, name = once_per_run("migrated-mlflow-store", create)
    return directory / name


# ------------------------------------------------------ tutorial wall times in the summary

WALL_TIME = "tutorial_wall_time"
_wall_times: list[tuple[str, float]] = []


class _WallTimes:
    """`append((label, seconds))` records a timed run on the test's report."""

    def __init__(self, node):
        self._node = node

    def append(self, entry: tuple[str, float]) -> None:
        self._node.user_properties.append((WALL_TIME, entry))


@pytest.fixture
def wall_times(request) -> _WallTimes:
    """Where a tutorial test appends (label, seconds) of each timed run; they are listed at
    the end of the session."""
    return _WallTimes(request.node)


def pytest_runtest_logreport(report):
    """Collect the wall times a test recorded (`wall_times` fixture of tests/reproduction).

    They travel as user properties of the test's report, so under xdist they reach the
    controlling process, which prints the summary."""
    if report.when == "call":
        _wall_times.extend(value for name, value in report.user_properties if name == WALL_TIME)


def pytest_terminal_summary(terminalreporter):
    if _wall_times:
        terminalreporter.section("tutorial reproduction wall times")
        for label, seconds in _wall_times:
            terminalreporter.write_line(f"{seconds:9.1f} s  {label}")
