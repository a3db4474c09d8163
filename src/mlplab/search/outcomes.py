"""What each job of an Optuna sweep came back with, and how signals stop the sweep.

- SIGTERM (first): the running batch finishes, its trials are told, the summary written,
  then the sweep exits with status 143. Jobs that got the signal too (a process-group kill)
  end their runs KILLED at the end of an epoch; their trials are marked FAIL and queued
  again. A second SIGTERM stops at once, like Ctrl-C.
- Ctrl-C / SIGINT, second SIGTERM: KeyboardInterrupt now; the sweeper marks the trials it
  left RUNNING as FAIL and queues their configurations again.
- A job killed while training in the sweeper's own process (basic launcher): the trainer
  takes the signal, ends the run KILLED, and the job's PruningCallback marks the trial
  `killed`, which stops the sweep after the batch with the signal's exit status.

The signal mechanics are `mlplab.signals`. Either way, running the same command again
resumes the study.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from hydra.core.utils import JobReturn


def job_outcome(result: JobReturn) -> Any:
    """A job's return value, or the exception it raised."""
    try:
        return result.return_value
    except Exception as error:  # the job failed; Hydra re-raises its exception here
        return error


def describe_outcome(outcome: Any) -> str:
    if isinstance(outcome, BaseException):
        return f"{type(outcome).__name__}: {outcome}"
    return f"objective {outcome!r}"


def is_objective(value: Any) -> bool:
    """A usable objective: a finite real number (NumPy scalars included), not a bool."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))
