"""The launching side of a SLURM sweep: submit the jobs as one array, wait for SLURM to
say each has ended, and report what did not finish.

Differences from hydra-submitit-launcher's own `launch`, which returns
`[job.results()[0] for job in jobs]`:

- A job is over when SLURM says so (`sacct`), not as soon as a result file exists: a job
  that SLURM requeued after it stopped gracefully (preemption, `scontrol requeue`) has
  written a result that its next start will replace. Without accounting (`sacct` failing)
  the result file decides, as upstream.
- A job that failed (its process died, the node failed, it ran out of memory or time) is
  reported as one log line with its SLURM job id, state and log file; its run, if it was
  left RUNNING, is closed FAILED with that reason; and the sweep goes on with NaN for it,
  as for a run that diverged. Upstream, the first such job raises a multi-page error and
  the results of the others are never read.
- A job that SLURM cancelled (`scancel`) ends its run KILLED (the trainer's SIGTERM stop)
  and stops the sweep: `SweepInterrupted`, so that the CLI closes the parent run with a
  stop reason and exits with SIGTERM's status.
- Ctrl-C or SIGTERM to the launching command cancels the array before the sweep stops, so
  that no job goes on logging into a sweep that has ended.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import submitit
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf
from submitit.core.utils import FailedJobError, UncompletedJobError

from mlplab.private_api import job_error
from mlplab.signals import SweepInterrupted
from mlplab.tracking.stale import close_with_reason, left_by_a_dead_process
from mlplab.tracking.store import get_client
from mlplab.tracking.sweep import read_parent_run

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how often result files are looked for
SACCT_SECONDS = 2.0  # at least this long between two `sacct` calls while a job may be ending
SACCT_IDLE_SECONDS = 30.0  # between two calls while no job has written its result
# States in which SLURM may still run the job (submitit's list).
UNFINISHED_STATES = ("READY", "PENDING", "RUNNING", "UNKNOWN", "REQUEUED", "COMPLETING",
                     "PREEMPTED", "CONFIGURING", "RESIZING", "SUSPENDED")


def make_executor(params: dict) -> submitit.AutoExecutor:
    """A submitit SLURM executor from the launcher's config keys (`SlurmQueueConf`): the
    keys every submitit executor shares go unprefixed, SLURM's own get `slurm_`."""
    params = dict(params)
    folder = params.pop("submitit_folder")
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm",
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    shared = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{key if key in shared else f"slurm_{key}": value
                                  for key, value in params.items()})
    return executor


@dataclass
class Ending:
    """How one job of the array ended, when it did not return a result."""

    number: int  # the Hydra job number
    job_id: str  # SLURM's, e.g. 1234_5
    state: str  # SLURM's final state, e.g. FAILED, CANCELLED by 0, OUT_OF_MEMORY
    reason: str  # one line
    log_path: str

    @property
    def cancelled(self) -> bool:
        return self.state.upper().startswith("CANCELLED")

    def line(self) -> str:
        return (f"job #{self.number} (SLURM job {self.job_id}) ended {self.state}: "
                f"{self.reason}; log: {self.log_path}")


def launch_array(launcher, job_overrides: Sequence[Sequence[str]],
                 initial_job_idx: int) -> list[JobReturn]:
    """Submit `job_overrides` as one SLURM array and return one JobReturn per job."""
    config = launcher.config
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(config.hydra.sweep.mode), 8))
    executor = make_executor(launcher.params)
    numbers = [initial_job_idx + i for i in range(len(job_overrides))]
    for number, overrides in zip(numbers, job_overrides, strict=True):
        log.info("\t#%d : %s", number, " ".join(filter_overrides(overrides)))
    state = Singleton.get_state()
    jobs = executor.map_array(
        launcher, [list(o) for o in job_overrides], ["hydra.sweep.dir"] * len(numbers),
        numbers, [f"job_id_for_{n}" for n in numbers], [state] * len(numbers))
    log.info("SLURM array %s: %d jobs, logs in %s", _array_id(jobs), len(jobs),
             Path(jobs[0].paths.folder).parent)
    try:
        wait_for_jobs(jobs)
    except KeyboardInterrupt:
        cancel(jobs)
        raise
    returns, endings = collect(jobs, numbers, job_overrides)
    if endings:
        report(endings, str(sweep_dir))
    return returns


def _ended(job) -> bool:
    state = job.watcher.get_state(job.job_id, mode="cache").upper()
    if state == "UNKNOWN":  # no accounting (or not yet listed): trust the result file
        return job.paths.result_pickle.exists()
    return state.split()[0] not in UNFINISHED_STATES


