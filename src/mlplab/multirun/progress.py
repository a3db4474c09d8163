"""Where a running sweep stands: one live line on an interactive terminal, nothing otherwise.

Jobs may run in the launching process (basic launcher), in worker processes (joblib, Ray)
or on other machines sharing the sweep directory (submitit), so they report through small
files: `<sweep dir>/.progress/<job number>.json` holds {"state", "value", "name"}, written
when the job starts (running) and when it ends (completed, pruned, failed or killed, with
the monitored metric's value). The launching process, when its stderr is a terminal, reads
them twice a second and redraws one line:

    sweep: 9/16 · 2 running · 1 failed · 1 pruned · best test_loss 0.0266 (quick_moons/...)

Log records written in this process clear the line first, so they never land on it (those
of worker processes may: they write to the same terminal without asking).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import threading
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

from mlplab.tracking.sweep import CHILD_STATES, state_of

PROGRESS_DIR = ".progress"
POLL_SECONDS = 0.5


def _path(sweep_dir, job_num) -> Path:
    return Path(sweep_dir) / PROGRESS_DIR / f"{int(job_num)}.json"


def write_state(sweep_dir, job_num, state: str, value: float | None = None,
                name: str = "") -> None:
    """Record one job's state (atomically: a reader never sees half a file)."""
    path = _path(sweep_dir, job_num)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    number = value if value is not None and math.isfinite(value) else None
    scratch.write_text(json.dumps({"state": state, "value": number, "name": name}))
    os.replace(scratch, path)


def read_state(sweep_dir, job_num) -> dict | None:
    try:
        return json.loads(_path(sweep_dir, job_num).read_text())
    except (OSError, ValueError):
        return None


def read_states(sweep_dir) -> list[dict]:
    states = []
    for path in sorted((Path(sweep_dir) / PROGRESS_DIR).glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            states.append(json.loads(path.read_text()))
    return states


def note_job_outcome(sweep_dir, outcome) -> None:
    """Record how the job running in this process ended (a `JobOutcome`)."""
    pruned = (outcome.reason or "").lower().startswith("pruned")
    write_state(sweep_dir, HydraConfig.get().job.num, state_of(outcome.status, pruned),
                outcome.value, outcome.run_name)


def summary_line(states: list[dict], monitor: str | None, mode: str,
                 total: int | None = None) -> str:
    """The live line for these job states."""
    counts = dict.fromkeys(CHILD_STATES, 0)
    for entry in states:
        state = entry.get("state")
        counts[state if state in counts else "failed"] += 1
    ended = len(states) - counts["running"]
    parts = [f"sweep: {ended}/{total}" if total else f"sweep: {ended} done"]
    parts += [f"{counts[s]} {s}" for s in ("running", "failed", "killed", "pruned") if counts[s]]
    scored = [e for e in states if e.get("state") == "completed" and e.get("value") is not None]
    if scored and monitor:
        pick = max if mode == "max" else min
        best = pick(scored, key=lambda e: e["value"])
        parts.append(f"best {monitor} {best['value']:.4g} ({best.get('name') or '?'})")
    return " · ".join(parts)


class _ClearLine(logging.Filter):
    """Clears the live line before a log record is written (and asks for a redraw)."""

    def __init__(self, line: LiveLine):
        super().__init__()
        self.line = line

    def filter(self, record) -> bool:
        self.line.clear()
        return True


class LiveLine:
    """The redrawn line on `stream` (stderr), from a daemon thread, until `stop`."""

    def __init__(self, sweep_dir, monitor: str | None, mode: str, total: int | None,
                 stream=None):
        self.sweep_dir, self.monitor, self.mode, self.total = sweep_dir, monitor, mode, total
        self.stream = stream or sys.stderr
        self._shown = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._filter = _ClearLine(self)
        self._thread = threading.Thread(target=self._run, name="mlplab-sweep-progress",
                                        daemon=True)

    def start(self) -> LiveLine:
        self._attach()
        self._thread.start()
        _SHOWN.append(self)
        return self

    def _attach(self) -> None:
        # Each job of the basic launcher sets Hydra's job logging up again, with new
        # handlers: the filter is put on whatever handlers are there, at every tick.
        for handler in logging.getLogger().handlers:
            if self._filter not in handler.filters:
                handler.addFilter(self._filter)

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.refresh()

    def refresh(self) -> None:
        """Draw the line from the jobs' states now (the thread does it every POLL_SECONDS;
        a job ending in this process does it at once, so that a sweep of jobs shorter than
        that still shows its progress). Nothing once the line is stopped."""
        if self._stop.is_set():
            return
        self._attach()
        states = read_states(self.sweep_dir)
        if states:
            self.draw(summary_line(states, self.monitor, self.mode, self.total))

    def draw(self, text: str) -> None:
        with self._lock:
            if text != self._shown:
                self.stream.write("\r\x1b[K" + text)
                self.stream.flush()
                self._shown = text

    def clear(self) -> None:
        with self._lock:
            if self._shown:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._shown = ""

    def stop(self) -> None:
        if self in _SHOWN:
            _SHOWN.remove(self)
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * POLL_SECONDS)
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self._filter)
        self.clear()


# The lines being drawn in this process: a sweep stopped by a signal skips Hydra's end of
# sweep, so the CLI stops them (`stop_live_lines`) before it reports the stop.
_SHOWN: list[LiveLine] = []


def stop_live_lines() -> None:
    for line in list(_SHOWN):
        line.stop()


def interactive(stream=None) -> bool:
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())
