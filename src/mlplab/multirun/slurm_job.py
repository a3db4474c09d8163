"""One task of a sweep's SLURM array, in the job's own process on a compute node.

submitit starts each task as `python -m submitit.core._submit <folder>`, which unpickles
the launcher and calls it (`MlplabSlurmLauncher.__call__` -> `run_array_task`). Before
that call submitit has installed its signal handlers: SIGTERM is ignored (only logged),
and SLURM's warning signal (SIGUSR2, sent `signal_delay_s` before the time limit, or by
`scancel --signal=USR2`) makes submitit call the launcher's `checkpoint`, requeue the task
with `scontrol requeue` and exit. Around the job this module adds what a training run
needs for that to lose nothing:

- The warning signal first stops the job as SIGTERM would: the fit finishes its epoch,
  writes a checkpoint (logged to the run's `checkpoints/`) and ends KILLED. Only then does
  submitit's handler requeue the task; past `max_num_timeout` time-outs it refuses, and
  the task fails with submitit's reason.
- A requeued task (SLURM_RESTART_COUNT > 0, whoever requeued it: submitit, preemption,
  an administrator) looks up the run it had started, by the sweep's parent run and the
  `slurm_job_id` tag, and continues it from its last checkpoint (`trainer.resume`), so it
  ends with the same weights as a task that was never stopped. A run with no checkpoint
  yet is closed KILLED and the task starts over; a run that had finished (the warning came
  as it ended) gives its result without training again.
- SIGTERM outside a run stops the task instead of being ignored, so that a task cancelled
  while it starts up does not go on to open a run that SIGKILL would leave RUNNING.
"""

from __future__ import annotations

import logging
import math
import os
import signal

import submitit
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, run_job, setup_globals
from omegaconf import DictConfig, open_dict

from mlplab.private_api import requeue_signal
from mlplab.signals import stop_as_on_sigterm
from mlplab.tracking.store import get_client
from mlplab.tracking.sweep import read_parent_run

# Before Hydra sets up the job's logging only warnings reach the job's log (stderr, via
# Python's last-resort handler): what a restart does is logged as warnings.
log = logging.getLogger(__name__)


def run_array_task(launcher, sweep_overrides: list[str], job_dir_key: str, job_num: int,
                   singleton_state: dict) -> JobReturn:
    """Compose this task's config and run it as Hydra runs a job, with the requeue
    handling described in the module docstring."""
    environment = submitit.JobEnvironment()
    Singleton.set_state(singleton_state)
    setup_globals()
    config = launcher.hydra_context.config_loader.load_sweep_config(
        launcher.config, list(sweep_overrides))
    with open_dict(config.hydra.job):
        config.hydra.job.id = environment.job_id  # e.g. 1234_5: the same after a requeue
        config.hydra.job.num = job_num
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    if restarts:
        finished = continue_earlier_run(config, environment.job_id, restarts)
        if finished is not None:
            return JobReturn(overrides=list(sweep_overrides), cfg=config,
                             status=JobStatus.COMPLETED, _return_value=finished)
    with RequeueOnWarning(requeue_signal(environment)):
        return run_job(hydra_context=launcher.hydra_context,
                       task_function=launcher.task_function, config=config,
                       job_dir_key=job_dir_key, job_subdir_key="hydra.sweep.subdir")


def continue_earlier_run(config: DictConfig, job_id: str, restarts: int) -> float | None:
    """Point `trainer.resume` of this requeued task at the run it started before, when
    that run has a checkpoint; close it KILLED when it has none (the task starts over).
    Returns the run's objective instead when that run had finished."""
    parent = read_parent_run(str(config.hydra.sweep.dir))
    if parent is None:  # logger=none: nothing was recorded, the task starts over
        return None
    client = get_client(parent["tracking_uri"])
    runs = client.search_runs(
        [parent["experiment_id"]],
        filter_string=(f"tags.mlflow.parentRunId = '{parent['run_id']}' "
                       f"and tags.slurm_job_id = '{job_id}'"),
        order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        log.warning("SLURM job %s restarted (%d): it had no run yet; starting", job_id, restarts)
        return None
    run = runs[0]
    run_id = run.info.run_id
    if run.info.status == "FINISHED":
        log.warning("SLURM job %s restarted (%d): run %s had finished", job_id, restarts, run_id)
        return float(run.data.tags.get("objective", math.nan))
    checkpoints = [a for a in client.list_artifacts(run_id, "checkpoints")
                   if a.path.endswith(".npz")]
    if checkpoints:
        log.warning("SLURM job %s restarted (%d): continuing run %s from its last checkpoint",
                 job_id, restarts, run_id)
        config.trainer.resume = run_id
        return None
    log.warning("SLURM job %s restarted (%d): run %s has no checkpoint; starting over",
                job_id, restarts, run_id)
    if run.info.status == "RUNNING":
        client.set_tag(run_id, "stop_reason", f"SLURM requeued job {job_id} before its first "
                       "checkpoint; the job started over in a new run")
        client.set_terminated(run_id, "KILLED")
    return None


def _stop(signum, frame):
    raise KeyboardInterrupt(f"SLURM job stopped by {signal.Signals(signum).name}")


class RequeueOnWarning:
    """For the duration of a task: the warning signal `warning` stops the job as SIGTERM
    would, and once the job has stopped, submitit's own handler for it requeues the task
    (its `sys.exit` then ends the process); SIGTERM outside a run stops the job."""

    def __init__(self, warning: int):
        self.warning = warning
        self.received: tuple | None = None
        self._submitit_handler = None
        self._previous_sigterm = None

    def __enter__(self) -> RequeueOnWarning:
        self._submitit_handler = signal.signal(self.warning, self._on_warning)
        self._previous_sigterm = signal.signal(signal.SIGTERM, _stop)
        return self

    def _on_warning(self, signum, frame) -> None:
        if self.received is None:
            self.received = (signum, frame)
            log.warning("%s from SLURM: stopping at the end of this epoch with a checkpoint, "
                        "then requeueing", signal.Signals(signum).name)
        stop_as_on_sigterm(signum, frame)

    def __exit__(self, *exc) -> bool:
        signal.signal(signal.SIGTERM, self._previous_sigterm)
        signal.signal(self.warning, self._submitit_handler)
        if self.received is not None and callable(self._submitit_handler):
            self._submitit_handler(*self.received)  # requeues and exits, or raises why not
        return False