def wait_for_jobs(jobs, poll: float = POLL_SECONDS) -> None:
    """Return once SLURM says every job has ended; `sacct` is asked every SACCT_SECONDS
    while a result file waits to be confirmed, else every SACCT_IDLE_SECONDS."""
    watcher = jobs[0].watcher
    pending = list(jobs)
    last_sacct = -math.inf
    while pending:
        awaiting = any(job.paths.result_pickle.exists() for job in pending)
        interval = SACCT_SECONDS if awaiting else SACCT_IDLE_SECONDS
        if time.monotonic() - last_sacct >= interval:
            watcher.update()
            last_sacct = time.monotonic()
            pending = [job for job in pending if not _ended(job)]
        if pending:
            time.sleep(poll)


def _array_id(jobs) -> str:
    return jobs[0].job_id.split("_")[0]


def cancel(jobs) -> None:
    """`scancel` the array: its running jobs get SIGTERM and end their runs KILLED."""
    array = _array_id(jobs)
    log.warning("cancelling SLURM array %s", array)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["scancel", array], check=False, timeout=60)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()
             and not set(line.strip()) <= {"-"}]
    return lines[-1] if lines else "(empty)"


def _log_tail(path) -> str:
    """The last line of a job's log, or what to say when it has none."""
    try:
        return "it returned no result; its log ends: " + _last_line(Path(path).read_text(
            errors="replace")[-4000:])
    except OSError:
        return "it returned no result and wrote no log (it never started)"


def collect(jobs, numbers, job_overrides) -> tuple[list[JobReturn], list[Ending]]:
    """Each job's JobReturn (NaN for one that returned nothing) and how those ended."""
    returns, endings = [], []
    for job, number, overrides in zip(jobs, numbers, job_overrides, strict=True):
        state = job.watcher.get_state(job.job_id, mode="cache")
        ending = None
        try:
            if not job.paths.result_pickle.exists() and state.upper() != "COMPLETED":
                # Never started, or died (submitit would wait 15 s for its result first).
                raise UncompletedJobError(_log_tail(job.paths.stderr))
            result = job.results()[0]
        except (FailedJobError, UncompletedJobError) as error:
            if isinstance(error, FailedJobError):
                reason = _last_line(str(error).split("You can check full logs")[0])
            else:
                reason = str(error) or "it returned no result"
            ending = Ending(number, job.job_id, state, reason, str(job.paths.stderr))
            result = JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED,
                               _return_value=math.nan)
        else:
            if state.upper().startswith("CANCELLED"):  # it stopped gracefully on SIGTERM
                ending = Ending(number, job.job_id, state, "its run ended KILLED",
                                str(job.paths.stderr))
            elif result.status == JobStatus.FAILED:  # the task raised: Hydra reports it
                log.error("job #%d (SLURM job %s) raised %r; log: %s", number, job.job_id,
                          job_error(result), job.paths.stderr)
        if ending is not None:
            endings.append(ending)
        returns.append(result)
    return returns, endings


def report(endings: list[Ending], sweep_dir: str) -> None:
    """Log each ending, close the runs it left RUNNING, and stop the sweep if SLURM
    cancelled any job."""
    for ending in endings:
        log.error("%s", ending.line())
    close_abandoned_runs(endings, sweep_dir)
    cancelled = [e for e in endings if e.cancelled]
    if cancelled:
        log.error("SLURM cancelled %d of the sweep's jobs (%s); the sweep stops",
                  len(cancelled), ", ".join(e.job_id for e in cancelled))
        raise SweepInterrupted("SIGTERM", sweep_dir)


def close_abandoned_runs(endings: list[Ending], sweep_dir: str) -> None:
    """Close the runs that jobs which ended without a result left RUNNING (a job killed
    by SIGKILL cannot close its own): FAILED with the job's ending as the reason, KILLED
    for a cancelled job."""
    parent = read_parent_run(sweep_dir)
    if parent is None:
        return
    client = get_client(parent["tracking_uri"])
    by_job = {e.job_id: e for e in endings}
    runs = client.search_runs(
        [parent["experiment_id"]],
        filter_string=f"tags.mlflow.parentRunId = '{parent['run_id']}'", max_results=50000)
    for run in runs:
        ending = by_job.get(run.data.tags.get("slurm_job_id", ""))
        if ending is None or not left_by_a_dead_process(run):
            continue
        if ending.cancelled:
            close_with_reason(client, run, "KILLED", {"stop_reason": ending.line()})
        else:
            close_with_reason(client, run, "FAILED", {"failure_reason": ending.line()})
